// BUILD_FLAGS: -pthread
// Names its tasks and calls stub() in each: the process (rt_parent), a
// thread of it (rt_thread) and a child process (rt_child), for `pcomm`,
// `ppid`, `leader_comm` and `leader_tid`.
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) void stub(void) { __asm__ volatile(""); }

static void *thread(void *arg) {
  prctl(PR_SET_NAME, "rt_thread");
  stub();
  return arg;
}

int main(void) {
  prctl(PR_SET_NAME, "rt_parent");
  stub();
  pthread_t t;
  pthread_create(&t, 0, thread, 0);
  pthread_join(t, 0);
  pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_NAME, "rt_child");
    stub();
    _exit(0);
  }
  waitpid(child, 0, 0);
  return 0;
}
