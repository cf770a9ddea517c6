// BUILD_FLAGS: -O1 -fomit-frame-pointer -fasynchronous-unwind-tables -no-pie
// callchain_nofp.c as a non-PIE executable (loaded at 0x400000): main → outer
// → middle → inner without frame pointers.
#include <stdlib.h>
#include <time.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

__attribute__((noinline)) void inner(double until) {
  volatile unsigned long x = 0;
  while (now_ms() < until)
    for (int i = 0; i < 100000; i++) x += i;
}

__attribute__((noinline)) void middle(double until) {
  inner(until);
  __asm__ volatile("");
}

__attribute__((noinline)) void outer(double until) {
  middle(until);
  __asm__ volatile("");
}

int main(int argc, char **argv) {
  double ms = argc > 1 ? atof(argv[1]) : 500;
  outer(now_ms() + ms);
  return 0;
}
