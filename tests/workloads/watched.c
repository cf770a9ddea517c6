// Maps a page at the fixed address 0x10000000, then writes its first 8
// bytes argv[1] times (default 3) and reads them once: watchpoint tests
// count the accesses at that address.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 3;
  volatile uint64_t *p = mmap((void *)0x10000000, 4096, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  for (int i = 0; i < n; i++) {
    *p = i + 1;
    usleep(1000);
  }
  uint64_t last = *p;
  return last == (uint64_t)n ? 0 : 2;
}
