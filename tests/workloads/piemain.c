// BUILD_FLAGS: -fPIE -pie -fno-omit-frame-pointer
// A position-independent executable that loads ./libstackleaf and calls its
// `leaf` from `caller`, N times (N = argv[1]), then lingers 300 ms: a
// process gone before rtrace read its mappings prints addresses.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) int caller(int (*leaf)(int), int i) {
  int r = leaf(i);
  __asm__ volatile("");
  return r;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  void *lib = dlopen("./libstackleaf", RTLD_NOW);
  if (!lib) {
    fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  int (*leaf)(int) = (int (*)(int))dlsym(lib, "leaf");
  int total = 0;
  for (int i = 0; i < n; i++) total += caller(leaf, i);
  printf("%d\n", total);
  usleep(300000);
  return 0;
}
