// C++ functions in a namespace and an overload: probes name them demangled
// (`uprobe:./cxx:"shapes::area"`, `"shapes::scale(int)"`). `cxx N [MS]`
// calls each N times, then lingers MS milliseconds (for stack tests: rtrace
// reads a process's mappings while it runs).
#include <cstdlib>
#include <unistd.h>

namespace shapes {
__attribute__((noinline)) int area(int w, int h) { return w * h; }
__attribute__((noinline)) int scale(int v) { return v * 2; }
__attribute__((noinline)) long scale(long v) { return v * 3; }
} // namespace shapes

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  long total = 0;
  for (int i = 1; i <= n; i++)
    total += shapes::area(i, 10) + shapes::scale(i) + shapes::scale((long)i);
  if (argc > 2)
    usleep(atoi(argv[2]) * 1000);
  return total > 0 ? 0 : 1;
}
