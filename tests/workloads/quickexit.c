// BUILD_FLAGS: -no-pie -fno-pie -fno-omit-frame-pointer
// Calls leafmost() through two frames and exits at once: rtrace cannot read
// its mappings before it is gone, so its stack is named from the traced
// file itself (not PIE: its addresses are the file's own).
#include <stdlib.h>

__attribute__((noinline)) int leafmost(int x) { return x * 3; }

__attribute__((noinline)) int midway(int x) { return leafmost(x) + 1; }

int main(int argc, char **argv) {
  return midway(argc > 1 ? atoi(argv[1]) : 1) == 0;
}
