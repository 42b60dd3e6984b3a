/*
** A test shim (LD_PRELOAD): fsync and fdatasync of files under
** $WS_SLOW_SYNC_PREFIX first sleep $WS_SLOW_SYNC_MS milliseconds.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void stall(int fd) {
  const char *ms = getenv("WS_SLOW_SYNC_MS"), *pre = getenv("WS_SLOW_SYNC_PREFIX");
  char link[64], path[4096];
  if (!ms || !pre || !*pre) return;
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof(path) - 1);
  if (n <= 0) return;
  path[n] = 0;
  if (strncmp(path, pre, strlen(pre)) != 0) return;
  long v = atol(ms);
  struct timespec ts = {v / 1000, (v % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  stall(fd);
  return real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  stall(fd);
  return real(fd);
}
