// Calls add(a, b) (never inlined) for each pair of numbers in argv and prints
// the sums: C (SysV) arguments and return values for uprobe tests.
#include <stdio.h>
#include <stdlib.h>

// Globals for uaddr(): a known constant and the number of add() calls so far.
volatile long magic = 0x1234567;
volatile int calls;

__attribute__((noinline)) int add(int a, int b) {
  calls++;
  return a + b;
}

int main(int argc, char **argv) {
  calls = 0; // fault the globals' page in: probes cannot read absent pages
  for (int i = 1; i + 1 < argc; i += 2)
    printf("%d\n", add(atoi(argv[i]), atoi(argv[i + 1])));
  return 0;
}
