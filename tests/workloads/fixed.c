// BUILD_FLAGS: -no-pie -Wl,--section-start=rtrace_fixed=0x600000
// A function at a known address (0x600000, a non-PIE binary), for
// `uprobe:./fixed:0x600000` tests. `fixed N` calls it N times.
#include <stdlib.h>

__attribute__((noinline, section("rtrace_fixed"))) int at_fixed(int v) { return v + 1; }

int main(int argc, char **argv)
{
  int n = argc > 1 ? atoi(argv[1]) : 1;
  int total = 0;
  for (int i = 0; i < n; i++)
    total += at_fixed(i);
  return total > 0 ? 0 : 1;
}
