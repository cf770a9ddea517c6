// Names itself "rt_openat", then opens every path in argv with openat(2):
// tracepoint tests filter on that comm and read args->filename.
#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  prctl(PR_SET_NAME, "rt_openat");
  for (int i = 1; i < argc; i++) {
    int fd = openat(AT_FDCWD, argv[i], O_RDONLY);
    if (fd >= 0)
      close(fd);
  }
  return 0;
}
