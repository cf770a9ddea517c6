// Writes buffers of known sizes to /dev/null: the bitehist-style workload
// for hist(), lhist(), stats(), avg(), min() and max() tests.
#include <unistd.h>
#include <fcntl.h>
int main() {
  int fd = open("/dev/null", O_WRONLY);
  char buf[8192] = {0};
  int sizes[] = {0, 1, 1, 2, 3, 4, 7, 8, 100, 1000, 1024, 4096, 5000, 8192};
  for (unsigned i = 0; i < sizeof(sizes)/sizeof(sizes[0]); i++) write(fd, buf, sizes[i]);
  return 0;
}
