/*
** Internal to the sidecar (ship.c, ship_bound.c, ship_write.c,
** ship_delta.c): its state, and the writers that turn WAL frames or a
** database scan into store objects.
** The invariants on these fields are stated at the top of ship.c.
*/
#ifndef WS_SHIP_H
#define WS_SHIP_H

#include "codec.h"
#include "pagehash.h"
#include "pin.h"
#include "wal.h"
#include "watch.h"
#include "walship/store.h"

#include <sys/types.h>

#define SEG_MAX_BYTES (64u << 20) /* page bytes per segment (soft) */
#define SEG_MAX_TXNS 100000u

typedef struct txn_info {
  uint32_t nframes;
  uint32_t db_pages;
} txn_info;

typedef struct ship_delta ship_delta;   /* ship_delta.c */

typedef struct ship {
  const ws_replicate_opts *o;
  ws_store *st;
  ws_pin *pin;
  ws_wal *wal;
  ws_watch *watch;
  char *wal_path;
  int dbfd;
  dev_t db_dev;
  ino_t db_ino;
  uint32_t page_size;      /* of the current history (0 = none yet) */

  ws_walpos pos;           /* shipped position */
  int have_cycle;          /* pos names a WAL cycle (else: db file only) */
  uint64_t txid;           /* last durable TXID, 0 = store empty */
  uint64_t sum;            /* state checksum at pos */
  uint64_t lineage;
  ws_dbstate ds;           /* page hashes at pos */
  int have_ds;
  int covered;
  int need_snapshot;       /* continuity lost: next attach snapshots */
  uint32_t unpinned_end;   /* attach continued a cycle whose unshipped
                              frames (up to this one) were all backfilled:
                              our pin may sit on slot 0, which does not stop
                              a WAL reset, so a reset before they ship does
                              not mean they were shipped (0 = none) */

  ws_enc *enc;             /* reused for every object (ship_write.c) */
  ship_delta *delta;       /* delta bases (ship_delta.c), NULL until used */
  txn_info *tx;            /* transactions found by the last scan */
  size_t ntx, captx;
  uint64_t tx_pages;
  uint64_t tx_chain;       /* digest of every frame's chain value up to the
                              last commit of the scan (ship_chain_mix) */

  uint32_t last_full_mx;   /* shm hint already acted on */
  int64_t swap_ms;         /* sync_all: when it last moved the pin to the end */
  uint32_t swap_mx;         /* ... and the wal-index mxFrame just before */
  uint64_t objects, bytes; /* shipped so far */
  int64_t log_ms;          /* last "durable" log line */
  int64_t snap_ms;         /* capture time of the newest snapshot (unix ms) */
  int64_t tail_fail_ms;    /* maint: last extra tail upload that did not
                              let the WAL reset (monotonic ms), 0 = none */
  int64_t busy_warn_ms;    /* maint: last warning of a WAL past the barrier */
  unsigned busy_n;         /* barrier attempts not taken (a lock busy) */
  int64_t barrier_after_ms; /* maint: no barrier before (monotonic ms) */
  int64_t cycle_fail_ms;   /* maint: last cycle barrier that did not restart
                              the WAL (monotonic ms), 0 = none */
  int64_t cycle_ok_ms;     /* ... and the last one that did (0 = none) */
  int64_t cycle_after_ms;  /* ... none before (monotonic ms): a lock was busy */
  uint64_t cycle_cyc;      /* ... WAL cycle (salts) it ended */
  int barrier_fails;       /* barriers in a row whose checkpoint was busy */
  int ckpt_waiting;        /* an app's blocking checkpoint waits for us */
  uint32_t ckpt_look_mx;   /* ... mxFrame at the look that saw it
                              (UINT32_MAX: that look could not read it) */
  int64_t commit_ms;       /* the store's last put_commit took this long */
  int64_t commit_avg_ms;   /* a segment's put_commit on average (weight 1/4
                              to the last) */
  uint64_t seg_commits;    /* segments committed (commit_avg_ms's count) */
  int brake_past;          /* ship_brake_on: the WAL was past the brake's limit */
  uint64_t brake_cyc;      /* ... in this cycle (salts) */
  int settled;             /* last sync_all ended with the pin at the end */
  int more;                /* commits are waiting for the next sync */
  int inflight;            /* the last scan stopped at the wal-index's
                              mxFrame with a frame of the cycle after it:
                              a commit not yet published (ship_scan_txns) */
  uint32_t inflight_mx;    /* ... that mxFrame */
} ship;


/* ship_write.c */
/* ds := the state at end_frame of h's cycle (h NULL: the file alone). */
int ship_scan_state(ship *s, const ws_walhdr *h, uint32_t end_frame, uint32_t npages,
                    ws_err *err);
int ship_state_npages(ship *s, const ws_walhdr *h, uint32_t end_frame,
                      uint32_t *npages, ws_err *err);
/* Snapshot of the state at end: TXID s->txid + 1 (new history) or, periodic,
** the state after s->txid, which must hash to the recorded checksum. */
int ship_write_snapshot(ship *s, const ws_walhdr *h, ws_walpos end, int periodic,
                        ws_err *err);
/* The wal-index's mxFrame, peeked now, if it describes the WAL cycle with
** these salts: the end of what SQLite's connections see as committed in it
** (ship_write.c). */
int ship_committed_end(ship *s, uint32_t salt1, uint32_t salt2, uint32_t *mx);
/* Committed transactions after pos (a segment's worth when cap) into s->tx. */
int ship_scan_txns(ship *s, const ws_walhdr *h, int cap, ws_walpos *end, int *capped,
                   ws_err *err);
/* Ship s->tx (frames pos..end) as one segment. */
int ship_write_segment(ship *s, const ws_walhdr *h, ws_walpos end, int resume,
                       ws_err *err);

/* ship.c */
/* Ship what is committed after pos as one segment (*shipped: 1 if one was
** written); covered: nothing was left (0: stopped at the segment cap). */
int ship_sync_once(ship *s, int *shipped, ws_err *err);
/* Ship everything committed, then move the pin to the end.  drain ships
** until nothing is left: SHIP_DRAIN_ALL (--once) up to 64 rounds,
** SHIP_DRAIN_STILL (an app checkpoint waits for us) only while the WAL
** stays still. */
enum { SHIP_DRAIN_NO = 0, SHIP_DRAIN_ALL = 1, SHIP_DRAIN_STILL = 2 };
int ship_sync_all(ship *s, int drain, ws_err *err);

/* ship_bound.c */
/* The WAL size the write barrier holds. */
uint64_t ship_wal_max(const ship *s);
/* Bytes of WAL in use (the file keeps its size after a reset); mx, nb (may
** be NULL): the wal-index's mxFrame and nBackfill, or estimates. */
int64_t ship_wal_in_use(ship *s, uint32_t *mx, uint32_t *nb);
/* After each sync: checkpoint, re-pin, or the write barrier, as the WAL's
** size and state call for. */
int ship_maint(ship *s, ws_err *err);
/* Arm the write brake (pin.h) for a sync and maint (hot: a flood or burst
** seen lately; else only with the WAL past a quarter of its limit); off:
** disarm, dropping a lock no barrier used. */
void ship_brake_on(ship *s, int hot);
void ship_brake_off(ship *s);

/* ship_delta.c */
/* Encode frame f's page into enc: as a delta onto its previous content when
** allow (s->ds holds the state just before f) and that pays, else whole.
** hash: f's page hash when allow (the caller sets it into s->ds next). */
int ship_put_page(ship *s, const ws_walhdr *h, const ws_frame *f, ws_enc *enc,
                  int allow, uint64_t hash, ws_err *err);
void ship_delta_free(ship_delta *d);
/* ws_dbscan_src.on_frame for a scan of h's cycle: ud is a ship_seen. */
typedef struct ship_seen {
  ship *s;
  const ws_walhdr *h;
} ship_seen;
void ship_delta_seen(void *ud, uint32_t pgno, uint32_t idx);

#endif
