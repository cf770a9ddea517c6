// Writes known sizes to /dev/null for the --metrics test (tests/metrics.rs):
// 90 writes of 100 bytes and 10 of 5000, then exits.
#include <fcntl.h>
#include <unistd.h>
int main(void) {
  static char buf[5000];
  int fd = open("/dev/null", O_WRONLY);
  for (int i = 0; i < 90; i++) write(fd, buf, 100);
  for (int i = 0; i < 10; i++) write(fd, buf, 5000);
  return 0;
}
