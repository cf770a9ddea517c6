// Runs /bin/true argv[1] times (fork + execve), then waits for each:
// sys_enter_execve tests see this process's children.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  for (int i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/true", "true", (char *)0);
      _exit(127);
    }
    waitpid(pid, 0, 0);
  }
  return 0;
}
