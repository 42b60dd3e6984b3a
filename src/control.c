/*
** The control socket: a unix stream socket per database through which the
** CLI asks a running sidecar for its status, waits for a transaction to be
** durable, or requests a snapshot (API in include/walship/stats.h).
**
** Protocol: the client sends one request line, the sidecar answers one line
** (after progress lines, for a snapshot that asks for them) and closes.  Requests (numbers decimal, timeouts in ms, -1 = none):
**   status                   -> ok {JSON object, fields as ws_stats_view}
**   wait now TIMEOUT         -> ok txid=N | timeout txid=N durable=M | stopped txid=N
**   wait TXID TIMEOUT        -> (the same)
**   snapshot TIMEOUT         -> ok txid=N name=snap/... | timeout | stopped
**   snapshot TIMEOUT progress -> the same, preceded by lines
**                               "progress done=BYTES total=BYTES" (at most
**                               one every PROGRESS_MS, while the snapshot
**                               reads the database and the numbers move)
**   anything else            -> err MESSAGE
** "wait now" waits for the last transaction committed when the request
** arrived (ws_stats_wait): the sidecar reads the WAL at its next sync.
**
** Threads: one accept thread; one detached thread per connection (at most
** MAX_CONN; beyond that the request is answered "err busy").  A waiting
** connection gives up when its client hangs up (checked every 250 ms) or
** the server stops; ws_control_stop waits for every connection thread.
*/
#include "walship/stats.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CONN 64
#define REQ_MAX 256
#define REPLY_MAX (64u << 10)
#define PROGRESS_MS 500

struct ws_control {
  ws_stats *st;
  char *path;
  int lfd;                 /* listening socket */
  int wake[2];             /* self-pipe: stop the accept loop */
  dev_t dev;               /* of the socket we bound, to unlink only ours */
  ino_t ino;
  pthread_t thr;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int nconn;               /* connection threads alive */
  atomic_int stopping;
};

typedef struct conn {
  ws_control *c;
  int fd;
} conn;

/* ---------------------------------------------------------------- paths */

int ws_control_path(char *out, size_t cap, const char *db_path, ws_err *err) {
  char canon[PATH_MAX];
  struct sockaddr_un sa;
  if (!realpath(db_path, canon))
    return ws_fail(err, errno == ENOENT ? WS_ENOTFOUND : WS_EIO, "database %s: %s",
                   db_path, strerror(errno));
  int n = snprintf(out, cap, "%s-walship.sock", canon);
  if (n >= 0 && (size_t)n < cap && (size_t)n < sizeof(sa.sun_path)) return WS_OK;
  /* Too long for sun_path: a name in /tmp from a hash of the canonical
  ** path (FNV-1a 64), the same for every client of this database. */
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char *p = canon; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
  n = snprintf(out, cap, "/tmp/walship-%016llx.sock", (unsigned long long)h);
  if (n < 0 || (size_t)n >= cap) return ws_fail(err, WS_EINVAL, "control socket path too long");
  return WS_OK;
}

static int set_addr(struct sockaddr_un *sa, const char *path, ws_err *err) {
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(sa->sun_path))
    return ws_fail(err, WS_EINVAL, "control socket path %s is longer than %zu bytes", path,
                   sizeof(sa->sun_path) - 1);
  memcpy(sa->sun_path, path, strlen(path) + 1);
  return WS_OK;
}

/* ------------------------------------------------------------- replies */

static char *status_json(ws_stats *st) {
  ws_stats_view v;
  ws_stats_get(&v, st);
  int64_t now = ws_now_ms();
  json_object *o = json_object_new_object(), *e = json_object_new_object();
  json_object_object_add(o, "db", json_object_new_string(v.db));
  json_object_object_add(o, "dest", json_object_new_string(v.dest));
  json_object_object_add(o, "pid", json_object_new_int64(getpid()));
  json_object_object_add(o, "running", json_object_new_boolean(v.running));
  json_object_object_add(o, "seen_txid", json_object_new_int64((int64_t)v.seen_txid));
  json_object_object_add(o, "seen_time_ms", json_object_new_int64(v.seen_ms));
  json_object_object_add(o, "durable_txid", json_object_new_int64((int64_t)v.durable_txid));
  json_object_object_add(o, "durable_time_ms", json_object_new_int64(v.durable_ms));
  json_object_object_add(o, "lag_transactions", json_object_new_int64((int64_t)v.lag_txns));
  json_object_object_add(o, "lag_seconds", json_object_new_double((double)v.lag_ms / 1000.0));
  json_object_object_add(o, "wal_bytes", json_object_new_int64(v.wal_bytes));
  json_object_object_add(o, "uploaded_bytes", json_object_new_int64((int64_t)v.uploaded_bytes));
  json_object_object_add(o, "objects", json_object_new_int64((int64_t)v.objects));
  json_object_object_add(o, "barriers", json_object_new_int64((int64_t)v.barriers));
  json_object_object_add(o, "barriers_busy", json_object_new_int64((int64_t)v.barriers_busy));
  json_object_object_add(o, "checkpoint_yields", json_object_new_int64((int64_t)v.ckpt_yields));
  json_object_object_add(o, "write_brakes", json_object_new_int64((int64_t)v.brakes));
  json_object_object_add(o, "cycle_barriers", json_object_new_int64((int64_t)v.cycle_barriers));
  json_object_object_add(o, "errors_total", json_object_new_int64((int64_t)v.errors_total));
  for (int k = 0; k < WS_STATS_KINDS; k++)
    if (v.errors[k]) json_object_object_add(e, ws_stats_kind(k),
                                            json_object_new_int64((int64_t)v.errors[k]));
  json_object_object_add(o, "errors", e);
  json_object_object_add(o, "last_error", json_object_new_string(v.last_error));
  json_object_object_add(o, "last_error_time_ms", json_object_new_int64(v.last_error_ms));
  json_object_object_add(o, "snapshot_txid", json_object_new_int64((int64_t)v.snapshot_txid));
  json_object_object_add(o, "snapshot_name", json_object_new_string(v.snapshot_name));
  json_object_object_add(o, "snapshot_age_seconds",
                         v.snapshot_ms ? json_object_new_double((double)(now - v.snapshot_ms) / 1000.0)
                                       : NULL);
  /* several destinations: what each did (the position above is shared) */
  if (v.ndests) {
    json_object *a = json_object_new_array();
    ws_stats_dest_view d;
    for (size_t i = 0; ws_stats_get_dest(&d, st, i); i++) {
      json_object *x = json_object_new_object(), *de = json_object_new_object();
      json_object_object_add(x, "name", json_object_new_string(d.name));
      json_object_object_add(x, "uploaded_bytes", json_object_new_int64((int64_t)d.uploaded_bytes));
      json_object_object_add(x, "objects", json_object_new_int64((int64_t)d.objects));
      json_object_object_add(x, "upload_seconds", json_object_new_double(d.sync.sum_s));
      json_object_object_add(x, "errors_total", json_object_new_int64((int64_t)d.errors_total));
      for (int k = 0; k < WS_STATS_KINDS; k++)
        if (d.errors[k]) json_object_object_add(de, ws_stats_kind(k),
                                                json_object_new_int64((int64_t)d.errors[k]));
      json_object_object_add(x, "errors", de);
      json_object_object_add(x, "last_error", json_object_new_string(d.last_error));
      json_object_object_add(x, "last_error_time_ms", json_object_new_int64(d.last_error_ms));
      json_object_array_add(a, x);
    }
    json_object_object_add(o, "dests", a);
  }
  const char *txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
  char *r = NULL;
  if (txt && asprintf(&r, "ok %s\n", txt) < 0) r = NULL;
  json_object_put(o);
  return r;
}

static int conn_cancel(void *ud) {
  conn *k = ud;
  if (atomic_load(&k->c->stopping)) return 1;
  /* HUP, not RDHUP: a client may shut down its sending side and still read */
  struct pollfd p = {k->fd, 0, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR));
}

static void write_all(int fd, const char *s);

static char *answer(conn *k, char *req) {
  ws_stats *st = k->c->st;
  char *r = NULL, word[16];
  long long a = 0, b = -1;
  unsigned long long txid = 0;
  char arg[32] = "";
  int n;
  if (!strcmp(req, "status")) return status_json(st);
  if (sscanf(req, "wait %31s %lld%n", arg, &b, &n) == 2 && req[n] == 0) {
    int now = !strcmp(arg, "now");
    char *end;
    errno = 0;
    if (!now) {
      txid = strtoull(arg, &end, 10);
      if (errno || *end || arg[0] == '-') goto bad;
    }
    uint64_t target;
    int w = ws_stats_wait(st, txid, now, b, conn_cancel, k, &target);
    ws_stats_view v;
    ws_stats_get(&v, st);
    if (w == WS_WAIT_DURABLE) n = asprintf(&r, "ok txid=%llu\n", (unsigned long long)target);
    else n = asprintf(&r, "%s txid=%llu durable=%llu\n",
                      w == WS_WAIT_TIMEOUT ? "timeout" : "stopped",
                      (unsigned long long)target, (unsigned long long)v.durable_txid);
    return n < 0 ? NULL : r;
  }
  if (sscanf(req, "snapshot %lld%n", &a, &n) == 1 &&
      (req[n] == 0 || !strcmp(req + n, " progress"))) {
    uint64_t t;
    char name[96];
    int w;
    if (req[n] == 0) {
      w = ws_stats_snapshot_now(st, a, conn_cancel, k, &t, name, sizeof(name));
    } else {
      /* wait in slices; between them, tell the client how far it is */
      uint64_t gen = ws_stats_snapshot_request(st), last = 0;
      int64_t until = a < 0 ? -1 : ws_mono_ms() + a;
      for (;;) {
        int64_t slice = PROGRESS_MS, left = until < 0 ? slice : until - ws_mono_ms();
        if (left < slice) slice = left < 0 ? 0 : left;
        w = ws_stats_snapshot_wait(st, gen, slice, conn_cancel, k, &t, name, sizeof(name));
        if (w != WS_WAIT_TIMEOUT || (until >= 0 && ws_mono_ms() >= until)) break;
        ws_stats_view v;
        ws_stats_get(&v, st);
        if (v.snap_total_bytes && v.snap_done_bytes != last) {
          char line[96];
          last = v.snap_done_bytes;
          snprintf(line, sizeof(line), "progress done=%llu total=%llu\n",
                   (unsigned long long)v.snap_done_bytes,
                   (unsigned long long)v.snap_total_bytes);
          write_all(k->fd, line);
        }
      }
    }
    if (w == WS_WAIT_DURABLE)
      n = asprintf(&r, "ok txid=%llu name=%s\n", (unsigned long long)t, name);
    else n = asprintf(&r, "%s\n", w == WS_WAIT_TIMEOUT ? "timeout" : "stopped");
    return n < 0 ? NULL : r;
  }
bad:
  snprintf(word, sizeof(word), "%.15s", req);
  if (asprintf(&r, "err unknown request '%s' (want status, wait, snapshot)\n", word) < 0)
    return NULL;
  return r;
}

/* Read one line (at most REQ_MAX bytes) within 5 s, or until the server stops. */
static int read_line(ws_control *c, int fd, char *buf, size_t cap) {
  size_t len = 0;
  int64_t end = ws_mono_ms() + 5000;
  while (len + 1 < cap) {
    struct pollfd p = {fd, POLLIN, 0};
    int64_t left = end - ws_mono_ms();
    if (left <= 0 || atomic_load(&c->stopping)) return -1;
    int pr = poll(&p, 1, left > 250 ? 250 : (int)left);
    if (pr < 0 && errno != EINTR) return -1;
    if (pr <= 0) continue;
    ssize_t r = read(fd, buf + len, cap - 1 - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    len += (size_t)r;
    buf[len] = 0;
    char *nl = memchr(buf, '\n', len);
    if (nl) {
      *nl = 0;
      if (nl > buf && nl[-1] == '\r') nl[-1] = 0;
      return 0;
    }
  }
  return -1;
}

static void write_all(int fd, const char *s) {
  size_t n = strlen(s);
  while (n) {
    ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

static void *conn_main(void *ud) {
  conn *k = ud;
  ws_control *c = k->c;
  char req[REQ_MAX];
  if (read_line(c, k->fd, req, sizeof(req)) == 0) {
    char *r = answer(k, req);
    write_all(k->fd, r ? r : "err out of memory\n");
    free(r);
  }
  close(k->fd);
  free(k);
  pthread_mutex_lock(&c->mu);
  c->nconn--;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

static void *accept_main(void *ud) {
  ws_control *c = ud;
  while (!atomic_load(&c->stopping)) {
    struct pollfd p[2] = {{c->lfd, POLLIN, 0}, {c->wake[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      ws_log(WS_LOG_ERROR, "control", "poll %s: %s; control socket closed", c->path,
             strerror(errno));
      break;
    }
    if (atomic_load(&c->stopping) || (p[1].revents & POLLIN)) break;
    int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue;
    pthread_mutex_lock(&c->mu);
    int busy = c->nconn >= MAX_CONN;
    if (!busy) c->nconn++;
    pthread_mutex_unlock(&c->mu);
    conn *k = busy ? NULL : malloc(sizeof(*k));
    pthread_t t;
    pthread_attr_t at;
    if (k) {
      k->c = c;
      k->fd = fd;
      pthread_attr_init(&at);
      pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
      int rc = pthread_create(&t, &at, conn_main, k);
      pthread_attr_destroy(&at);
      if (rc == 0) continue;
      free(k);
    }
    if (!busy) {
      pthread_mutex_lock(&c->mu);
      c->nconn--;
      pthread_mutex_unlock(&c->mu);
    }
    write_all(fd, "err busy\n");
    close(fd);
  }
  return NULL;
}

/* ----------------------------------------------------------- lifecycle */

/* A socket file already at path: a live server is WS_ELOCKED, a stale one
** (connection refused) is removed, anything else is left alone. */
static int clear_stale(const char *path, const struct sockaddr_un *sa, ws_err *err) {
  struct stat sb;
  if (lstat(path, &sb) != 0) return WS_OK;
  if (!S_ISSOCK(sb.st_mode))
    return ws_fail(err, WS_EEXIST, "control socket %s: exists and is not a socket", path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ws_fail(err, WS_EIO, "socket: %s", strerror(errno));
  int live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
  close(fd);
  if (live)
    return ws_fail(err, WS_ELOCKED, "control socket %s is served by another process "
                   "(is another walship running for this database?)", path);
  if (unlink(path) != 0 && errno != ENOENT)
    return ws_fail(err, WS_EIO, "remove stale control socket %s: %s", path, strerror(errno));
  return WS_OK;
}

int ws_control_start(ws_control **out, const char *path, const char *db_path, ws_stats *st,
                     ws_err *err) {
  char def[PATH_MAX + 32];
  struct sockaddr_un sa;
  struct stat dbs, ss;
  int rc;
  if (!path) {
    if ((rc = ws_control_path(def, sizeof(def), db_path, err))) return rc;
    path = def;
  }
  if (stat(db_path, &dbs) != 0)
    return ws_fail(err, errno == ENOENT ? WS_ENOTFOUND : WS_EIO, "database %s: %s",
                   db_path, strerror(errno));
  if ((rc = set_addr(&sa, path, err)) || (rc = clear_stale(path, &sa, err))) return rc;
  ws_control *c = ws_calloc(1, sizeof(*c), err);
  if (!c) return WS_ENOMEM;
  c->st = st;
  c->lfd = c->wake[0] = c->wake[1] = -1;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  if (!(c->path = ws_strdup(path, err))) { rc = WS_ENOMEM; goto fail; }
  if (pipe2(c->wake, O_CLOEXEC) != 0) {
    rc = ws_fail(err, WS_EIO, "pipe: %s", strerror(errno));
    goto fail;
  }
  c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->lfd < 0) { rc = ws_fail(err, WS_EIO, "socket: %s", strerror(errno)); goto fail; }
  if (bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    rc = ws_fail(err, errno == EADDRINUSE ? WS_ELOCKED : WS_EIO, "bind control socket %s: %s",
                 c->path, strerror(errno));
    goto fail;
  }
  /* Whoever may write the database may ask (connecting needs write access). */
  if (chmod(c->path, (dbs.st_mode & 0666) | 0600) != 0 || stat(c->path, &ss) != 0 ||
      listen(c->lfd, 16) != 0) {
    rc = ws_fail(err, WS_EIO, "control socket %s: %s", c->path, strerror(errno));
    unlink(c->path);
    goto fail;
  }
  c->dev = ss.st_dev;
  c->ino = ss.st_ino;
  if (pthread_create(&c->thr, NULL, accept_main, c) != 0) {
    rc = ws_fail(err, WS_ERROR, "control socket %s: cannot start its thread", c->path);
    unlink(c->path);
    goto fail;
  }
  ws_log(WS_LOG_INFO, "control", "listening path=%s", c->path);
  *out = c;
  return WS_OK;
fail:
  if (c->lfd >= 0) close(c->lfd);
  if (c->wake[0] >= 0) close(c->wake[0]), close(c->wake[1]);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(c->path);
  free(c);
  return rc;
}

void ws_control_stop(ws_control *c) {
  if (!c) return;
  atomic_store(&c->stopping, 1);
  ssize_t w = write(c->wake[1], "x", 1);
  (void)w;
  pthread_join(c->thr, NULL);
  /* connection threads notice `stopping` within 250 ms (conn_cancel) */
  pthread_mutex_lock(&c->mu);
  while (c->nconn > 0) pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
  struct stat sb;
  if (lstat(c->path, &sb) == 0 && sb.st_dev == c->dev && sb.st_ino == c->ino) unlink(c->path);
  close(c->lfd);
  close(c->wake[0]);
  close(c->wake[1]);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(c->path);
  free(c);
}

/* -------------------------------------------------------------- client */

int ws_control_call(char **reply, const char *path, const char *request, int64_t timeout_ms,
                    ws_err *err) {
  return ws_control_call_ex(reply, path, request, timeout_ms, NULL, NULL, err);
}

int ws_control_call_ex(char **reply, const char *path, const char *request,
                       int64_t timeout_ms, void (*on_line)(void *ud, const char *line),
                       void *ud, ws_err *err) {
  struct sockaddr_un sa;
  int rc = set_addr(&sa, path, err);
  if (rc) return rc;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ws_fail(err, WS_EIO, "socket: %s", strerror(errno));
  char *buf = NULL;
  size_t len = 0;
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    int e = errno;
    if (e == ENOENT || e == ECONNREFUSED)
      rc = ws_fail(err, WS_ENOTFOUND, "no walship sidecar is running for this database "
                   "(nothing listens on %s)", path);
    else rc = ws_fail(err, WS_EIO, "connect %s: %s", path, strerror(e));
    goto out;
  }
  write_all(fd, request);
  write_all(fd, "\n");
  if (!(buf = ws_malloc(REPLY_MAX + 1, err))) { rc = WS_ENOMEM; goto out; }
  int64_t end = timeout_ms < 0 ? -1 : ws_mono_ms() + timeout_ms;
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    int64_t left = end < 0 ? 1000 : end - ws_mono_ms();
    if (end >= 0 && left <= 0) {
      rc = ws_fail(err, WS_ERROR, "%s: no answer within %lld ms", path, (long long)timeout_ms);
      goto out;
    }
    int pr = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
    if (pr < 0 && errno != EINTR) {
      rc = ws_fail(err, WS_EIO, "poll %s: %s", path, strerror(errno));
      goto out;
    }
    if (pr <= 0) continue;
    ssize_t r = read(fd, buf + len, REPLY_MAX - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { rc = ws_fail(err, WS_EIO, "read %s: %s", path, strerror(errno)); goto out; }
    len += (size_t)r;
    buf[len] = 0;
    char *nl;
    /* progress lines come before the answer */
    while ((nl = memchr(buf, '\n', len)) && !strncmp(buf, "progress ", 9)) {
      *nl = 0;
      if (on_line) on_line(ud, buf);
      len -= (size_t)(nl + 1 - buf);
      memmove(buf, nl + 1, len + 1);
    }
    if (nl) { *nl = 0; break; }
    if (r == 0 || len == REPLY_MAX) {
      rc = ws_fail(err, WS_ERROR, "%s: the sidecar closed the connection without an answer "
                   "(did it stop?)", path);
      goto out;
    }
  }
  *reply = buf;
  buf = NULL;
out:
  free(buf);
  close(fd);
  return rc;
}
