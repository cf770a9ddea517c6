// Calls strlen() on each argument (copied to the stack, so the probe can
// read it): bcc tutorial lesson 14, counting strlen calls by string. The
// call goes through the PLT to the IFUNC implementation glibc chose.
#include <string.h>

int main(int argc, char **argv) {
  volatile size_t total = 0;
  for (int i = 1; i < argc; i++) {
    char copy[64];
    strncpy(copy, argv[i], sizeof(copy) - 1);
    copy[sizeof(copy) - 1] = 0;
    total += strlen(copy);
  }
  return total == 0;
}
