// A USDT probe behind a semaphore: the program only fires rtrace:guarded
// while a tracer has incremented the semaphore. `usdt_sem N PAUSE_MS`
// prints `semaphore=V` each round, so tests see it rise and fall.
#define _SDT_HAS_SEMAPHORES 1
#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>
#include <unistd.h>

__extension__ unsigned short rtrace_guarded_semaphore __attribute__((unused)) __attribute__((section(".probes")));

int main(int argc, char **argv)
{
  int n = argc > 1 ? atoi(argv[1]) : 3;
  int pause_ms = argc > 2 ? atoi(argv[2]) : 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 1; i <= n; i++) {
    printf("semaphore=%d\n", rtrace_guarded_semaphore);
    if (rtrace_guarded_semaphore)
      DTRACE_PROBE1(rtrace, guarded, i);
    if (pause_ms)
      usleep(pause_ms * 1000);
  }
  return 0;
}
