// A JIT in miniature: copies a spin loop (x86-64 machine code, with a frame
// pointer) into an anonymous executable mapping, names it in
// /tmp/perf-PID.map as Node, the JVM's perf-map-agent and other JITs do, and
// runs it for argv[1] milliseconds (default 500).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static const unsigned char spin[] = {
    0x55,             // push rbp
    0x48, 0x89, 0xe5, // mov rbp, rsp
    0x48, 0xff, 0xcf, // 1: dec rdi
    0x75, 0xfb,       // jnz 1b
    0x5d,             // pop rbp
    0xc3,             // ret
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  double ms = argc > 1 ? atof(argv[1]) : 500;
  unsigned char *code = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (code == MAP_FAILED)
    return 1;
  memcpy(code, spin, sizeof spin);
  char path[64];
  snprintf(path, sizeof path, "/tmp/perf-%d.map", getpid());
  FILE *map = fopen(path, "w");
  if (!map)
    return 1;
  fprintf(map, "%lx %zx jitted_spin\n", (unsigned long)code, sizeof spin);
  fclose(map);
  void (*run)(long) = (void (*)(long))code;
  double until = now_ms() + ms;
  while (now_ms() < until)
    run(1000000);
  // The map stays after the process exits, as a JIT's does, so that its
  // frames can still be named; a child of its own session removes it in
  // a few seconds.
  if (fork() == 0) {
    setsid();
    fclose(stdin);
    fclose(stdout);
    fclose(stderr);
    sleep(5);
    unlink(path);
  }
  return 0;
}
