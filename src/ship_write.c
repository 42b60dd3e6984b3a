/*
** The sidecar's object writers: snapshots from a scan of the database state
** (dbscan.h), segments from the committed transactions after the shipped
** position, both streamed through the encoder (codec.h) into a store upload.
** An object is durable only when put_commit returned; until then nothing in
** the ship state advances.  The page hashes (s->ds) are updated while
** encoding; a failure drops them (have_ds = 0) and the next sync rescans.
*/
#include "ship.h"
#include "common.h"
#include "dbscan.h"
#include "names.h"
#include "walship/stats.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ uploads */

typedef struct upload_ctx {
  ws_upload *up;
  ws_enc *enc;
  char name[WS_NAME_MAX];
  int64_t t0;              /* upload start (monotonic ms), for the stats */
} upload_ctx;

static int up_write(void *ud, const void *buf, size_t len, ws_err *err) {
  ws_upload *up = ud;
  return up->store->m->put_write(up, buf, len, err);
}

static int upload_begin(upload_ctx *u, ship *s, const ws_objhdr *h, ws_err *err) {
  int rc;
  if (h->kind == WS_KIND_SNAPSHOT) ws_name_snapshot(u->name, h->txid_last);
  else ws_name_segment(u->name, h->txid_first, h->txid_last);
  u->up = NULL;
  u->enc = NULL;
  u->t0 = ws_mono_ms();
  if ((rc = s->st->m->put_begin(&u->up, s->st, u->name, err))) return rc;
  /* One encoder per sidecar (buffers and compressor reused; ws_replicate
  ** frees it): at --sync-interval 0 there is an object per commit. */
  if (s->enc) rc = ws_enc_restart(s->enc, h, up_write, u->up, err);
  else rc = ws_enc_new(&s->enc, h, s->o->compress_level, up_write, u->up, err);
  if (rc) {
    s->st->m->put_abort(u->up);
    u->up = NULL;
    return rc;
  }
  u->enc = s->enc;
  return WS_OK;
}

static void upload_abort(ship *s, upload_ctx *u) {
  if (u->up) s->st->m->put_abort(u->up);
  u->enc = NULL;
  u->up = NULL;
}

static int upload_finish(ship *s, upload_ctx *u, uint64_t sum, ws_err *err) {
  int rc = ws_enc_finish(u->enc, sum, err);
  if (rc) {
    upload_abort(s, u);
    return rc;
  }
  uint64_t n = ws_enc_bytes_out(u->enc);
  u->enc = NULL;
  ws_upload *up = u->up;
  u->up = NULL;
  int64_t t = ws_mono_ms();
  if ((rc = s->st->m->put_commit(up, err))) return rc;
  s->commit_ms = ws_mono_ms() - t; /* the brake's patience (ship_bound.c) */
  s->objects++;
  s->bytes += n;
  if (s->o->stats) ws_stats_uploaded(s->o->stats, n, ws_mono_ms() - u->t0);
  return WS_OK;
}

/* ----------------------------------------------------- state scanning */

/* A snapshot of a large database takes a while: every PROGRESS_MS (or
** $WALSHIP_PROGRESS_INTERVAL ms, a knob for tests) it logs how far it is,
** and every PROGRESS_EVERY pages tells the stats (for `walship snapshot`). */
#define PROGRESS_MS 5000
#define PROGRESS_EVERY 64  /* pages between clock reads */

typedef struct progress {
  ws_stats *st;            /* NULL: none */
  uint64_t done, total;    /* pages */
  int64_t t0, last, every; /* monotonic ms; every 0 = no progress lines */
} progress;

static void progress_init(progress *p, ws_stats *st, uint64_t total, uint32_t page_size) {
  const char *e = getenv("WALSHIP_PROGRESS_INTERVAL");
  p->st = st;
  if (st) ws_stats_snapshot_progress(st, 0, total * page_size);
  p->done = 0;
  p->total = total;
  p->t0 = p->last = ws_mono_ms();
  p->every = e && atoll(e) > 0 ? atoll(e) : PROGRESS_MS;
}

static void progress_page(progress *p, uint32_t page_size) {
  if (++p->done % PROGRESS_EVERY) return;
  if (p->st) ws_stats_snapshot_progress(p->st, p->done * page_size, p->total * page_size);
  int64_t now = ws_mono_ms();
  if (now - p->last < p->every) return;
  p->last = now;
  double secs = (double)(now - p->t0) / 1000.0;
  double done = (double)p->done * page_size, total = (double)p->total * page_size;
  double rate = secs > 0 ? done / secs : 0;
  double left = p->total > p->done ? total - done : 0;
  ws_log(WS_LOG_INFO, "ship", "snapshot progress done_bytes=%.0f total_bytes=%.0f "
         "percent=%.1f rate_mib_s=%.1f eta_s=%.1f", done, total,
         total > 0 ? 100.0 * done / total : 100.0, rate / 1048576.0,
         rate > 0 ? left / rate : 0.0);
}

typedef struct scan_ctx {
  ship *s;
  upload_ctx *u;           /* NULL: hash only */
  progress *pr;            /* with u: a snapshot's progress */
} scan_ctx;

static int scan_page(void *ud, uint32_t pgno, const uint8_t *page, ws_err *err) {
  scan_ctx *c = ud;
  int rc = ws_dbstate_set(&c->s->ds, pgno, ws_page_hash(pgno, page, c->s->page_size), err);
  if (rc == WS_OK && c->u) rc = ws_enc_page(c->u->enc, pgno, page, err);
  if (c->pr) progress_page(c->pr, c->s->page_size);
  return rc;
}

/* ds := the state at end_frame of h's cycle (h NULL: the file alone);
** with u, also encode it as the snapshot's pages. */
static int scan_into(ship *s, const ws_walhdr *h, uint32_t end_frame,
                     uint32_t npages, upload_ctx *u, ws_err *err) {
  int rc;
  ws_dbstate_free(&s->ds);
  s->have_ds = 0;
  if ((rc = ws_dbstate_init(&s->ds, s->page_size, err))) return rc;
  ship_seen seen = {s, h};
  ws_dbscan_src src = {s->dbfd, s->o->db_path, s->wal, h, end_frame, s->page_size,
                       h ? ship_delta_seen : NULL, &seen};
  progress pr;
  if (u) progress_init(&pr, s->o->stats, npages, s->page_size);
  scan_ctx c = {s, u, u ? &pr : NULL};
  rc = ws_dbscan(&src, npages, scan_page, &c, err);
  if (u && s->o->stats) ws_stats_snapshot_progress(s->o->stats, 0, 0);
  if (rc) return rc;
  if ((rc = ws_dbstate_resize(&s->ds, npages, err))) return rc;
  s->have_ds = 1;
  return WS_OK;
}

int ship_scan_state(ship *s, const ws_walhdr *h, uint32_t end_frame, uint32_t npages,
                    ws_err *err) {
  return scan_into(s, h, end_frame, npages, NULL, err);
}

int ship_state_npages(ship *s, const ws_walhdr *h, uint32_t end_frame,
                        uint32_t *npages, ws_err *err) {
  ws_dbscan_src src = {s->dbfd, s->o->db_path, s->wal, h, end_frame, s->page_size, NULL, NULL};
  return ws_dbscan_npages(npages, &src, err);
}

/* Snapshot of the state at `end` (h NULL: file only).  A new history
** (gap) takes TXID s->txid + 1; a periodic snapshot is the state after
** s->txid, and must hash to the checksum the history recorded there. */
int ship_write_snapshot(ship *s, const ws_walhdr *h, ws_walpos end, int periodic,
                          ws_err *err) {
  int rc;
  uint32_t npages;
  upload_ctx u;
  uint32_t end_frame = h ? end.frame : 0;
  if ((rc = ship_state_npages(s, h, end_frame, &npages, err))) return rc;
  int64_t now = ws_now_ms();
  uint64_t txid = periodic ? s->txid : s->txid + 1;
  ws_objhdr oh = {0};
  oh.kind = WS_KIND_SNAPSHOT;
  oh.page_size = s->page_size;
  oh.txid_first = oh.txid_last = txid;
  oh.db_pages = npages;
  oh.ntxn = 1;
  oh.npages = npages;
  oh.time_first_ms = oh.time_last_ms = now;
  oh.lineage = s->lineage;
  if (h) oh.pos = end;
  if ((rc = upload_begin(&u, s, &oh, err))) return rc;
  if ((rc = ws_enc_txn_begin(u.enc, txid, now, npages, npages, err)) ||
      (rc = scan_into(s, h, end_frame, npages, &u, err)) ||
      (rc = ws_enc_txn_end(u.enc, 1, s->ds.sum, err))) {
    upload_abort(s, &u);
    s->have_ds = 0;
    return rc;
  }
  if (periodic && s->ds.sum != s->sum) {
    upload_abort(s, &u);
    s->need_snapshot = 1;
    return ws_fail(err, WS_EGAP, "%s changed outside the WAL (state checksum at txid "
                   "%llu differs); starting a new history", s->o->db_path,
                   (unsigned long long)s->txid);
  }
  if ((rc = upload_finish(s, &u, s->ds.sum, err))) {
    s->have_ds = 0;
    return rc;
  }
  s->txid = txid;
  s->pos = end;
  s->have_cycle = h != NULL;
  s->sum = s->ds.sum;
  s->need_snapshot = 0;
  s->snap_ms = now;
  if (s->o->stats) {
    ws_stats_durable(s->o->stats, txid);
    ws_stats_snapshot(s->o->stats, txid, now, u.name);
  }
  ws_log(WS_LOG_INFO, "ship", "snapshot durable txid=%llu pages=%u page_size=%u object=%s",
         (unsigned long long)txid, npages, s->page_size, u.name);
  return WS_OK;
}

/* ------------------------------------------------------ segment building */

/* Folds one frame's chain value into a digest: the encode pass re-reads
** without recomputing checksums (ws_wal_iter_known) and must see, frame by
** frame, the chain values the scan verified. */
static uint64_t chain_mix(uint64_t d, const ws_walpos *p) {
  return (d ^ (((uint64_t)p->ck1 << 32) | p->ck2)) * 0x100000001B3ull + p->frame;
}

typedef struct txscan {
  ship *s;
  uint64_t chain, chain_commit;
  uint32_t cur;            /* frames in the open transaction */
  ws_walpos commit;        /* after the last commit frame seen */
  int capped;
  uint64_t cap_bytes;
} txscan;

static int txscan_frame(void *ud, const ws_frame *f, ws_err *err) {
  txscan *t = ud;
  ship *s = t->s;
  t->cur++;
  t->chain = chain_mix(t->chain, &f->after);
  if (!f->commit) return WS_OK;
  t->chain_commit = t->chain;
  if (s->ntx == s->captx) {
    size_t n = s->captx ? s->captx * 2 : 64;
    txn_info *v = ws_realloc(s->tx, n * sizeof(*v), err);
    if (!v) return WS_ENOMEM;
    s->tx = v;
    s->captx = n;
  }
  s->tx[s->ntx].nframes = t->cur;
  s->tx[s->ntx].db_pages = f->commit;
  s->ntx++;
  s->tx_pages += t->cur;
  t->cur = 0;
  t->commit = f->after;
  if (t->cap_bytes && (s->tx_pages * s->page_size >= t->cap_bytes || s->ntx >= SEG_MAX_TXNS)) {
    t->capped = 1;
    return WS_ESTOPPED;
  }
  return WS_OK;
}

int ship_committed_end(ship *s, uint32_t salt1, uint32_t salt2, uint32_t *mx) {
  uint32_t nb;
  uint64_t cyc;
  return s->pin && ws_pin_shm_peek_cycle(s->pin, mx, &nb, &cyc) &&
         cyc == ((uint64_t)salt1 << 32 | salt2);
}

/* Find the committed transactions after pos (at most a segment's worth
** when cap): fills s->tx and *end (== pos when there are none). */
int ship_scan_txns(ship *s, const ws_walhdr *h, int cap, ws_walpos *end,
                     int *capped, ws_err *err) {
  /* Under a flood a segment is at most --wal-max of pages, so the sync loop
  ** gets a say (sync_all: barrier past twice the limit) that often. */
  uint64_t cb = SEG_MAX_BYTES;
  if (ship_wal_max(s) && ship_wal_max(s) < cb) cb = ship_wal_max(s);
  txscan t = {s, 0, 0, 0, s->pos, 0, cap ? cb : 0};
  ws_walpos last = s->pos;
  s->ntx = 0;
  s->tx_pages = 0;
  uint64_t gen = s->o->stats ? ws_stats_scan_begin(s->o->stats) : 0;
  /* Read only up to the wal-index's mxFrame: what the app's connections
  ** see as committed.  Frames past it are a transaction being written, or
  ** a crashed writer's that SQLite overwrites (they pass the chain check
  ** yet were never committed), or a stale cycle's: the file keeps its size
  ** after a reset, and reading on to the first frame that fails cost a
  ** buffer's worth (1 MiB) per sync (s15: a quarter of a 1000 tx/s sync's
  ** reads).  The peek follows the current pin's take, so every frame the
  ** pin's snapshot saw is at or below it and "covered" keeps its meaning.
  ** Without the hint (no -shm, another cycle, a value behind pos): to the
  ** end of the valid frames, as before. */
  uint32_t mx, max = 0;
  int none = 0, bounded = 0;
  s->inflight = 0;
  if (ship_committed_end(s, h->salt1, h->salt2, &mx) && mx >= s->pos.frame) {
    bounded = 1;
    max = mx;
    none = mx == s->pos.frame;  /* max 0 would mean "no limit" */
  }
  int rc = none ? WS_OK : ws_wal_iter(s->wal, h, &s->pos, max, txscan_frame, &t, &last, err);
  if (rc && rc != WS_ESTOPPED) return rc;
  /* A frame of this cycle right after mxFrame: a commit written but not
  ** yet published (SQLite fsyncs it first with synchronous=FULL), or a
  ** killed writer's.  The publication itself raises no file event: the
  ** loop looks again soon (ship.c) rather than at its next tick. */
  if (bounded && !t.capped && last.frame == max && ws_wal_frame_in_cycle(s->wal, h, max + 1))
    s->inflight = 1, s->inflight_mx = max;
  /* Frames the wal-index has committed that do not continue the chain,
  ** and nothing committed before them: a corrupt WAL (SQLite's readers do
  ** not check frame checksums; only a recovery would, and it would drop
  ** these commits).  Unless the WAL was reset meanwhile, which only an
  ** unprotected attach allows (the next sync handles that): the header
  ** then has new salts.  Not a new history: the frames stay in the WAL,
  ** and this fails every sync, loudly, as a failing store does. */
  if (bounded && !t.capped && s->ntx == 0 && last.frame < max) {
    ws_walhdr h2;
    ws_err e2 = WS_ERR_INIT;
    if (ws_wal_header(s->wal, &h2, &e2) == WS_OK && h2.salt1 == h->salt1 &&
        h2.salt2 == h->salt2)
      return ws_corrupt(err, "%s: frame %u fails the WAL checksum chain, yet the wal-index "
                        "has frames up to %u committed: the WAL is corrupt; transactions "
                        "after txid %llu cannot be shipped", s->wal_path, last.frame + 1,
                        max, (unsigned long long)s->txid);
  }
  /* a scan that read to the end answers the waiters that asked before it */
  if (s->o->stats) ws_stats_seen(s->o->stats, s->txid + s->ntx, !t.capped, gen);
  *end = t.commit;
  *capped = t.capped;
  s->tx_chain = t.chain_commit;
  return WS_OK;
}

typedef struct segenc {
  ship *s;
  upload_ctx *u;
  size_t k;                /* transaction index */
  uint32_t inframe;        /* frames of tx[k] seen */
  int resume;              /* ds already at the end: sums only at the end */
  const ws_walhdr *h;
  int64_t now;
  uint64_t chain;          /* chain_mix over the frames re-read */
} segenc;

static int segenc_frame(void *ud, const ws_frame *f, ws_err *err) {
  segenc *e = ud;
  ship *s = e->s;
  const txn_info *t = &s->tx[e->k];
  int rc;
  e->chain = chain_mix(e->chain, &f->after);
  uint64_t txid = s->txid + 1 + e->k;
  if (e->inframe == 0 &&
      (rc = ws_enc_txn_begin(e->u->enc, txid, e->now, t->db_pages, t->nframes, err)))
    return rc;
  uint64_t ph = e->resume ? 0 : ws_page_hash(f->pgno, f->page, s->page_size);
  if ((rc = ship_put_page(s, e->h, f, e->u->enc, !e->resume, ph, err))) return rc;
  if (!e->resume && (rc = ws_dbstate_set(&s->ds, f->pgno, ph, err))) return rc;
  if (++e->inframe < t->nframes) return WS_OK;
  /* the last frame of a transaction must be its commit frame */
  if (!f->commit || f->commit != t->db_pages)
    return ws_corrupt(err, "%s: frame %u changed between reads", s->wal_path, f->idx);
  int last = e->k + 1 == s->ntx;
  if (!e->resume) {
    if ((rc = ws_dbstate_resize(&s->ds, t->db_pages, err))) return rc;
    rc = ws_enc_txn_end(e->u->enc, 1, s->ds.sum, err);
  } else {
    rc = ws_enc_txn_end(e->u->enc, last, s->ds.sum, err);
  }
  if (rc) return rc;
  e->k++;
  e->inframe = 0;
  return WS_OK;
}

/* Ship s->tx (frames pos..end) as one segment.  resume: ds already holds
** the state at end (learned by a scan), so only the last transaction
** carries a state checksum. */
int ship_write_segment(ship *s, const ws_walhdr *h, ws_walpos end, int resume,
                         ws_err *err) {
  int rc;
  upload_ctx u;
  ws_objhdr oh = {0};
  int64_t now = ws_now_ms();
  oh.kind = WS_KIND_SEGMENT;
  oh.page_size = s->page_size;
  oh.txid_first = s->txid + 1;
  oh.txid_last = s->txid + s->ntx;
  oh.db_pages = s->tx[s->ntx - 1].db_pages;
  oh.ntxn = (uint32_t)s->ntx;
  oh.npages = s->tx_pages;
  oh.time_first_ms = oh.time_last_ms = now;
  oh.lineage = s->lineage;
  oh.dbsum_before = s->sum;
  oh.pos = end;
  if ((rc = upload_begin(&u, s, &oh, err))) return rc;
  segenc e = {s, &u, 0, 0, resume, h, now, 0};
  ws_walpos got;
  /* the scan verified the chain up to end: re-read, checking headers */
  rc = ws_wal_iter_known(s->wal, h, &s->pos, end.frame, segenc_frame, &e, &got, err);
  if (rc == WS_OK && (got.frame != end.frame || got.ck1 != end.ck1 || got.ck2 != end.ck2 ||
                      e.chain != s->tx_chain || e.k != s->ntx))
    rc = ws_corrupt(err, "%s: frames %u..%u changed between reads", s->wal_path,
                    s->pos.frame + 1, end.frame);
  if (rc) {
    upload_abort(s, &u);
    s->have_ds = 0; /* ds is part-way: rescan on the next sync */
    return rc;
  }
  if ((rc = upload_finish(s, &u, s->ds.sum, err))) {
    s->have_ds = 0;
    return rc;
  }
  /* the cycle barrier's "a fast store" (ship_bound.c): segments only (a
  ** snapshot's commit grows with the database), averaged (one slow fsync
  ** under CPU load is no remote store: a single 20+ ms commit skipped a
  ** cycle in s14) */
  s->commit_avg_ms = s->seg_commits++ ? (3 * s->commit_avg_ms + s->commit_ms) / 4 : s->commit_ms;
  s->txid += s->ntx;
  s->pos = end;
  s->sum = s->ds.sum;
  if (s->o->stats) ws_stats_durable(s->o->stats, s->txid);
  int64_t t = ws_mono_ms();
  int lvl = t - s->log_ms >= 1000 ? WS_LOG_INFO : WS_LOG_DEBUG;
  if (lvl == WS_LOG_INFO) s->log_ms = t;
  ws_log(lvl, "ship", "durable txid=%llu txns=%zu pages=%llu object=%s",
         (unsigned long long)s->txid, s->ntx, (unsigned long long)s->tx_pages, u.name);
  return WS_OK;
}
