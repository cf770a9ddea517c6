// Calls step(i) argv[1] times, then getppid(2) argv[2] times: a million
// events with nothing else going on, to check that counting loses none.
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) long step(long i) { return i + 1; }

int main(int argc, char **argv) {
  long calls = argc > 1 ? atol(argv[1]) : 0, syscalls = argc > 2 ? atol(argv[2]) : 0;
  volatile long sink = 0;
  for (long i = 0; i < calls; i++) sink += step(i);
  for (long i = 0; i < syscalls; i++) sink += getppid();
  return 0;
}
