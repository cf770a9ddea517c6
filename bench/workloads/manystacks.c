// Many distinct user stacks (and, through its syscalls, kernel ones): 16
// functions call each other along one of PATHS call paths (each a fixed
// pseudo-random sequence, 4 to 24 deep), and the deepest one spins or makes
// a syscall. Built with frame pointers so both tracers can walk every
// stack. Usage: manystacks SECONDS [PATHS]
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t state;
static uint64_t next(void) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

typedef void (*fn)(int);
static fn table[16];
static uint64_t path;

// The function at `depth` on the current path.
static fn step(int depth) {
  uint64_t h = (path + 1) * 0x9e3779b97f4a7c15ull ^ (uint64_t)depth * 0xbf58476d1ce4e5b9ull;
  h ^= h >> 29;
  return table[h % 16];
}

static void leaf(void) {
  volatile uint64_t x = 0;
  if (next() % 4 == 0)
    getppid();
  else
    for (int i = 0; i < 2000; i++) x += i;
}

#define F(n)                                                 \
  __attribute__((noinline)) void f##n(int depth) {           \
    if (depth == 0) {                                        \
      leaf();                                                \
      return;                                                \
    }                                                        \
    step(depth)(depth - 1);                           \
    __asm__ volatile("");                                    \
  }
F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11) F(12) F(13) F(14) F(15)

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 10;
  uint64_t paths = argc > 2 ? strtoull(argv[2], 0, 10) : 300;
  state = 88172645463325252ull ^ (uint64_t)getpid();
  fn all[16] = {f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15};
  for (int i = 0; i < 16; i++) table[i] = all[i];
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do {
    for (int i = 0; i < 64; i++) {
      path = next() % paths;
      step(30)(4 + path % 21);
    }
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
  return 0;
}
