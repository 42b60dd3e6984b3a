/*
** Live statistics of one replicated database, and the rendezvous that lets
** other threads wait for the sidecar: "is TXID N durable yet?", "take a
** snapshot now".
**
** One ws_stats belongs to one ws_replicate run (ws_replicate_opts.stats).
** The sidecar thread updates it at the points where its state changes; any
** other thread (the metrics server, the control socket) reads a consistent
** copy with ws_stats_get or blocks in ws_stats_wait / ws_stats_snapshot_now.
** Every call takes one mutex for a few field updates: nothing here does I/O,
** so the sidecar is never held up by a slow reader.
**
** Lag (docs/operations.md): a commit is "seen" when the sidecar first notices
** the WAL changed (inotify or its poll tick), and "durable" when the object
** holding it is committed to every destination.  lag_ms is the age of the
** oldest commit seen but not yet durable (0 when caught up); lag_txns the
** committed transactions the sidecar has found in the WAL that are not yet
** durable.  A WAL change that turns out to hold no commit (a transaction
** still being written) stops counting at the next scan.
*/
#ifndef WALSHIP_STATS_H
#define WALSHIP_STATS_H

#include "walship.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ws_stats ws_stats;

/* Histogram upper bounds in seconds (Prometheus "le"), plus +Inf. */
#define WS_HIST_NB 13
extern const double ws_hist_bounds[WS_HIST_NB];

typedef struct ws_hist {
  uint64_t bucket[WS_HIST_NB + 1]; /* observations per bucket (not cumulative);
                                      the last is above every bound */
  uint64_t count;
  double sum_s;                    /* sum of the observations, seconds */
} ws_hist;

#define WS_STATS_KINDS 32          /* error counters, indexed by ws_code */

/* A consistent copy of the counters (ws_stats_get). Times are unix ms,
** 0 = never. */
typedef struct ws_stats_view {
  const char *db;                  /* label given to ws_stats_new (borrowed) */
  const char *dest;
  int64_t started_ms;              /* ws_stats_new */
  uint64_t seen_txid;              /* last committed TXID found in the WAL */
  int64_t seen_ms;
  uint64_t durable_txid;           /* last TXID durable in every destination */
  int64_t durable_ms;
  uint64_t lag_txns;               /* seen - durable */
  int64_t lag_ms;                  /* age of the oldest seen, not durable commit */
  int64_t wal_bytes;               /* WAL in use (frames since the last reset) */
  uint64_t uploaded_bytes;         /* object bytes committed to the store */
  uint64_t objects;                /* objects committed (segments + snapshots) */
  uint64_t errors_total;
  uint64_t errors[WS_STATS_KINDS]; /* failed syncs by ws_code */
  ws_hist sync;                    /* object upload durations */
  ws_hist checkpoint;              /* sidecar checkpoint durations */
  uint64_t barriers;               /* write barriers taken */
  uint64_t barriers_busy;          /* barriers not taken: a lock stayed busy */
  uint64_t ckpt_yields;            /* read slot let go for a waiting app checkpoint */
  uint64_t brakes;                 /* barriers whose lock the brake took mid-sync */
  uint64_t cycle_barriers;         /* barriers at a WAL cycle's end (ship_bound.c) */
  uint64_t snapshot_txid;          /* newest snapshot known, 0 = none */
  int64_t snapshot_ms;
  char snapshot_name[96];
  int last_error_code;             /* of the last failed sync, WS_OK = none */
  int64_t last_error_ms;
  char last_error[512];
  int running;                     /* the sidecar has not stopped yet */
  uint64_t snap_done_bytes;        /* a snapshot being taken: database bytes */
  uint64_t snap_total_bytes;       /* read so far, of this many; 0 = none running */
  size_t ndests;                   /* per-destination counters kept
                                      (ws_stats_set_dests; 0 = one destination,
                                      the counters above are its own) */
} ws_stats_view;

/*
** One destination of a database with several (a fan-out store,
** walship/dest.h).  The fan-out commits an object everywhere or reports the
** sync failed, so the durable TXID and lag are the database's and shared;
** what differs per destination is the work it did and how it failed.
*/
typedef struct ws_stats_dest_view {
  const char *name;                /* label (borrowed, lives as long as the stats) */
  uint64_t uploaded_bytes;         /* object bytes this destination committed */
  uint64_t objects;                /* objects it committed */
  uint64_t errors_total;
  uint64_t errors[WS_STATS_KINDS]; /* its failed puts by ws_code */
  ws_hist sync;                    /* time spent in its put calls, per object */
  int last_error_code;             /* WS_OK = none */
  int64_t last_error_ms;
  char last_error[512];
} ws_stats_dest_view;

/* db and dest are labels (copied): the database path and the store URL(s). */
WS_MUST_CHECK int ws_stats_new(ws_stats **out, const char *db, const char *dest,
                               ws_err *err);
void ws_stats_free(ws_stats *st);
void ws_stats_get(ws_stats_view *out, ws_stats *st);
/* Short metric label of a ws_code ("store", "io", "corrupt"). Never NULL. */
const char *ws_stats_kind(int code);

/* ----------------------------------------------------- waiting on the sidecar */
enum { WS_WAIT_DURABLE = 0, WS_WAIT_TIMEOUT = 1, WS_WAIT_STOPPED = 2 };

/*
** Block until transaction txid is durable in every destination.  now != 0
** ignores txid and waits for the last transaction committed when the call
** was made: the sidecar is asked to read the WAL at its next sync (it does
** not sync earlier or upload anything extra for it), and the newest commit
** that read finds becomes the target.  timeout_ms < 0 waits for ever.
** *target gets the TXID waited for (0 if not known yet); the result is one
** of WS_WAIT_*.  cancel (may be NULL) is asked every 250 ms: non-zero gives
** up (WS_WAIT_STOPPED); it runs under the stats lock, so it must be quick and
** must not call ws_stats_*.
*/
typedef int (*ws_cancel_fn)(void *ud);
int ws_stats_wait(ws_stats *st, uint64_t txid, int now, int64_t timeout_ms,
                  ws_cancel_fn cancel, void *cancel_ud, uint64_t *target);

/*
** Ask the sidecar for a full snapshot at its next sync and block until it is
** durable; *txid and name (cap bytes) get the snapshot's TXID and object
** name.  Result as ws_stats_wait.
*/
int ws_stats_snapshot_now(ws_stats *st, int64_t timeout_ms, ws_cancel_fn cancel,
                          void *cancel_ud, uint64_t *txid, char *name, size_t cap);
/* The same in two steps, so a caller can report progress between waits:
** the request (its generation), then waits of any length for it. */
uint64_t ws_stats_snapshot_request(ws_stats *st);
int ws_stats_snapshot_wait(ws_stats *st, uint64_t gen, int64_t timeout_ms,
                           ws_cancel_fn cancel, void *cancel_ud, uint64_t *txid,
                           char *name, size_t cap);

/* The sidecar stopped: waiters get WS_WAIT_STOPPED (after a last check). */
void ws_stats_stopped(ws_stats *st);

/* ------------------------------------------------- sidecar side (ship.c) */
/* The WAL changed (a commit may be on its way).  Returns 1 when a waiter or
** a snapshot request needs a sync (the caller marks one pending). */
int ws_stats_tick(ws_stats *st, int wal_changed);
/* A descriptor that becomes readable when a waiter or a snapshot request
** arrives, so an idle loop sleeping on file events answers at once; -1 if
** none (requests then wait for the loop's next tick). */
int ws_stats_kick_fd(ws_stats *st);
/* Before a WAL scan: the request generation it will answer. */
uint64_t ws_stats_scan_begin(ws_stats *st);
/* A scan found commits up to txid; complete: it read to the end of the WAL
** (not stopped at a segment cap), so it answers the waiters of gen. */
void ws_stats_seen(ws_stats *st, uint64_t txid, int complete, uint64_t gen);
void ws_stats_durable(ws_stats *st, uint64_t txid);
/* One object committed: its size and how long its upload took. */
void ws_stats_uploaded(ws_stats *st, uint64_t bytes, int64_t ms);
/* A snapshot is durable (name may be NULL when learned from the store). */
void ws_stats_snapshot(ws_stats *st, uint64_t txid, int64_t time_ms, const char *name);
/* A snapshot has read done of total database bytes (total 0: it ended). */
void ws_stats_snapshot_progress(ws_stats *st, uint64_t done, uint64_t total);
/* 1 while a requested snapshot is waiting to be taken. */
int ws_stats_snapshot_wanted(ws_stats *st);
void ws_stats_checkpoint(ws_stats *st, int64_t ms);
/* braked: the brake took its lock (counted in brakes too); cycle: a cycle
** barrier (counted in cycle_barriers too) */
void ws_stats_barrier(ws_stats *st, int braked, int cycle);
void ws_stats_barrier_busy(ws_stats *st);
void ws_stats_yield(ws_stats *st);
void ws_stats_wal_size(ws_stats *st, int64_t bytes);
void ws_stats_error(ws_stats *st, const ws_err *e);

/* ---------------------------------------------------- per destination */
/* Keep counters for n destinations named names[i] (copied), replacing any
** before; call before the sidecar starts. */
WS_MUST_CHECK int ws_stats_set_dests(ws_stats *st, const char *const *names, size_t n,
                                     ws_err *err);
/* Destination i committed an object of bytes, its puts took ms. */
void ws_stats_dest_uploaded(ws_stats *st, size_t i, uint64_t bytes, int64_t ms);
/* A put to destination i failed with e. */
void ws_stats_dest_error(ws_stats *st, size_t i, const ws_err *e);
/* A ws_dest_observe_fn (walship/dest.h) for ws_dest.observe, with the
** ws_stats as its ud: counts snapshots and segments (not the lease record
** or other bookkeeping the fan-out also carries) and every failed put. */
struct ws_dest_put;
void ws_stats_dest_observe(void *stats, const struct ws_dest_put *p);
/* A copy of destination i's counters; 0 when there is no such destination. */
int ws_stats_get_dest(ws_stats_dest_view *out, ws_stats *st, size_t i);

/* ------------------------------------------------------ control socket */
/*
** A unix socket per database through which `walship status`, `wait` and
** `snapshot` talk to a running sidecar (src/control.c documents the line
** protocol).  Its default path is derived from the database path alone, so a
** client finds it from the same DB argument: realpath(DB) + "-walship.sock",
** or, when that does not fit in a socket address, /tmp/walship-HASH.sock.
*/
typedef struct ws_control ws_control;

/* The default socket path of db_path (which must exist) into out. */
WS_MUST_CHECK int ws_control_path(char *out, size_t cap, const char *db_path, ws_err *err);
/* Serve st on path (NULL: the default of db_path) from a thread.  The socket
** gets the database file's read/write bits plus owner rw, so whoever may
** write the database may ask.  A live socket there is WS_ELOCKED. */
WS_MUST_CHECK int ws_control_start(ws_control **out, const char *path, const char *db_path,
                                   ws_stats *st, ws_err *err);
/* Stop serving (waiters are answered "stopped"), remove the socket. */
void ws_control_stop(ws_control *c);
/* Client: send one request line, return the reply line (malloc'd, no
** newline).  timeout_ms < 0: no limit.  No sidecar: WS_ENOTFOUND. */
WS_MUST_CHECK int ws_control_call(char **reply, const char *path, const char *request,
                                  int64_t timeout_ms, ws_err *err);
/* The same; lines the sidecar sends before its answer ("progress ...", for
** "snapshot TIMEOUT progress") go to on_line (without the newline). */
WS_MUST_CHECK int ws_control_call_ex(char **reply, const char *path, const char *request,
                                     int64_t timeout_ms,
                                     void (*on_line)(void *ud, const char *line), void *ud,
                                     ws_err *err);

/* ------------------------------------------------------ metrics endpoint */
typedef struct ws_metrics ws_metrics;

/*
** Serve GET /metrics (Prometheus text format 0.0.4) on addr ("127.0.0.1:9090",
** "[::1]:9090", "localhost:9090"; port 0 picks a free one) from its own
** thread.  A non-loopback address is refused unless allow_remote.  The
** stats are added with ws_metrics_add, before or after the start.
*/
WS_MUST_CHECK int ws_metrics_start(ws_metrics **out, const char *addr, int allow_remote,
                                   ws_err *err);
WS_MUST_CHECK int ws_metrics_add(ws_metrics *m, ws_stats *st, ws_err *err);
/* Stop serving st (before freeing it). */
void ws_metrics_remove(ws_metrics *m, ws_stats *st);
/* The port actually bound. */
int ws_metrics_port(const ws_metrics *m);
void ws_metrics_stop(ws_metrics *m);
/* The exposition text for these stats (malloc'd). */
WS_MUST_CHECK int ws_metrics_render(char **out, ws_stats *const *v, size_t n, ws_err *err);

#ifdef __cplusplus
}
#endif
#endif /* WALSHIP_STATS_H */
