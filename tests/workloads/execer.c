// Runs /bin/true argv[1] times (fork + execve), then waits for each:
// sys_enter_execve tests see this process's children. Any further
// arguments are passed on to /bin/true (they live on the stack, so the
// child can read them before it touches any page: join() tests).
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  // Copies on this stack: the child has the stack's pages mapped from the
  // start, not the program's read-only data or the initial argument area.
  char text[4096], *args[64] = {0}, *p = text;
  for (int i = 1; i < argc && i < 63; i++) {
    const char *s = i == 1 ? "true" : argv[i];
    args[i - 1] = p;
    while ((*p++ = *s++)) {}
  }
  if (argc < 2) args[0] = "true";
  for (int i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      execv("/bin/true", args);
      _exit(127);
    }
    waitpid(pid, 0, 0);
  }
  return 0;
}
