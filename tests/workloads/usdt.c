// USDT probes (sys/sdt.h, no semaphores): `usdt N [PAUSE_MS]` fires
// rtrace:greet(i, "wordI"), rtrace:constant(-42) and rtrace:narrow((short)-i)
// N times. Built at -O0 (arguments in memory) and -O2 (in registers).
#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>
#include <unistd.h>

int main(int argc, char **argv)
{
  int n = argc > 1 ? atoi(argv[1]) : 3;
  int pause_ms = argc > 2 ? atoi(argv[2]) : 0;
  for (int i = 1; i <= n; i++) {
    char word[16];
    snprintf(word, sizeof word, "word%d", i);
    DTRACE_PROBE2(rtrace, greet, i, word);
    DTRACE_PROBE1(rtrace, constant, -42);
    short s = (short)-i;
    DTRACE_PROBE1(rtrace, narrow, s);
    if (pause_ms)
      usleep(pause_ms * 1000);
  }
  return 0;
}
