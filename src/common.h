/*
** Internal helpers shared by every libwalship file: error recording,
** logging, big-endian integer coding, time, and careful file I/O.
**
** Error convention: a failure is recorded once, where it is detected, with
** ws_fail(err, CODE, "what path: why") which returns CODE, so the usual
** shape is `return ws_fail(err, WS_EIO, "fsync %s: %s", p, strerror(errno));`.
** Callers pass the code up unchanged and never overwrite err.
*/
#ifndef WS_COMMON_H
#define WS_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "walship/walship.h"

#define WS_PRINTF(a, b) __attribute__((format(printf, a, b)))

int ws_seterr_(ws_err *e, int code, const char *file, int line,
               const char *fmt, ...) WS_PRINTF(5, 6);
#define ws_fail(e, code, ...) ws_seterr_((e), (code), __FILE__, __LINE__, __VA_ARGS__)
/* Corruption: same, but the source line is part of what the user sees. */
#define ws_corrupt(e, ...) ws_seterr_((e), WS_ECORRUPT, __FILE__, __LINE__, __VA_ARGS__)

void ws_log(int level, const char *component, const char *fmt, ...) WS_PRINTF(3, 4);
int ws_log_enabled(int level);

/* Big-endian coding (all on-disk integers of WAL and our format). */
static inline uint32_t ws_get32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void ws_put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline uint64_t ws_get64(const uint8_t *p) {
  return ((uint64_t)ws_get32(p) << 32) | ws_get32(p + 4);
}
static inline void ws_put64(uint8_t *p, uint64_t v) {
  ws_put32(p, (uint32_t)(v >> 32)); ws_put32(p + 4, (uint32_t)v);
}
static inline uint16_t ws_get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline void ws_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

int64_t ws_now_ms(void);        /* wall clock, unix ms */
int64_t ws_mono_ms(void);       /* monotonic ms */
/* n random bytes for names and IDs (not keys): the kernel's getrandom, or
** clock and pid bits if it fails.  Not OpenSSL's RAND_bytes: its first call
** initializes the library's DRBG and providers, ~2 MiB of the sidecar's RSS. */
void ws_random_id(void *buf, size_t n);

/* Full read/write with EINTR handling; set err naming path on failure.
** ws_pread_full returns the bytes read (short only at EOF) or -1. */
ssize_t ws_pread_full(int fd, void *buf, size_t n, off_t off, const char *path, ws_err *err);
int ws_write_full(int fd, const void *buf, size_t n, const char *path, ws_err *err);
int ws_pwrite_full(int fd, const void *buf, size_t n, off_t off, const char *path, ws_err *err);
int ws_fsync(int fd, const char *path, ws_err *err);
/* Count n more bytes written to fd since the last call that started
** writeback; past WS_WRITEBACK_EVERY, start the disk on the file's dirty
** pages (sync_file_range WRITE: it does not wait for them).  For files
** written whole and then fsynced: the writeback runs while the rest is
** produced, and the final fsync waits only for the last few MiB. */
#define WS_WRITEBACK_EVERY (8u << 20)
void ws_writeback_kick(int fd, uint64_t *dirty, size_t n);
int ws_close(int fd, const char *path, ws_err *err);   /* checks close() */
int ws_fsync_dir_of(const char *path, ws_err *err);    /* fsync the parent dir */

/* malloc that records WS_ENOMEM in err; n == 0 allocates 1 byte. */
void *ws_malloc(size_t n, ws_err *err);
void *ws_calloc(size_t n, size_t sz, ws_err *err);
void *ws_realloc(void *p, size_t n, ws_err *err);
char *ws_strdup(const char *s, ws_err *err);
char *ws_asprintf(ws_err *err, const char *fmt, ...) WS_PRINTF(2, 3);

#endif
