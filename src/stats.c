/*
** Live statistics of one replicated database (include/walship/stats.h).
**
** One mutex guards everything; the sidecar holds it only to update a few
** fields, readers only to copy them.  A condition variable (on the
** monotonic clock) wakes the waiters of the control socket whenever the
** durable TXID, a scan answer or a snapshot changes.
**
** Lag bookkeeping: marks[] is a short list of (TXID, first seen) in TXID
** order, oldest first, for the commits seen but not durable yet.  Its head
** is the oldest such commit, so lag_ms is the age of marks[0].  A WAL change
** whose TXID is not known yet (noticed by the main loop before any scan) is
** a placeholder at the tail (txid 0); the next scan names it or drops it.
** When the list is full the tail absorbs newer commits: the head, which is
** all the lag needs, stays exact.
**
** Request generations: a waiter that wants "the last commit now" bumps
** req_gen; the sidecar notes req_gen when a scan begins, and a scan that
** read the whole WAL answers every request up to that generation
** (served_gen, served_txid).  So the answer comes from a read of the WAL
** that started after the request arrived.  Snapshots work the same way
** with snap_req / snap_taking / snap_done.
*/
#include "walship/stats.h"
#include "walship/dest.h"
#include "common.h"
#include "names.h"

#include <errno.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NMARKS 64

const double ws_hist_bounds[WS_HIST_NB] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                           0.5,   1,    2.5,   5,    10,  30, 60};

typedef struct mark {
  uint64_t txid;           /* commits up to here were first seen at ms; 0 = not known yet */
  int64_t ms;              /* monotonic */
} mark;

struct ws_stats {
  pthread_mutex_t mu;
  pthread_cond_t cv;       /* on CLOCK_MONOTONIC */
  ws_stats_view v;         /* counters; lag fields are computed in ws_stats_get */
  char *db, *dest;
  mark marks[NMARKS];
  size_t nmarks;
  uint64_t req_gen;        /* "wait --now" requests made */
  uint64_t served_gen;     /* answered by a complete scan ... */
  uint64_t served_txid;    /* ... which found commits up to here */
  uint64_t snap_req, snap_taking, snap_done;
  int stopped;
  int kick_fd;             /* eventfd: a request arrived (the sidecar's loop polls it) */
  ws_stats_dest_view *dests; /* v.ndests of them, names owned (dest_names) */
  char **dest_names;
};

static const char *const kind_names[] = {
  "ok", "error", "invalid", "nomem", "io", "corrupt", "notfound", "exists",
  "notwal", "gap", "verify", "sqlite", "store", "locked", "stopped", "empty",
};

const char *ws_stats_kind(int code) {
  if (code >= 0 && (size_t)code < sizeof(kind_names) / sizeof(kind_names[0]))
    return kind_names[code];
  return "other";
}

/* Wake the sidecar's loop, which may be sleeping on file events only. */
static void kick(ws_stats *st) {
  uint64_t one = 1;
  if (st->kick_fd >= 0 && write(st->kick_fd, &one, sizeof(one)) < 0) {
    /* EAGAIN: the counter is full, the loop is awake anyway */
  }
}

int ws_stats_kick_fd(ws_stats *st) { return st ? st->kick_fd : -1; }

int ws_stats_new(ws_stats **out, const char *db, const char *dest, ws_err *err) {
  ws_stats *st = ws_calloc(1, sizeof(*st), err);
  if (!st) return WS_ENOMEM;
  pthread_condattr_t ca;
  if (!(st->db = ws_strdup(db ? db : "", err)) ||
      !(st->dest = ws_strdup(dest ? dest : "", err))) {
    free(st->db);
    free(st);
    return WS_ENOMEM;
  }
  pthread_mutex_init(&st->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&st->cv, &ca);
  pthread_condattr_destroy(&ca);
  st->v.db = st->db;
  st->v.dest = st->dest;
  st->v.started_ms = ws_now_ms();
  st->v.running = 1;
  /* without it requests still get answered, at the loop's next tick */
  st->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  *out = st;
  return WS_OK;
}

void ws_stats_free(ws_stats *st) {
  if (!st) return;
  if (st->kick_fd >= 0) close(st->kick_fd);
  pthread_cond_destroy(&st->cv);
  pthread_mutex_destroy(&st->mu);
  for (size_t i = 0; i < st->v.ndests; i++) free(st->dest_names[i]);
  free(st->dest_names);
  free(st->dests);
  free(st->db);
  free(st->dest);
  free(st);
}

void ws_stats_get(ws_stats_view *out, ws_stats *st) {
  pthread_mutex_lock(&st->mu);
  *out = st->v;
  out->lag_txns = st->v.seen_txid > st->v.durable_txid ? st->v.seen_txid - st->v.durable_txid : 0;
  out->lag_ms = st->nmarks ? ws_mono_ms() - st->marks[0].ms : 0;
  if (out->lag_ms < 0) out->lag_ms = 0;
  pthread_mutex_unlock(&st->mu);
}

/* ------------------------------------------------------------ waiting */

/* Wait on cv for at most until (monotonic ms, < 0: 250 ms slices for ever). */
static void timed_wait(ws_stats *st, int64_t until) {
  int64_t now = ws_mono_ms(), end = now + 250;
  if (until >= 0 && until < end) end = until;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t d = end - now;
  if (d < 0) d = 0;
  ts.tv_sec += (time_t)(d / 1000);
  ts.tv_nsec += (long)(d % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
  pthread_cond_timedwait(&st->cv, &st->mu, &ts);
}

/* Mutex held: WS_WAIT_* if the wait is over, -1 to go on waiting. */
static int wait_over(ws_stats *st, int64_t until, ws_cancel_fn cancel, void *ud) {
  if (st->stopped) return WS_WAIT_STOPPED;
  if (cancel && cancel(ud)) return WS_WAIT_STOPPED;
  if (until >= 0 && ws_mono_ms() >= until) return WS_WAIT_TIMEOUT;
  return -1;
}

int ws_stats_wait(ws_stats *st, uint64_t txid, int now, int64_t timeout_ms,
                  ws_cancel_fn cancel, void *ud, uint64_t *target) {
  int64_t until = timeout_ms < 0 ? -1 : ws_mono_ms() + timeout_ms;
  int r = -1;
  pthread_mutex_lock(&st->mu);
  if (now) {
    uint64_t gen = ++st->req_gen;
    kick(st);
    txid = 0;
    while (st->served_gen < gen && (r = wait_over(st, until, cancel, ud)) < 0)
      timed_wait(st, until);
    if (st->served_gen >= gen) txid = st->served_txid;
  }
  if (r < 0) {
    while (st->v.durable_txid < txid && (r = wait_over(st, until, cancel, ud)) < 0)
      timed_wait(st, until);
    if (st->v.durable_txid >= txid) r = WS_WAIT_DURABLE;
  }
  pthread_mutex_unlock(&st->mu);
  *target = txid;
  return r;
}

uint64_t ws_stats_snapshot_request(ws_stats *st) {
  pthread_mutex_lock(&st->mu);
  uint64_t gen = ++st->snap_req;
  kick(st);
  pthread_mutex_unlock(&st->mu);
  return gen;
}

int ws_stats_snapshot_now(ws_stats *st, int64_t timeout_ms, ws_cancel_fn cancel,
                          void *ud, uint64_t *txid, char *name, size_t cap) {
  uint64_t gen = ws_stats_snapshot_request(st);
  return ws_stats_snapshot_wait(st, gen, timeout_ms, cancel, ud, txid, name, cap);
}

int ws_stats_snapshot_wait(ws_stats *st, uint64_t gen, int64_t timeout_ms,
                           ws_cancel_fn cancel, void *ud, uint64_t *txid, char *name,
                           size_t cap) {
  int64_t until = timeout_ms < 0 ? -1 : ws_mono_ms() + timeout_ms;
  int r = -1;
  pthread_mutex_lock(&st->mu);
  while (st->snap_done < gen && (r = wait_over(st, until, cancel, ud)) < 0)
    timed_wait(st, until);
  if (st->snap_done >= gen) r = WS_WAIT_DURABLE;
  *txid = st->v.snapshot_txid;
  if (cap) {
    snprintf(name, cap, "%s", st->v.snapshot_name);
  }
  pthread_mutex_unlock(&st->mu);
  return r;
}

void ws_stats_stopped(ws_stats *st) {
  pthread_mutex_lock(&st->mu);
  st->stopped = 1;
  st->v.running = 0;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
}

/* ------------------------------------------------------- sidecar side */

int ws_stats_tick(ws_stats *st, int wal_changed) {
  pthread_mutex_lock(&st->mu);
  if (wal_changed && st->nmarks == 0) {
    st->marks[0].txid = 0; /* placeholder: the next scan names it */
    st->marks[0].ms = ws_mono_ms();
    st->nmarks = 1;
  }
  int want = st->req_gen > st->served_gen || st->snap_req > st->snap_done;
  pthread_mutex_unlock(&st->mu);
  return want;
}

uint64_t ws_stats_scan_begin(ws_stats *st) {
  pthread_mutex_lock(&st->mu);
  uint64_t g = st->req_gen;
  pthread_mutex_unlock(&st->mu);
  return g;
}

void ws_stats_seen(ws_stats *st, uint64_t txid, int complete, uint64_t gen) {
  int64_t now = ws_mono_ms();
  pthread_mutex_lock(&st->mu);
  size_t n = st->nmarks;
  if (n && st->marks[n - 1].txid == 0) {
    /* the placeholder: these commits were on their way since then */
    uint64_t prev = n > 1 ? st->marks[n - 2].txid : st->v.durable_txid;
    if (txid > prev) st->marks[n - 1].txid = txid;
    else st->nmarks = --n;
  } else if (txid > st->v.durable_txid && (n == 0 || txid > st->marks[n - 1].txid)) {
    if (n == NMARKS) {
      st->marks[n - 1].txid = txid;
    } else {
      st->marks[n].txid = txid;
      st->marks[n].ms = now;
      st->nmarks = n + 1;
    }
  }
  if (txid > st->v.seen_txid) {
    st->v.seen_txid = txid;
    st->v.seen_ms = ws_now_ms();
  }
  if (complete && gen > st->served_gen) {
    st->served_gen = gen;
    st->served_txid = st->v.seen_txid;
    pthread_cond_broadcast(&st->cv);
  }
  pthread_mutex_unlock(&st->mu);
}

void ws_stats_durable(ws_stats *st, uint64_t txid) {
  pthread_mutex_lock(&st->mu);
  st->v.durable_txid = txid;
  st->v.durable_ms = ws_now_ms();
  if (st->v.seen_txid < txid) st->v.seen_txid = txid, st->v.seen_ms = st->v.durable_ms;
  size_t k = 0;
  while (k < st->nmarks && st->marks[k].txid != 0 && st->marks[k].txid <= txid) k++;
  if (k) {
    memmove(st->marks, st->marks + k, (st->nmarks - k) * sizeof(mark));
    st->nmarks -= k;
  }
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
}

static void hist_add(ws_hist *h, int64_t ms) {
  double s = (double)ms / 1000.0;
  int i = 0;
  while (i < WS_HIST_NB && s > ws_hist_bounds[i]) i++;
  h->bucket[i]++;
  h->count++;
  h->sum_s += s;
}

void ws_stats_uploaded(ws_stats *st, uint64_t bytes, int64_t ms) {
  pthread_mutex_lock(&st->mu);
  st->v.uploaded_bytes += bytes;
  st->v.objects++;
  hist_add(&st->v.sync, ms);
  pthread_mutex_unlock(&st->mu);
}

void ws_stats_snapshot(ws_stats *st, uint64_t txid, int64_t time_ms, const char *name) {
  pthread_mutex_lock(&st->mu);
  if (time_ms >= st->v.snapshot_ms) {
    st->v.snapshot_txid = txid;
    st->v.snapshot_ms = time_ms;
    snprintf(st->v.snapshot_name, sizeof(st->v.snapshot_name), "%s", name ? name : "");
  }
  if (name && st->snap_taking > st->snap_done) {
    st->snap_done = st->snap_taking;
    pthread_cond_broadcast(&st->cv);
  }
  pthread_mutex_unlock(&st->mu);
}

void ws_stats_snapshot_progress(ws_stats *st, uint64_t done, uint64_t total) {
  pthread_mutex_lock(&st->mu);
  st->v.snap_done_bytes = done;
  st->v.snap_total_bytes = total;
  pthread_mutex_unlock(&st->mu);
}

int ws_stats_snapshot_wanted(ws_stats *st) {
  pthread_mutex_lock(&st->mu);
  /* a snapshot that starts after this call answers the requests made so far */
  int want = st->snap_req > st->snap_done;
  if (want) st->snap_taking = st->snap_req;
  pthread_mutex_unlock(&st->mu);
  return want;
}

void ws_stats_checkpoint(ws_stats *st, int64_t ms) {
  pthread_mutex_lock(&st->mu);
  hist_add(&st->v.checkpoint, ms);
  pthread_mutex_unlock(&st->mu);
}

void ws_stats_barrier(ws_stats *st, int braked, int cycle) {
  pthread_mutex_lock(&st->mu);
  st->v.barriers++;
  if (braked) st->v.brakes++;
  if (cycle) st->v.cycle_barriers++;
  pthread_mutex_unlock(&st->mu);
}

void ws_stats_barrier_busy(ws_stats *st) {
  pthread_mutex_lock(&st->mu);
  st->v.barriers_busy++;
  pthread_mutex_unlock(&st->mu);
}

void ws_stats_yield(ws_stats *st) {
  pthread_mutex_lock(&st->mu);
  st->v.ckpt_yields++;
  pthread_mutex_unlock(&st->mu);
}

void ws_stats_wal_size(ws_stats *st, int64_t bytes) {
  pthread_mutex_lock(&st->mu);
  st->v.wal_bytes = bytes;
  pthread_mutex_unlock(&st->mu);
}

void ws_stats_error(ws_stats *st, const ws_err *e) {
  pthread_mutex_lock(&st->mu);
  int k = e->code >= 0 && e->code < WS_STATS_KINDS ? e->code : WS_ERROR;
  st->v.errors[k]++;
  st->v.errors_total++;
  st->v.last_error_code = e->code;
  st->v.last_error_ms = ws_now_ms();
  snprintf(st->v.last_error, sizeof(st->v.last_error), "%s", e->msg);
  pthread_mutex_unlock(&st->mu);
}

/* ---------------------------------------------------- per destination */

int ws_stats_set_dests(ws_stats *st, const char *const *names, size_t n, ws_err *err) {
  ws_stats_dest_view *d = n ? ws_calloc(n, sizeof(*d), err) : NULL;
  char **nm = n ? ws_calloc(n, sizeof(*nm), err) : NULL;
  int rc = WS_OK;
  if (n && (!d || !nm)) {
    rc = WS_ENOMEM;
    goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    if (!(nm[i] = ws_strdup(names[i] ? names[i] : "", err))) {
      rc = WS_ENOMEM;
      goto fail;
    }
    d[i].name = nm[i];
  }
  pthread_mutex_lock(&st->mu);
  ws_stats_dest_view *od = st->dests;
  char **on = st->dest_names;
  size_t on_n = st->v.ndests;
  st->dests = d;
  st->dest_names = nm;
  st->v.ndests = n;
  pthread_mutex_unlock(&st->mu);
  d = od;
  nm = on;
  n = on_n;
fail:
  for (size_t i = 0; nm && i < n; i++) free(nm[i]);
  free(nm);
  free(d);
  return rc;
}

void ws_stats_dest_uploaded(ws_stats *st, size_t i, uint64_t bytes, int64_t ms) {
  pthread_mutex_lock(&st->mu);
  if (i < st->v.ndests) {
    st->dests[i].uploaded_bytes += bytes;
    st->dests[i].objects++;
    hist_add(&st->dests[i].sync, ms);
  }
  pthread_mutex_unlock(&st->mu);
}

void ws_stats_dest_error(ws_stats *st, size_t i, const ws_err *e) {
  pthread_mutex_lock(&st->mu);
  if (i < st->v.ndests) {
    ws_stats_dest_view *d = &st->dests[i];
    d->errors[e->code >= 0 && e->code < WS_STATS_KINDS ? e->code : WS_ERROR]++;
    d->errors_total++;
    d->last_error_code = e->code;
    d->last_error_ms = ws_now_ms();
    snprintf(d->last_error, sizeof(d->last_error), "%s", e->msg);
  }
  pthread_mutex_unlock(&st->mu);
}

int ws_stats_get_dest(ws_stats_dest_view *out, ws_stats *st, size_t i) {
  int ok = 0;
  pthread_mutex_lock(&st->mu);
  if (i < st->v.ndests) {
    *out = st->dests[i];
    ok = 1;
  }
  pthread_mutex_unlock(&st->mu);
  return ok;
}

void ws_stats_dest_observe(void *stats, const ws_dest_put *p) {
  uint64_t a, b;
  if (p->err) ws_stats_dest_error(stats, p->index, p->err);
  else if (ws_name_parse(p->name, &a, &b)) ws_stats_dest_uploaded(stats, p->index, p->bytes, p->ms);
}
