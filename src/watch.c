/*
** inotify watcher, see watch.h.  Events for one file arrive at the rate of
** the app's write() calls; the kernel coalesces identical unread events and
** we drain them 64 KiB at a time, so a busy writer costs us a few reads/s.
**
** It costs the app more: while a watch on the directory asks for IN_MODIFY,
** every write() of the app's queues an inotify event in the app's own
** syscall (7 % of a 1000 tx/s writer's CPU, perf, docs/benchmarks.md).  So
** the content events are armed only while the caller wants to be woken by
** them (nothing pending); the rest of the time the watch keeps only the
** directory events (create, delete, rename), which writes do not touch.
*/
#include "watch.h"
#include "common.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <unistd.h>

#define DIR_EVENTS (IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM)
#define ALL_EVENTS (DIR_EVENTS | IN_MODIFY | IN_CLOSE_WRITE)

struct ws_watch {
  int ifd;            /* -1: polling only */
  int armed;          /* the watch includes IN_MODIFY | IN_CLOSE_WRITE */
  int kick;           /* -1, or a descriptor polled too (ws_watch_set_kick) */
  char *dir;
  char *db_base;
  char *wal_base;
};

int ws_watch_open(ws_watch **out, const char *db_path, ws_err *err) {
  char a[PATH_MAX], b[PATH_MAX];
  ws_watch *w = ws_calloc(1, sizeof(*w), err);
  if (!w) return WS_ENOMEM;
  w->ifd = w->kick = -1;
  snprintf(a, sizeof(a), "%s", db_path);
  snprintf(b, sizeof(b), "%s", db_path);
  const char *dir = dirname(a), *base = basename(b);
  if (!(w->db_base = ws_strdup(base, err)) || !(w->dir = ws_strdup(dir, err)) ||
      !(w->wal_base = ws_asprintf(err, "%s-wal", base))) {
    ws_watch_close(w);
    return WS_ENOMEM;
  }
  w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  w->armed = 1;
  if (w->ifd >= 0 && inotify_add_watch(w->ifd, dir, ALL_EVENTS) < 0) {
    close(w->ifd);
    w->ifd = -1;
  }
  if (w->ifd < 0)
    ws_log(WS_LOG_INFO, "watch", "inotify unavailable (%s); polling", strerror(errno));
  *out = w;
  return WS_OK;
}

void ws_watch_close(ws_watch *w) {
  if (!w) return;
  if (w->ifd >= 0) close(w->ifd);
  free(w->dir);
  free(w->db_base);
  free(w->wal_base);
  free(w);
}

static int drain(ws_watch *w) {
  char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
  int mask = 0;
  for (;;) {
    ssize_t n = read(w->ifd, buf, sizeof(buf));
    if (n <= 0) break;
    for (char *p = buf; p < buf + n;) {
      struct inotify_event *ev = (struct inotify_event *)p;
      if (ev->len) {
        if (strcmp(ev->name, w->wal_base) == 0) mask |= WS_WATCH_WAL;
        else if (strcmp(ev->name, w->db_base) == 0) mask |= WS_WATCH_DB;
      }
      if (ev->mask & IN_Q_OVERFLOW) mask |= WS_WATCH_WAL | WS_WATCH_DB;
      p += sizeof(struct inotify_event) + ev->len;
    }
  }
  return mask;
}

/* Replacing the watch's mask (no IN_MASK_ADD) keeps its descriptor.  A
** failure leaves the old mask: armed too long costs the app, disarmed too
** long only delays us to the caller's timeout. */
static void arm(ws_watch *w, int on) {
  if (w->armed == on) return;
  if (inotify_add_watch(w->ifd, w->dir, on ? ALL_EVENTS : DIR_EVENTS) >= 0)
    w->armed = on;
}

int ws_watch_inotify(const ws_watch *w) { return w->ifd >= 0; }

void ws_watch_set_kick(ws_watch *w, int fd) { w->kick = fd; }

/* poll() on what is set of {inotify (when on), kick}: the mask, with
** WS_WATCH_KICK when the kick fired (its counter is reset). */
static int wait_fds(ws_watch *w, int timeout_ms, int on) {
  struct pollfd p[2];
  int n = 0, mask = 0;
  if (on) p[n].fd = w->ifd, p[n].events = POLLIN, p[n].revents = 0, n++;
  if (w->kick >= 0) p[n].fd = w->kick, p[n].events = POLLIN, p[n].revents = 0, n++;
  if (poll(n ? p : NULL, (nfds_t)n, timeout_ms) <= 0) return 0;
  if (w->kick >= 0 && (p[n - 1].revents & POLLIN)) {
    uint64_t v;
    if (read(w->kick, &v, sizeof(v)) == (ssize_t)sizeof(v)) mask |= WS_WATCH_KICK;
  }
  if (on && (p[0].revents & POLLIN)) mask |= drain(w);
  return mask;
}

int ws_watch_wait(ws_watch *w, int timeout_ms, int events) {
  if (timeout_ms < 0) timeout_ms = 0;
  if (w->ifd >= 0 && events && !w->armed) {
    /* Writes made while disarmed raised nothing: return at once so the
    ** caller looks at the files again before it sleeps on events. */
    arm(w, 1);
    return drain(w);
  }
  if (w->ifd >= 0 && !events) arm(w, 0);
  if (w->ifd < 0 || !events) {
    int mask = timeout_ms ? wait_fds(w, timeout_ms, 0) : 0;
    return w->ifd < 0 ? mask : mask | drain(w);
  }
  int mask = drain(w);
  if (mask) return mask;
  return wait_fds(w, timeout_ms, 1);
}
