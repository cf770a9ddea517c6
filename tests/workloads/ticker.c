// Calls tick(id) every argv[2] milliseconds for argv[3] times (forever if
// absent): a long-lived process for -p and timing tests.
#include <stdlib.h>
#include <time.h>

__attribute__((noinline)) int tick(int id) { return id; }

int main(int argc, char **argv) {
  int id = argc > 1 ? atoi(argv[1]) : 0;
  long ms = argc > 2 ? atol(argv[2]) : 100;
  long n = argc > 3 ? atol(argv[3]) : -1;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  for (long i = 0; n < 0 || i < n; i++) {
    tick(id);
    nanosleep(&ts, 0);
  }
  return 0;
}
