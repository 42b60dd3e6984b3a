/*
** A test shim (LD_PRELOAD): fsync and fdatasync of files under
** $WS_SLOW_SYNC_PREFIX first sleep $WS_SLOW_SYNC_MS milliseconds.  With
** $WS_SLOW_SYNC_FAIL set, only while the file it names exists, and then
** they fail with EIO: a store whose disk hangs and fails, which a test ends
** by removing that file.
**
** It stands in for a disk whose writeback queue an unthrottled writer
** keeps full: on this project's VMs the sidecar's own object fsync then
** stalled for 0.2-0.44 s, and the loop, blind meanwhile, let a flood's WAL
** grow to hundreds of MB (tests/integration/wal_bounded.sh, slowsync).
** Only paths under the prefix stall, so SQLite's fsyncs of the app's
** database and WAL (in the same process: the sidecar's checkpoints) keep
** the disk's real speed.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* 0: go on with the real call; -1: fail it (errno set) */
static int stall(int fd) {
  const char *ms = getenv("WS_SLOW_SYNC_MS"), *pre = getenv("WS_SLOW_SYNC_PREFIX");
  const char *fail = getenv("WS_SLOW_SYNC_FAIL");
  char link[64], path[4096];
  if (!ms || !pre || !*pre) return 0;
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof(path) - 1);
  if (n <= 0) return 0;
  path[n] = 0;
  if (strncmp(path, pre, strlen(pre)) != 0) return 0;
  if (fail && *fail && access(fail, F_OK) != 0) return 0;
  long v = atol(ms);
  struct timespec ts = {v / 1000, (v % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
  if (fail && *fail) {
    errno = EIO;
    return -1;
  }
  return 0;
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  return stall(fd) ? -1 : real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  return stall(fd) ? -1 : real(fd);
}
