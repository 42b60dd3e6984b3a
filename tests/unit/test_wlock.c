/*
** Unit tests for src/wlock.c, the barrier's write lock: another process (a
** child taking SQLite's kind of lock, a classic fcntl lock on byte 120) is
** shut out while we hold it and gets it after release; a wait times out
** with WS_ELOCKED; a wait is woken by the other side's unlock; a lock that
** arrives after the wait was given up is dropped at once; closing while
** the waiter blocks in the kernel returns.
*/
#include "t.h"
#include "common.h"
#include "wlock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char path[] = "/tmp/ws-wlock-XXXXXX";

static int classic(int fd, short type, int cmd) {
  struct flock fl;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 120;
  fl.l_len = 1;
  return fcntl(fd, cmd, &fl);
}

/* A child that tries the write lock without waiting: exit 0 if it got it,
** 1 if it is held elsewhere.  With patience_ms it retries that long. */
static int child_try(int patience_ms) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(path, O_RDWR);
    for (int waited = 0;; waited += 5) {
      if (classic(fd, F_WRLCK, F_SETLK) == 0) _exit(0);
      if (waited >= patience_ms) _exit(1);
      usleep(5000);
    }
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

/* A child that holds the lock until it reads a byte from *go (then waits
** delay_ms and exits, which releases it).  Returns its pid once it holds. */
static pid_t child_hold(int go[2], int delay_ms) {
  int ready[2];
  if (pipe(ready) != 0 || pipe(go) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(path, O_RDWR);
    char c = classic(fd, F_WRLCK, F_SETLK) == 0 ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(2);
    if (read(go[0], &c, 1) != 1) _exit(2);
    usleep((useconds_t)delay_ms * 1000);
    _exit(0);
  }
  char c = 0;
  if (read(ready[0], &c, 1) != 1 || c != 'y') return -1;
  close(ready[0]);
  close(ready[1]);
  return pid;
}

static void release_child(int go[2], pid_t pid) {
  char c = 'g';
  if (write(go[1], &c, 1) != 1) return;
  close(go[0]);
  close(go[1]);
  (void)pid;
}

static void test_excludes_other_process(void) {
  ws_wlock *w = NULL;
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(ws_wlock_open(&w, path, &err), WS_OK);
  CHECK_EQ(ws_wlock_acquire(w, 1000, &err), WS_OK);
  CHECK_EQ(child_try(0), 1);       /* shut out */
  ws_wlock_release(w);
  CHECK_EQ(child_try(0), 0);       /* free again */
  CHECK_EQ(ws_wlock_acquire(w, 1000, &err), WS_OK); /* and ours again */
  CHECK_EQ(child_try(0), 1);
  ws_wlock_close(w);               /* closing drops it */
  CHECK_EQ(child_try(0), 0);
}

/* A wlock opened while a child holds the lock (releasing delay_ms after its
** go), and a wait of wait_ms given up: 0 if every step went as expected. */
static int given_up_against_holder(ws_wlock **w, int go[2], pid_t *pid, int wait_ms,
                                   int delay_ms) {
  ws_err err = WS_ERR_INIT;
  if (ws_wlock_open(w, path, &err) != WS_OK) return -1;
  if ((*pid = child_hold(go, delay_ms)) <= 0) return -2;
  if (ws_wlock_acquire(*w, wait_ms, &err) != WS_ELOCKED) return -3;
  return strstr(err.msg, "busy") ? 0 : -4;
}

static void test_timeout_then_woken_by_unlock(void) {
  ws_wlock *w = NULL;
  ws_err err = WS_ERR_INIT;
  int go[2];
  pid_t pid;
  CHECK_EQ(given_up_against_holder(&w, go, &pid, 30, 50), 0);
  /* the holder lets go 50 ms after this; a 10 s wait must end then */
  release_child(go, pid);
  CHECK_EQ(ws_wlock_acquire(w, 10000, &err), WS_OK);
  waitpid(pid, NULL, 0);
  CHECK_EQ(child_try(0), 1);
  ws_wlock_close(w);
}

static void test_late_lock_dropped(void) {
  ws_wlock *w = NULL;
  int go[2];
  pid_t pid;
  CHECK_EQ(given_up_against_holder(&w, go, &pid, 20, 0), 0);
  release_child(go, pid);          /* the waiter gets it now, unwanted */
  waitpid(pid, NULL, 0);
  /* so it must give it back: another process gets it within 5 s */
  CHECK_EQ(child_try(5000), 0);
  ws_wlock_close(w);
}

static void test_close_while_waiting(void) {
  ws_wlock *w = NULL;
  int go[2];
  pid_t pid;
  CHECK_EQ(given_up_against_holder(&w, go, &pid, 10, 0), 0);
  ws_wlock_close(w);               /* the waiter is blocked in the kernel */
  release_child(go, pid);
  waitpid(pid, NULL, 0);
  CHECK_EQ(child_try(0), 0);
}

static void test_missing_file_named(void) {
  ws_wlock *w = NULL;
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(ws_wlock_open(&w, "/nonexistent/db-shm", &err), WS_EIO);
  CHECK(w == NULL);
  CHECK(strstr(err.msg, "/nonexistent/db-shm") != NULL);
}

int main(void) {
  int fd = mkstemp(path);
  if (fd < 0 || ftruncate(fd, 32768) != 0) return 1;
  close(fd);
  RUN(test_excludes_other_process);
  RUN(test_timeout_then_woken_by_unlock);
  RUN(test_late_lock_dropped);
  RUN(test_close_while_waiting);
  RUN(test_missing_file_named);
  unlink(path);
  T_EXIT();
}
