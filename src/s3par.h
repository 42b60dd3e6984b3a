/*
** A small pool of worker threads for the s3 store's parallel transfers
** (multipart parts going up, ranges of a large object coming down).
**
** n slots, one worker thread per slot, each worker with its own ws_http
** (a curl handle is not thread-safe).  Job number seq always runs in slot
** seq % n, so jobs finish in any order but the caller collects them in
** order by waiting on seq, seq+1, ...  A slot belongs to the caller while
** idle and to its worker while busy; the switch happens under the pool's
** mutex, so slot fields need no other locking.  At most n jobs are in
** flight and each slot holds one buffer: memory is n buffers.
*/
#ifndef WS_S3PAR_H
#define WS_S3PAR_H

#include <stddef.h>
#include <stdint.h>
#include "http.h"

typedef struct ws_s3par ws_s3par;

typedef struct ws_s3par_slot {
  ws_s3par *par;               /* owning pool (for ws_s3par_cancelled) */
  uint64_t seq;                /* job number now in (or last run in) the slot */
  uint8_t *buf;                /* part body or range bytes; freed with the pool */
  size_t len, cap;             /* bytes used / allocated in buf */
  uint64_t off, want;          /* GET: first byte and length of the range */
  int rc;                      /* the job's result once idle */
  ws_err err;                  /* the job's one-line error when rc != 0 */
  char etag[160];              /* PUT: the part's ETag, quotes kept */
} ws_s3par_slot;

/* Runs on a worker: perform the job described by sl on h. */
typedef int (*ws_s3par_fn)(void *ud, ws_http *h, ws_s3par_slot *sl, ws_err *err);

/* Start n workers (each with a ws_http made from cfg) running fn(ud, ...). */
int ws_s3par_new(ws_s3par **out, const ws_http_cfg *cfg, unsigned n, ws_s3par_fn fn,
                 void *ud, ws_err *err);
/* Wait until the slot of job seq is idle (its earlier job finished) and
** return it: the caller reads the earlier result and may refill it. */
ws_s3par_slot *ws_s3par_wait(ws_s3par *p, uint64_t seq);
/* Hand an idle slot (from ws_s3par_wait(p, seq)) to its worker as job seq. */
void ws_s3par_start(ws_s3par *p, ws_s3par_slot *sl, uint64_t seq);
/* Ask running jobs to give up early (jobs poll ws_s3par_cancelled). */
void ws_s3par_cancel(ws_s3par *p);
int ws_s3par_cancelled(const ws_s3par *p);
/* Wait for every job in flight, stop the workers, free all (NULL ok). */
void ws_s3par_free(ws_s3par *p);

/* A sink (ud = the slot) appending to sl->buf, for a range job; it stops
** the transfer once the pool is cancelled. */
int ws_s3par_fill(void *ud, const void *buf, size_t len, ws_err *err);

/*
** Ordered parallel download of len bytes from pos (0 = to the end): n
** workers run fn for ranges of `range` bytes (sl->off, sl->want; fn
** fills sl->buf, already `range` bytes, with ws_s3par_fill), and the
** ranges reach sink strictly in order, each byte once.  The first range
** shorter than asked (an empty one past the end included) ends the
** object; ranges after it are discarded.  A failed range or a sink error
** stops everything and is returned unchanged.  Memory: n ranges.
*/
int ws_s3par_get(const ws_http_cfg *cfg, unsigned n, size_t range, uint64_t pos,
                 uint64_t len, ws_s3par_fn fn, void *ud, ws_sink_fn sink, void *sink_ud,
                 ws_err *err);

#endif
