// Calls add(a, b) (never inlined) for each pair of numbers in argv and prints
// the sums: C (SysV) arguments and return values for uprobe tests.
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) int add(int a, int b) { return a + b; }

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2)
    printf("%d\n", add(atoi(argv[i]), atoi(argv[i + 1])));
  return 0;
}
