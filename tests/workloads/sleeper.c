// BUILD_FLAGS: -static
// Sleeps 1 ms argv[1] times (nanosleep), then reads /dev/zero argv[2]
// times 4096 bytes at a time: known counts for kernel-probe tests. Static,
// so no dynamic loader makes calls of its own.
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int sleeps = argc > 1 ? atoi(argv[1]) : 1;
    int reads = argc > 2 ? atoi(argv[2]) : 0;
    struct timespec ms = {0, 1000000};
    for (int i = 0; i < sleeps; i++)
        nanosleep(&ms, NULL);
    int fd = open("/dev/zero", O_RDONLY);
    char buf[4096];
    for (int i = 0; i < reads; i++)
        if (read(fd, buf, sizeof(buf)) != sizeof(buf))
            return 1;
    close(fd);
    return 0;
}
