/*
** Error records, the log hook, time, and checked file I/O.
** Nothing here allocates on the hot path; logging formats into a stack
** buffer and only when the level is enabled.
*/
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>
#include <libgen.h>
#include <limits.h>

static const char *const code_names[] = {
  "ok", "error", "invalid argument", "out of memory", "I/O error",
  "corrupt input", "not found", "already exists", "database not in WAL mode",
  "history has a gap", "verification failed", "SQLite error", "store error",
  "locked by another process", "stopped", "store is empty",
};

const char *ws_strerror(int code) {
  if (code >= 0 && (size_t)code < sizeof(code_names) / sizeof(code_names[0]))
    return code_names[code];
  return "unknown error";
}

int ws_seterr_(ws_err *e, int code, const char *file, int line, const char *fmt, ...) {
  if (!e) return code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
  va_end(ap);
  /* one line, always */
  for (char *p = e->msg; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  e->code = code;
  e->src_file = file;
  e->src_line = line;
  return code;
}

static ws_log_fn log_fn;
static void *log_ud;
static int log_max = WS_LOG_INFO;

void ws_set_log(ws_log_fn fn, void *ud, int max_level) {
  log_fn = fn;
  log_ud = ud;
  log_max = max_level;
}

int ws_log_enabled(int level) { return log_fn && level <= log_max; }

void ws_log(int level, const char *component, const char *fmt, ...) {
  if (!ws_log_enabled(level)) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  log_fn(log_ud, level, component, buf);
}

int64_t ws_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ws_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ws_random_id(void *buf, size_t n) {
  uint8_t *p = buf;
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(p + got, n - got, 0);
    if (r > 0) got += (size_t)r;
    else if (r < 0 && errno == EINTR) continue;
    else break;
  }
  uint64_t t = (uint64_t)ws_now_ms() * 0x9E3779B97F4A7C15ull ^ ((uint64_t)getpid() << 20) ^
               (uint64_t)ws_mono_ms();
  for (; got < n; got++, t = t * 0x100000001B3ull + 0x9E37u) p[got] = (uint8_t)(t >> 56);
}

ssize_t ws_pread_full(int fd, void *buf, size_t n, off_t off, const char *path, ws_err *err) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
    if (r < 0) {
      if (errno == EINTR) continue;
      ws_fail(err, WS_EIO, "read %s: %s", path, strerror(errno));
      return -1;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

int ws_write_full(int fd, const void *buf, size_t n, const char *path, ws_err *err) {
  const char *p = buf;
  while (n > 0) {
    ssize_t r = write(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ws_fail(err, WS_EIO, "write %s: %s", path, strerror(errno));
    }
    p += r;
    n -= (size_t)r;
  }
  return WS_OK;
}

int ws_pwrite_full(int fd, const void *buf, size_t n, off_t off, const char *path, ws_err *err) {
  const char *p = buf;
  while (n > 0) {
    ssize_t r = pwrite(fd, p, n, off);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ws_fail(err, WS_EIO, "write %s: %s", path, strerror(errno));
    }
    p += r;
    off += r;
    n -= (size_t)r;
  }
  return WS_OK;
}

int ws_fsync(int fd, const char *path, ws_err *err) {
  if (fsync(fd) != 0)
    return ws_fail(err, WS_EIO, "fsync %s: %s", path, strerror(errno));
  return WS_OK;
}

void ws_writeback_kick(int fd, uint64_t *dirty, size_t n) {
  if ((*dirty += n) < WS_WRITEBACK_EVERY) return;
  *dirty = 0;
  /* Advice only: a file system without it (ENOSYS, EINVAL, ESPIPE) gets
  ** the one fsync at the end, as before. */
  (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

int ws_close(int fd, const char *path, ws_err *err) {
  if (close(fd) != 0 && errno != EINTR)
    return ws_fail(err, WS_EIO, "close %s: %s", path, strerror(errno));
  return WS_OK;
}

int ws_fsync_dir_of(const char *path, ws_err *err) {
  char tmp[PATH_MAX];
  if (strlen(path) >= sizeof(tmp))
    return ws_fail(err, WS_EINVAL, "path too long: %s", path);
  strcpy(tmp, path);
  const char *dir = dirname(tmp);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return ws_fail(err, WS_EIO, "open directory %s: %s", dir, strerror(errno));
  int rc = ws_fsync(fd, dir, err);
  close(fd);
  return rc;
}

/* Buffers of 512 bytes (SQLite's smallest page) or more start on a 64-byte
** boundary: most are the destination of pread(), and the kernel's copy into
** user memory (rep movsb) ran at 1.5-2.3 GB/s instead of 10-12 on this
** machine's AMD EPYC whenever (destination - source) mod 64 fell in 1..31,
** which malloc's 16-byte
** alignment against page-aligned file offsets always did: a 100 MB restore
** spent ~60 ms of its ~150 ms copying (docs/benchmarks.md, S11).  Memory
** from posix_memalign is released with free() like any other. */
void *ws_malloc(size_t n, ws_err *err) {
  void *p = NULL;
  if (n >= 512) {
    if (posix_memalign(&p, 64, n) != 0) p = NULL;
  } else {
    p = malloc(n ? n : 1);
  }
  if (!p) ws_fail(err, WS_ENOMEM, "out of memory (%zu bytes)", n);
  return p;
}

void *ws_calloc(size_t n, size_t sz, ws_err *err) {
  void *p = calloc(n ? n : 1, sz ? sz : 1);
  if (!p) ws_fail(err, WS_ENOMEM, "out of memory (%zu x %zu bytes)", n, sz);
  return p;
}

void *ws_realloc(void *p, size_t n, ws_err *err) {
  void *q = realloc(p, n ? n : 1);
  if (!q) ws_fail(err, WS_ENOMEM, "out of memory (%zu bytes)", n);
  return q;
}

char *ws_strdup(const char *s, ws_err *err) {
  char *p = strdup(s);
  if (!p) ws_fail(err, WS_ENOMEM, "out of memory");
  return p;
}

char *ws_asprintf(ws_err *err, const char *fmt, ...) {
  va_list ap;
  char *out = NULL;
  va_start(ap, fmt);
  int r = vasprintf(&out, fmt, ap);
  va_end(ap);
  if (r < 0) {
    ws_fail(err, WS_ENOMEM, "out of memory");
    return NULL;
  }
  return out;
}
