/*
** The sidecar: capture committed WAL transactions and ship them.
**
** State machine (one thread, driven by inotify events and a poll tick):
**
**   attach   open the pin, learn the state at the end of the WAL, and either
**            continue the history the store holds (same WAL cycle and
**            checksum chain at the stored position, or an unchanged
**            database file) or start a new one with a snapshot.
**   sync     ship every committed transaction after `pos` as segments, then
**            move the pin forward (pin.h: only after a covering pass).
**   maint    (ship_bound.c) keep the WAL small: PASSIVE checkpoint past
**            checkpoint_frames and re-pin on slot 0 so the app's next write
**            can reset the WAL;
**            re-pin promptly when someone else backfilled everything (an
**            app RESTART/TRUNCATE waiting on us); past wal_max, the brief
**            write-lock barrier.
**
** Invariants:
**   - pos is a commit boundary that is durable in the store, txid the TXID
**     of the transaction ending there, sum the state checksum there;
**   - ds (when have_ds) is the per-page hash state at pos;
**   - covered: every committed frame visible since the current pin was
**     taken is shipped.  The pin moves only when covered.
** Any doubt about continuity (a cycle we did not see start, a chain that
** does not match, a file replaced) leads to a snapshot, never a stitch.
*/
#include "ship.h"
#include "lease.h"
#include "maint.h"
#include "common.h"
#include "dbscan.h"
#include "names.h"
#include "walship/stats.h"
#include "walship/dest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define FAST_TICK_MS 20           /* checkpoint-lock probe period while behind */
#define SLOW_TICK_MS 250          /* the same when no blocking checkpoint was seen
                                     for CKPT_RECENT_MS and no flood is on */
#define WARM_TICK_MS 100          /* the same right after commits resume, or
                                     while the WAL grows at FLOOD_BPS/4 */
#define CKPT_RECENT_MS 60000
#define CKPT_TICK_MS 5            /* the probe period while behind, for CKPT_HOT_MS */
#define CKPT_HOT_MS 5000          /* ... after an app's blocking checkpoint was seen */
#define YIELD_AFTER_MS 120        /* one still waiting this long with nothing
                                     left to ship: ws_pin_yield (past SQLite's
                                     longest busy-handler sleep, 100 ms) */
#define FLOOD_BPS (10 << 20)      /* WAL growth, bytes a second over >= 100 ms,
                                     that means a flood ... */
#define FLOOD_RECENT_MS 2000      /* ... and keeps the fast tick this long */
#define REPIN_MS 1000             /* sync_all: pin moved at most this often, */
#define REPIN_MIN_MS 100          /* ... and at least this far apart */
#define BURST_MS 200              /* after a quiet second: fast ticks this long */
#define HOT_MS 1000               /* short interval: commits this recent ... */
#define HOT_POLL_MS 1             /* ... mean polling the wal-index this often */
#define CHASE_MS 200              /* a commit written but not yet published: look this long */
#define IDLE_TICK_MS 1000         /* idle, nothing can wait on us unseen: the longest sleep */
#define SETTLE_MS 1000            /* ... but SLOW_TICK_MS looks this long after a database write */

/* ------------------------------------------------------------- sync */

static int attach(ship *s, ws_err *err);

/* Ship what is committed after pos (ship.h). */
int ship_sync_once(ship *s, int *shipped, ws_err *err) {
  ws_walhdr h;
  ws_walpos end;
  int capped, rc;
  *shipped = 0;
  s->inflight = 0; /* set by this sync's scan, if it gets there */
  uint64_t gen = s->o->stats ? ws_stats_scan_begin(s->o->stats) : 0;
  rc = ws_wal_header(s->wal, &h, err);
  if (rc == WS_ENOTFOUND) { /* no WAL yet, or truncated: nothing committed */
    if (s->o->stats) ws_stats_seen(s->o->stats, s->txid, 1, gen);
    s->covered = 1;
    return WS_OK;
  }
  if (rc) return rc;
  if (h.page_size != s->page_size) {
    s->need_snapshot = 1;
    return ws_fail(err, WS_EGAP, "%s: page size changed from %u to %u", s->wal_path,
                   s->page_size, h.page_size);
  }
  if (s->have_cycle && (h.salt1 != s->pos.salt1 || h.salt2 != s->pos.salt2) &&
      s->unpinned_end > s->pos.frame) {
    /* Reset before attach's unprotected frames shipped: those commits are
    ** only in the database file now.  Not a gap in the data: snapshot the
    ** current state as a new history (tests/torture/repro_reset_after_attach.sh). */
    ws_log(WS_LOG_WARN, "ship", "the WAL was reset before the commits after frame %u "
           "(checkpointed while walship was not running) were shipped; writing a "
           "snapshot", s->pos.frame);
    s->unpinned_end = 0;
    s->need_snapshot = 1;
    return attach(s, err);
  }
  if (s->unpinned_end && s->pos.frame >= s->unpinned_end) s->unpinned_end = 0;
  if (!s->have_cycle || h.salt1 != s->pos.salt1 || h.salt2 != s->pos.salt2) {
    /* A reset under our pin: the old cycle was fully shipped (pin.h). */
    ws_log(WS_LOG_DEBUG, "ship", "new WAL cycle salt1=%08x salt2=%08x", h.salt1, h.salt2);
    s->pos = ws_walpos_start(&h);
    s->have_cycle = 1;
    s->last_full_mx = 0;
  }
  int resume = !s->have_ds;
  if ((rc = ship_scan_txns(s, &h, !resume, &end, &capped, err))) return rc;
  if (s->ntx == 0) {
    if (resume) { /* learn page hashes at pos; nothing to ship */
      uint32_t np;
      if ((rc = ship_state_npages(s, &h, s->pos.frame, &np, err)) ||
          (rc = ship_scan_state(s, &h, s->pos.frame, np, err)))
        return rc;
      if (s->ds.sum != s->sum) {
        s->need_snapshot = 1;
        return ws_fail(err, WS_EGAP, "%s changed outside the WAL (state checksum differs)",
                       s->o->db_path);
      }
    }
    s->covered = 1;
    return WS_OK;
  }
  if (resume) {
    if ((rc = ship_scan_state(s, &h, end.frame, s->tx[s->ntx - 1].db_pages, err)))
      return rc;
  }
  if ((rc = ship_write_segment(s, &h, end, resume, err))) return rc;
  *shipped = 1;
  s->covered = !capped;
  return WS_OK;
}

/* The pin sits on read-lock 0 and a fast writer has committed
** checkpoint_frames/2 frames since it was taken, within a second: the main
** loop forces a sync to move it, and sync_all ships once more before the
** swap. */
static int slot0_outrun(ship *s, uint32_t mx, uint32_t nb, int64_t now) {
  uint32_t s0mx;
  int64_t s0ms;
  return s->o->checkpoint_frames && s->pin && ws_pin_slot0_since(s->pin, &s0mx, &s0ms) &&
         mx > nb && now - s0ms <= REPIN_MS &&
         (mx >= s0mx ? mx - s0mx : mx) >= s->o->checkpoint_frames / 2;
}

/* May sync_all move the pin now (it is covered)?  Each move lets the
** app's next autocheckpoint, once its WAL is past 1000 frames, backfill up
** to it with two fsyncs inside the app's COMMIT, so moves are rationed:
**   - a pin on read-lock 0 blocks every backfill (pin.h): move at once;
**   - otherwise at most every REPIN_MIN_MS, and at least every REPIN_MS;
**   - in between, while the WAL is under checkpoint_frames (SQLite's
**     autocheckpoint threshold by default: the app runs no checkpoint), or
**     once checkpoint_frames/4 frames came since the last move.
** Measured at --sync-interval 0 (docs/DESIGN.md, "Not starving the app"):
** a move after every sync cost a 1000 tx/s writer 82-99 fsyncs instead of
** 19 in 5 s; only once a second left a 10,000 tx/s writer's WAL to the
** barrier with nothing backfilled (lag p99 ~57 ms instead of ~23); a 50 ms
** floor cost an unthrottled writer 5-8 % of its commits, 100 ms ~3 %.
** Not moving is always safe (the rule is "swap only when covered", never
** "swap when covered"); the pin just stays covered. */
static int repin_due(ship *s) {
  uint32_t mx, nb, q = s->o->checkpoint_frames / 4;
  int64_t since = ws_mono_ms() - s->swap_ms;
  if (ws_pin_slot0(s->pin) || since >= REPIN_MS) return 1;
  if (since < REPIN_MIN_MS || !s->o->checkpoint_frames || !ws_pin_shm_peek(s->pin, &mx, &nb))
    return 0;
  return mx < s->o->checkpoint_frames || mx < s->swap_mx || mx - s->swap_mx >= q;
}

/* Ship everything committed, then move the pin to the end.  The swap needs
** only the old pin covered; commits that land during the upload belong to
** the new pin and normally wait for the next interval (s->more), so one
** sync makes one object.  drain ships until nothing is left: SHIP_DRAIN_ALL
** (--once) up to 64 rounds, SHIP_DRAIN_STILL (an app checkpoint waits for us)
** only while the WAL stays still.
** settled: the pin is at the end with nothing unshipped (snapshots need it). */
int ship_sync_all(ship *s, int drain, ws_err *err) {
  int shipped, rc;
  uint32_t mx0 = 0, mx, nb0;
  if (drain == SHIP_DRAIN_STILL && !(s->pin && ws_pin_shm_peek(s->pin, &mx0, &nb0)))
    drain = SHIP_DRAIN_NO;
  s->settled = 0;
  s->more = 0;
  for (int round = 0; round < 64; round++) {
    if ((rc = ship_sync_once(s, &shipped, err))) return rc;
    if (s->pin && ws_pin_brake_held(s->pin, NULL)) { /* maint's barrier, now */
      s->more = 1;
      return WS_OK;
    }
    /* A blocking checkpoint waiting for us holds the app's write lock: the
    ** WAL cannot grow meanwhile.  If it does, the look that saw one was
    ** wrong (one connection's autocheckpoint and another's transaction, or
    ** one connection's checkpoint and next transaction between our lock
    ** tests) or it has ended.  Chasing a live writer here never reached
    ** maint's barrier: one false look in 8 s of blob inserts, 1.1 GB of WAL. */
    if (drain == SHIP_DRAIN_STILL && (!ws_pin_shm_peek(s->pin, &mx, &nb0) || mx != mx0))
      drain = SHIP_DRAIN_NO;
    if (!s->covered) {                     /* capped: the rest right away, */
      /* unless the app outruns us: then the barrier, which takes the lock
      ** first past twice the limit, is what bounds the WAL (an unthrottled
      ** writer with 64 KiB pages writes ~300 MB/s, faster than we ship). */
      if (!drain && ship_wal_max(s) &&
          ship_wal_in_use(s, NULL, NULL) > 2 * (int64_t)ship_wal_max(s)) {
        s->more = 1;
        return WS_OK;
      }
      continue;
    }
    if (!drain && !repin_due(s)) return WS_OK;
    /* Leaving read-lock 0 for a fast writer (slot0_outrun; not at the
    ** final sync, nor after maint's re-pin under a slow one): the new pin
    ** lands at the WAL's end, past what was committed during our upload,
    ** and the app's checkpoint may then backfill those frames before we
    ** ship them, so a page whose base is the database file ships whole
    ** (segment bytes per random update 180 -> 284).  Ship them first: that
    ** window is one short upload instead of a long one.  Capped or not,
    ** the swap may follow: the first pass covered the pin, which is all the
    ** rule asks, and staying on read-lock 0 blocks every backfill. */
    uint32_t mx1, nb1;
    if (!drain && ws_pin_shm_peek(s->pin, &mx1, &nb1) && slot0_outrun(s, mx1, nb1, ws_mono_ms()))
      if ((rc = ship_sync_once(s, &shipped, err))) return rc;
    uint32_t nb;
    s->swap_ms = ws_mono_ms();
    if (!ws_pin_shm_peek(s->pin, &s->swap_mx, &nb)) s->swap_mx = 0;
    if ((rc = ws_pin_swap(s->pin, err))) return rc;
    s->covered = 0;
    /* Anything committed since?  Look without shipping. */
    ws_walhdr h;
    ws_walpos end;
    int capped;
    rc = ws_wal_header(s->wal, &h, err);
    if (rc == WS_ENOTFOUND) rc = WS_OK, s->ntx = 0;
    else if (rc == WS_OK && s->have_cycle && h.salt1 == s->pos.salt1 && h.salt2 == s->pos.salt2)
      rc = ship_scan_txns(s, &h, 1, &end, &capped, err);
    else if (rc == WS_OK)
      s->ntx = 1;                            /* a new cycle: something to do */
    if (rc) return rc;
    if (s->ntx == 0) {
      s->covered = 1;
      s->settled = 1;
      return WS_OK;
    }
    if (!drain) {
      s->more = 1;
      return WS_OK;
    }
  }
  s->more = 1; /* a writer outpacing us: the next sync continues */
  return WS_OK;
}

/* A periodic snapshot bounds how much history a restore must replay.  It
** is taken only when settled: pos is then at or past the pin's mark, which
** is what makes the file + WAL overlay consistent (dbscan.h). */
static int maybe_snapshot(ship *s, ws_err *err) {
  ws_walhdr h;
  int64_t iv = s->o->snapshot_interval_ms;
  /* or on request (walship snapshot), under the same conditions */
  int asked = s->o->stats && s->settled && s->txid && ws_stats_snapshot_wanted(s->o->stats);
  if (!asked && (!iv || !s->settled || s->txid == 0 || ws_now_ms() - s->snap_ms < iv))
    return WS_OK;
  int rc = ws_wal_header(s->wal, &h, err);
  if (rc && rc != WS_ENOTFOUND) return rc;
  int cyc = rc == WS_OK && s->have_cycle && h.salt1 == s->pos.salt1 && h.salt2 == s->pos.salt2;
  if (rc == WS_OK && !cyc && s->have_cycle) return WS_OK; /* reset since: next time */
  return ship_write_snapshot(s, cyc ? &h : NULL, s->pos, 1, err);
}

/* ------------------------------------------------------------- attach */

static void detach(ship *s) {
  ws_pin_close(s->pin);
  s->pin = NULL;
  ws_wal_close(s->wal);
  s->wal = NULL;
  if (s->dbfd >= 0) close(s->dbfd);
  s->dbfd = -1;
  s->covered = 0;
}

/* The history the store holds: position, TXID and state after its newest
** object.  An unreadable newest object means we cannot prove continuity:
** start over with a snapshot after the highest TXID. */
static int load_position(ship *s, ws_err *err) {
  ws_catalog cat = {0};
  ws_objhdr oh;
  ws_objtrl ot;
  void *buf = NULL;
  size_t len;
  int rc = ws_catalog_load(&cat, s->st, err);
  if (rc) return rc;
  if (cat.n == 0) goto out;
  const ws_catent *last = &cat.v[cat.n - 1];
  ws_err e2 = WS_ERR_INIT;
  s->txid = last->last;
  if (last->size < WS_OBJHDR_SIZE + WS_OBJTRL_SIZE ||
      ws_store_get_buf(&buf, &len, s->st, last->name, 0, WS_OBJHDR_SIZE,
                       WS_OBJHDR_SIZE, &e2) ||
      ws_objhdr_parse(&oh, buf, len, last->name, &e2)) {
    if (!e2.code) ws_corrupt(&e2, "%s: too short", last->name);
    goto broken;
  }
  free(buf);
  buf = NULL;
  if (ws_store_get_buf(&buf, &len, s->st, last->name, last->size - WS_OBJTRL_SIZE,
                       WS_OBJTRL_SIZE, WS_OBJTRL_SIZE, &e2) ||
      ws_objtrl_parse(&ot, buf, len, last->name, &e2))
    goto broken;
  s->pos = oh.pos;
  s->have_cycle = oh.pos.salt1 || oh.pos.salt2 || oh.pos.frame;
  s->snap_ms = 0;
  for (size_t i = cat.n; i-- > 0;) {
    if (cat.v[i].kind != WS_KIND_SNAPSHOT) continue;
    void *sb = NULL;
    size_t sl;
    ws_objhdr sh;
    ws_err e3 = WS_ERR_INIT;
    if (ws_store_get_buf(&sb, &sl, s->st, cat.v[i].name, 0, WS_OBJHDR_SIZE,
                         WS_OBJHDR_SIZE, &e3) == WS_OK &&
        ws_objhdr_parse(&sh, sb, sl, cat.v[i].name, &e3) == WS_OK) {
      s->snap_ms = sh.time_last_ms;
      if (s->o->stats) ws_stats_snapshot(s->o->stats, cat.v[i].last, s->snap_ms, cat.v[i].name);
    }
    free(sb);
    break;
  }
  s->lineage = oh.lineage;
  s->sum = ot.dbsum;
  s->page_size = oh.page_size;
  ws_log(WS_LOG_INFO, "ship", "resuming store history at txid=%llu object=%s",
         (unsigned long long)s->txid, last->name);
  goto out;
broken:
  ws_log(WS_LOG_WARN, "ship", "cannot resume from %s (%s); a snapshot will start a new history",
         last->name, e2.msg);
  s->need_snapshot = 1;
out:
  free(buf);
  ws_catalog_free(&cat);
  return rc;
}

typedef struct chainchk {
  uint32_t want;           /* frame whose chain value we check */
  ws_walpos at;            /* position after it, once seen */
  ws_walpos commit;        /* after the last commit frame */
} chainchk;

static int chain_frame(void *ud, const ws_frame *f, ws_err *err) {
  chainchk *c = ud;
  if (f->idx == c->want) c->at = f->after;
  if (f->commit) c->commit = f->after;
  return WS_OK;
}

static uint64_t new_lineage(void) {
  uint64_t v = 0;
  ws_random_id(&v, sizeof(v));
  return v;
}

/* Take the pin and decide how the history continues (see top of file). */
static int attach(ship *s, ws_err *err) {
  int rc, hrc;
  ws_walhdr h;
  struct stat st;
  uint32_t ps;
  detach(s);
  s->unpinned_end = 0;
  if ((rc = ws_pin_open(&s->pin, s->o->db_path, err))) return rc;
  s->dbfd = open(s->o->db_path, O_RDONLY | O_CLOEXEC);
  if (s->dbfd < 0 || fstat(s->dbfd, &st) != 0)
    return ws_fail(err, WS_EIO, "open %s: %s", s->o->db_path, strerror(errno));
  s->db_dev = st.st_dev;
  s->db_ino = st.st_ino;
  if ((rc = ws_wal_open(&s->wal, s->wal_path, err))) return rc;
  if ((rc = ws_pin_swap(s->pin, err))) return rc;
  s->covered = 0;
  s->have_ds = 0;

  hrc = ws_wal_header(s->wal, &h, err);
  if (hrc && hrc != WS_ENOTFOUND) return hrc;
  int have_wal = hrc == WS_OK;
  if (have_wal) ps = h.page_size;
  else if ((rc = ws_db_page_size(&ps, s->dbfd, s->o->db_path, err))) return rc;

  chainchk c = {0};
  ws_walpos start = have_wal ? ws_walpos_start(&h) : (ws_walpos){0};
  c.commit = start;
  if (have_wal) {
    ws_walpos endv;
    c.want = s->have_cycle ? s->pos.frame : 0;
    if (c.want == 0) c.at = start;
    /* Only what SQLite's connections see as committed (ship_scan_txns): a
    ** killed writer's unpublished frames would otherwise become the first
    ** snapshot's state, and a stored position past mxFrame (shipped so by
    ** an older walship) is not continued. */
    uint32_t mx;
    int bound = ship_committed_end(s, h.salt1, h.salt2, &mx);
    if ((!bound || mx > 0) &&
        (rc = ws_wal_iter(s->wal, &h, &start, bound ? mx : 0, chain_frame, &c, &endv, err)))
      return rc;
  }
  int same_history = s->txid && !s->need_snapshot && ps == s->page_size;
  if (same_history && have_wal && s->have_cycle && h.salt1 == s->pos.salt1 &&
      h.salt2 == s->pos.salt2 && c.at.frame == s->pos.frame &&
      c.at.ck1 == s->pos.ck1 && c.at.ck2 == s->pos.ck2 && c.commit.frame >= s->pos.frame) {
    /* Same cycle, chain intact: sync ships pos..end in resume mode.  If
    ** every unshipped frame is already in the database file (the app
    ** checkpointed while no sidecar ran), SQLite gave our pin slot 0, which
    ** lets the app's next write reset the WAL before we read them: note it
    ** for ship_sync_once (the shm backfill count says; 0 if it cannot be read,
    ** which keeps the check on). */
    uint32_t mx = 0, nb = 0;
    s->unpinned_end = 0;
    if (c.commit.frame > s->pos.frame &&
        (!ws_pin_shm_peek(s->pin, &mx, &nb) || nb >= c.commit.frame))
      s->unpinned_end = c.commit.frame;
    ws_log(WS_LOG_INFO, "ship", "continuing WAL cycle at frame %u", s->pos.frame);
    return WS_OK;
  }
  s->page_size = ps;
  if (same_history) {
    /* The WAL moved on without us.  If the database file alone is still
    ** exactly the state we shipped last, nothing was lost. */
    uint32_t np;
    if ((rc = ship_state_npages(s, NULL, 0, &np, err)) ||
        (rc = ship_scan_state(s, NULL, 0, np, err)))
      return rc;
    if (s->ds.sum == s->sum) {
      s->pos = start;
      s->have_cycle = have_wal;
      ws_log(WS_LOG_INFO, "ship", "database file matches txid=%llu; continuing",
             (unsigned long long)s->txid);
      return WS_OK;
    }
    ws_log(WS_LOG_WARN, "ship", "history cannot be continued (the WAL was reset or the "
           "database changed while walship was not running); writing a snapshot");
  }
  s->page_size = ps;
  s->lineage = new_lineage();
  if ((rc = ship_write_snapshot(s, have_wal ? &h : NULL, have_wal ? c.commit : start, 0, err)))
    return rc;
  s->covered = 1;
  return WS_OK;
}

/* ---------------------------------------------------------- main loop */

/* The stop flag is set by another thread (or a signal handler): an atomic
** load, so the read is neither torn nor hoisted out of the loop. */
static int stop_requested(const ws_replicate_opts *o) {
  return o->stop && __atomic_load_n(o->stop, __ATOMIC_RELAXED);
}

static int fatal(int rc) {
  return rc == WS_ENOTWAL || rc == WS_EINVAL || rc == WS_ENOTFOUND;
}

/* Compaction and retention run in the background this often.  A minute
** matches the finest compaction window; WALSHIP_MAINT_PERIOD_MS (tests)
** overrides it. */
static int64_t maint_period_ms(void) {
  const char *v = getenv("WALSHIP_MAINT_PERIOD_MS");
  long long ms = v ? atoll(v) : 0;
  return ms > 0 ? ms : 60000;
}

int ws_replicate(const ws_replicate_opts *o, ws_err *err) {
  ship s;
  ws_maint *mt = NULL;
  ws_lease *lease = NULL;
  int rc;
  memset(&s, 0, sizeof(s));
  s.dbfd = -1;
  if (!o || o->version != WS_REPLICATE_OPTS_VERSION)
    return ws_fail(err, WS_EINVAL, "replicate: options version mismatch");
  if (!o->db_path || (!o->store_url && !o->ndests))
    return ws_fail(err, WS_EINVAL, "replicate: database and store are required");
  if (o->compress_level < 0 || o->compress_level > 9)
    return ws_fail(err, WS_EINVAL, "compress level %d out of range 0..9", o->compress_level);
  if (o->sync_interval_ms < 0 || o->poll_ms < 0)
    return ws_fail(err, WS_EINVAL, "intervals must not be negative");
  s.o = o;
  /* One sidecar per database: a second one would interleave TXIDs.  A BSD
  ** flock on the database file is independent of SQLite's POSIX locks on
  ** Linux, needs no extra file, and dies with the process. */
  int lockfd = open(o->db_path, O_RDONLY | O_CLOEXEC);
  if (lockfd < 0)
    return ws_fail(err, errno == ENOENT ? WS_ENOTFOUND : WS_EIO, "database %s: %s",
                   o->db_path, strerror(errno));
  if (flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    close(lockfd);
    if (e == EWOULDBLOCK)
      return ws_fail(err, WS_ELOCKED, "another walship is already replicating %s",
                     o->db_path);
    return ws_fail(err, WS_EIO, "lock %s: %s", o->db_path, strerror(e));
  }
  if (!(s.wal_path = ws_asprintf(err, "%s-wal", o->db_path))) {
    close(lockfd);
    return WS_ENOMEM;
  }
  rc = o->ndests ? ws_store_fanout_open(&s.st, o->dests, o->ndests, err)
                 : ws_store_open_ex(&s.st, o->store_url, o->store, err);
  if (rc) goto out;
  /* one writer per store prefix, as the flock above is one per database:
  ** before the position is read and before attach may write a snapshot
  ** (a refused start leaves nothing behind: release deletes the record) */
  if ((rc = ws_lease_acquire(&lease, s.st, o->db_path, err))) goto out;
  if ((rc = load_position(&s, err))) goto out;
  if (o->stats) ws_stats_durable(o->stats, s.txid);
  /* The app may reset the WAL while we attach (a snapshot's frame re-check
  ** then fails): such a race clears on a second try; a WAL that is still
  ** unreadable after three is reported. */
  for (int tries = 1; (rc = attach(&s, err)) != WS_OK; tries++) {
    if (tries == 3 || fatal(rc) || rc == WS_ELOCKED || stop_requested(o)) goto out;
    ws_log(WS_LOG_WARN, "ship", "attach failed: %s; retrying", err->msg);
    memset(err, 0, sizeof(*err));
    usleep(200000);
  }
  /* A restart next to a busy app finds a WAL that grew meanwhile: the
  ** first syncs are braked too (not --once, which drains and exits). */
  if (!o->once && !stop_requested(o)) ship_brake_on(&s, 1);
  rc = ship_sync_all(&s, o->once ? SHIP_DRAIN_ALL : SHIP_DRAIN_NO, err);
  if (rc == WS_OK) rc = ship_maint(&s, err);
  ship_brake_off(&s);
  /* A store that fails the first upload is retried like any later one (the
  ** frames wait in the WAL under the pin); --once and bad input still stop. */
  int64_t first_retry = 0;
  if (rc && (o->once || fatal(rc))) goto out;
  if (rc) {
    ws_log(WS_LOG_WARN, "ship", "sync failed: %s; retrying in 500 ms", err->msg);
    memset(err, 0, sizeof(*err));
    first_retry = ws_mono_ms() + 500;
    rc = WS_OK;
  }
  if (o->once) goto done;
  if ((rc = ws_watch_open(&s.watch, o->db_path, err))) goto out;
  if (o->stats) ws_watch_set_kick(s.watch, ws_stats_kick_fd(o->stats));
  if ((o->retention_ms > 0 || o->compaction) &&
      (rc = ws_maint_start(&mt, o, maint_period_ms(), err)))
    goto out;

  int64_t last_sync = ws_mono_ms(), retry_at = first_retry, last_mode_check = 0;
  int64_t backoff = first_retry ? 500 : 0, last_slow = 0;
  int pending = 0, ckpt_seen = 0;
  int64_t stuck_at = 0, yield_at = 0; /* ws_pin_yield's schedule */
  uint32_t stuck_mx = 0, stuck_nb = 0;
  int yields = 0;
  int broken = first_retry && (s.need_snapshot || (s.pin && !ws_pin_held(s.pin)));
  int64_t ckpt_at = INT64_MIN / 2, flood_at = INT64_MIN / 2, active_at = INT64_MIN / 2;
  uint32_t seen_mx = 0;
  uint32_t flood_base_mx = 0, nb0;
  uint64_t cyc = 0, flood_base_cyc = 0, burst_cyc = 0, seen_cyc = 0; /* WAL cycles */
  int64_t warm_at = INT64_MIN / 2;
  int64_t burst_at = INT64_MIN / 2; /* commits resumed after a quiet second */
  /* A sync that found nothing published but the next frame written (the
  ** app fsyncs a commit before it publishes it in the wal-index, whose
  ** update no file event reports): look every HOT_POLL_MS for CHASE_MS
  ** until mxFrame moves, then sync at once.  Not for ever: a killed
  ** writer's frame stays there until the next writer overwrites it. */
  int64_t chase_at = INT64_MIN / 2, chase_until = 0;
  uint32_t chase_mx = 0;            /* ... from this WAL position */
  uint64_t chase_cyc = 0;
  int64_t forced_at = INT64_MIN / 2;
  uint32_t burst_mx = 0;            /* ... with the WAL at this frame */
  int idle_ok = 0;                  /* ws_pin_waits_on_writes at the last look */
  int repin_wanted = 0;             /* ... no, and the idle re-pin below is to come */
  int64_t db_event_at = INT64_MIN / 2;
  uint32_t repin_mx = UINT32_MAX, repin_nb = UINT32_MAX; /* idle re-pin done here */
  int64_t flood_base_at = ws_mono_ms();
  /* the WAL found at start is not growth */
  if (s.pin && ws_pin_shm_peek_cycle(s.pin, &seen_mx, &nb0, &seen_cyc))
    flood_base_mx = seen_mx, flood_base_cyc = seen_cyc;
  int64_t seen_walsz = ws_wal_size(s.wal);
  while (!stop_requested(o)) {
    int64_t now = ws_mono_ms();
    /* A short tick only while the pin is behind (commits not shipped yet):
    ** an app checkpoint waiting for our reader then shows only as its lock
    ** (ws_pin_ckpt_locked).  Caught up, the checkpoint's backfill writes the
    ** database file, and inotify wakes us. */
    int64_t timeout = o->poll_ms ? o->poll_ms : 1000;
    /* Each tick costs a few syscalls and a context switch: most of the
    ** sidecar's CPU at 100 tx/s with the default 1 s interval.  Apps that
    ** never run a blocking checkpoint (SQLite's autocheckpoint is PASSIVE)
    ** get the slow tick; the first blocking checkpoint waits at most
    ** SLOW_TICK_MS longer, the ones after it the fast tick.  A flood keeps
    ** the fast tick so the WAL in use stays near wal_max; commits that just
    ** resumed, or a WAL growing at a quarter of a flood's rate, get the
    ** warm tick so a flood's start is seen within ~100 ms. */
    /* An app running blocking checkpoints every few seconds or faster gets
    ** CKPT_TICK_MS: each one waits for our reader twice (to reach the WAL's
    ** end, then slot 0), and SQLite's busy handler retries after 1, 2, 5,
    ** 10, 15 ms...: found 20 ms later, a TRUNCATE every 50 commits at 1000
    ** tx/s took 35-55 ms instead of 2.5 (10-21 with a 5 ms look; 200 looks
    ** a second cost ~1 % of a core, bench/ckpt_ab.sh, docs/benchmarks.md). */
    int64_t tick = now - ckpt_at < CKPT_HOT_MS ? CKPT_TICK_MS
                   : now - flood_at < FLOOD_RECENT_MS || now - ckpt_at < CKPT_RECENT_MS
                       ? FAST_TICK_MS
                   : now - burst_at < BURST_MS ? FAST_TICK_MS
                   : now - warm_at < SLOW_TICK_MS ? WARM_TICK_MS : SLOW_TICK_MS;
    if (pending && timeout > tick) timeout = tick;
    if (ckpt_seen) timeout = 1; /* it is waiting now: answer within 1 ms */
    /* (not while a failed sync backs off: the interval is long past, and
    ** a timeout of 0 until retry_at spun a core during a store outage) */
    if (pending && !retry_at && last_sync + o->sync_interval_ms - now < timeout)
      timeout = last_sync + o->sync_interval_ms - now;
    /* Already pending: file events carry no news until the sync is due.
    ** Nothing pending, we want to wake at the next commit; an inotify
    ** event costs the app's write() (9 % of a 1000 tx/s writer's CPU at
    ** --sync-interval 0), so while commits keep coming at a short interval
    ** we look every HOT_POLL_MS instead, and arm inotify once they stop. */
    /* (pending but quiet for a second: the next write may start a burst,
    ** which a slow tick saw only 250 ms late, ~80 MB of WAL at 64 KiB) */
    int events = !pending || now - active_at >= 1000;
    if (events && o->sync_interval_ms < FAST_TICK_MS && now - active_at < HOT_MS) {
      events = 0;
      if (timeout > HOT_POLL_MS) timeout = HOT_POLL_MS;
    }
    /* A chase polls, it does not spin: the interval is past (its sync did
    ** not count), which made the timeout above 0 or less (review of s15) */
    if (pending && now < chase_until && !retry_at && !ckpt_seen)
      events = 0, timeout = HOT_POLL_MS;
    /* Idle, and an app checkpoint could wait for our reader only after
    ** writing the database file (ws_pin_waits_on_writes), which inotify
    ** reports: sleep on file events for up to IDLE_TICK_MS (or poll_ms if
    ** longer).  Each wake-up costs ~50-150 us of CPU on a 2-vCPU VM
    ** (docs/benchmarks.md, S8), and an idle sidecar woke 4 times a second.
    ** Not for a minute after an app's blocking checkpoint.  After a write
    ** of the database file, or while an app checkpoint holds its lock,
    ** look every SLOW_TICK_MS for SETTLE_MS: a backfill that completes
    ** leaves a pin that no longer qualifies, unannounced.  A pin that does
    ** not qualify is moved REPIN_MS after the last move (below): wake up
    ** for that. */
    if (events && !pending && !retry_at && !broken && ws_watch_inotify(s.watch)) {
      if (idle_ok && now - ckpt_at >= CKPT_RECENT_MS && timeout < IDLE_TICK_MS)
        timeout = IDLE_TICK_MS;
      if (repin_wanted) {
        int64_t due = s.swap_ms + REPIN_MS - now;
        if (timeout > due) timeout = due > 0 ? due : 1;
      }
      if (now - db_event_at < SETTLE_MS && timeout > SLOW_TICK_MS) timeout = SLOW_TICK_MS;
    }
    if (retry_at && retry_at - now < timeout) timeout = retry_at - now;
    int mask = ws_watch_wait(s.watch, (int)(timeout < 0 ? 0 : timeout), events);
    if (stop_requested(o)) break;
    now = ws_mono_ms();
    int was_pending = pending;
    if (mask & WS_WATCH_WAL) pending = 1;
    if (mask & WS_WATCH_DB) db_event_at = now;

    uint32_t mx = 0, nb = 0;
    int force = 0, idle_repin = 0, peeked = 0;
    /* A blocking app checkpoint holds the app's writers while it waits for
    ** our reader: ship (if anything is pending) and re-pin now, and again
    ** every tick while it waits, rather than at the next interval.  With
    ** nothing new a forced sync is only a re-pin (no upload); once the
    ** checkpoint has backfilled everything the re-pin lands on slot 0 and
    ** lets its RESTART/TRUNCATE finish. */
    int was_seen = ckpt_seen;
    int app_ckpt = s.pin && ws_pin_app_ckpt_lock(s.pin);
    ckpt_seen = app_ckpt && ws_pin_ckpt_locked(s.pin);
    /* a checkpoint running (PASSIVE too): its end, which sets nBackfill
    ** after an fsync no event reports, is awaited with the settle looks */
    if (app_ckpt) db_event_at = now;
    if (ckpt_seen && !was_seen)
      ws_log(WS_LOG_DEBUG, "ship", "app checkpoint holds the checkpoint and write locks");
    if (ckpt_seen) force = 1, ckpt_at = now;
    if (s.pin && ws_pin_shm_peek_cycle(s.pin, &mx, &nb, &cyc)) {
      peeked = 1;
      if (mx != seen_mx || cyc != seen_cyc) {
        if (now - active_at >= 1000) burst_at = now, burst_mx = seen_mx, burst_cyc = seen_cyc;
        pending = 1, active_at = now;
      }
      /* Growth since a base look: a reset since then counts the frames of
      ** the new cycle.  Told by the cycle's salts, not by mxFrame going
      ** down: back-to-back barriers reset the WAL every ~100 ms under a 64
      ** KiB flood, a new cycle was often past the base's mxFrame by the
      ** next look, and only the difference counted.  The flood was then
      ** missed for seconds, the tick slowed to 100 ms, and in one such tick
      ** the WAL grew to 141-185 MB (3 of 13 8 s 64 KiB floods, s12). */
#define GROWN(base_mx, base_cyc) \
      ((uint64_t)(cyc == (base_cyc) && mx >= (base_mx) ? mx - (base_mx) : mx) * \
       (s.page_size + WS_WAL_FRAME_HDR))
      /* A writer starting from idle fills the page cache at up to ~800 MB/s
      ** (64 KiB pages): a 100 ms flood window was 80 MB of WAL before we
      ** reacted.  For BURST_MS after a quiet second, look every FAST_TICK_MS
      ** and call it a flood as soon as the WAL grew by wal_max/4. */
      if (now - burst_at < BURST_MS && ship_wal_max(&s) &&
          GROWN(burst_mx, burst_cyc) >= ship_wal_max(&s) / 4) {
        if (now - flood_at >= FLOOD_RECENT_MS)
          ws_log(WS_LOG_DEBUG, "ship", "flood: the WAL grew from %u to %u frames in %lld ms "
                 "after a quiet spell", burst_mx, mx, (long long)(now - burst_at));
        flood_at = now;
      }
      if (mx == flood_base_mx && cyc == flood_base_cyc)
        flood_base_at = now; /* quiet: window restarts */
      /* A flood: the WAL grew by FLOOD_BPS over a window of at least
      ** 100 ms (a reset since counts the frames of the new cycle).  In
      ** bytes, not frames: 64 KiB pages flood at a few thousand frames a
      ** second.  (It was 256 frames per look, and an unchanged mx counted
      ** as a reset: any look without a commit while the WAL held 256 frames
      ** was a "flood", with 20 ms ticks and, past wal_max/2, an object per
      ** tick.) */
      if (now - flood_base_at >= 100) {
        uint64_t grown = GROWN(flood_base_mx, flood_base_cyc);
        /* a quarter of a flood's rate keeps the warm tick */
        if (grown * 4000 >= (uint64_t)FLOOD_BPS * (uint64_t)(now - flood_base_at))
          warm_at = now;
        if (grown * 1000 >= (uint64_t)FLOOD_BPS * (uint64_t)(now - flood_base_at)) {
          if (now - flood_at >= FLOOD_RECENT_MS)
            ws_log(WS_LOG_DEBUG, "ship", "flood: the WAL grew from %u to %u frames in %lld ms",
                   flood_base_mx, mx, (long long)(now - flood_base_at));
          flood_at = now;
        }
        flood_base_mx = mx, flood_base_cyc = cyc;
        flood_base_at = now;
      }
#undef GROWN
      /* a flood: ship continuously rather than once per interval, so the
      ** WAL in use stays near wal_max instead of growing for a whole
      ** interval.  Only while the WAL grows fast: a slow writer whose WAL
      ** just never resets (our pin) reaches wal_max/2 too, and shipping at
      ** every tick then cost an object per tick (~30 a second, on S3 as
      ** many PUTs) until the barrier at wal_max; it keeps the interval. */
      if (ship_wal_max(&s) && now - flood_at < FLOOD_RECENT_MS &&
          (uint64_t)mx * (s.page_size + WS_WAL_FRAME_HDR) > ship_wal_max(&s) / 2)
        force = 1; /* not flood_at = now: an idle app whose WAL stays past
                    ** wal_max/2 then got a forced sync every tick, forever */
      /* A pin on read-lock 0 (after a barrier or a full checkpoint) blocks
      ** every backfill, and past its autocheckpoint size (1000 frames by
      ** default, our checkpoint_frames) each of the app's commits sorts the
      ** whole WAL before failing on that lock.  Move it off before then:
      ** ship the new cycle's first frames and re-pin (sync_all moves a
      ** slot-0 pin at once).  Under a flood that was left to the
      ** wal_max/2 rule above, and the app spent ~11 % of its time in
      ** walMerge (docs/benchmarks.md, S6).  Counted from the frame the pin
      ** was taken at (a WAL that cannot restart, e.g. under an app reader,
      ** would otherwise force a sync, then maint's checkpoint a slot-0
      ** re-pin, at every tick), and only for a writer that gets there
      ** within a second: slower ones meet the interval's sync first. */
      if (slot0_outrun(&s, mx, nb, now)) force = 1;
      seen_mx = mx, seen_cyc = cyc;
      /* Idle with a pin an app's RESTART/TRUNCATE could wait on without
      ** writing first (behind the WAL's end, or the app's own checkpoint
      ** backfilled up to it): move it, once per WAL state, to the end
      ** (read-lock 0 if fully backfilled), where the long idle sleep is
      ** safe.  Rationed like every move (REPIN_MS). */
      idle_ok = ws_pin_waits_on_writes(s.pin, mx, nb);
      repin_wanted = !pending && !idle_ok && (mx != repin_mx || nb != repin_nb);
      if (repin_wanted && now - s.swap_ms >= REPIN_MS) force = 1, idle_repin = 1;
    } else {
      idle_ok = repin_wanted = 0;
    }
    if (s.wal && !pending) { /* only news while not pending already */
      int64_t sz = ws_wal_size(s.wal);
      if (sz != seen_walsz) pending = 1;
      seen_walsz = sz;
    }
    /* the first commits after a quiet spell (or a new -wal): look again
    ** soon, in case they are a flood's first (at 300 MB/s a 250 ms tick
    ** is 75 MB) */
    if (pending && !was_pending) warm_at = now;
    /* A flood's or a slot-0 pin's forced sync at most once a fast tick: the
    ** app's own checkpoint writing the database file woke us at every
    ** write (inotify), and each wake-up ran a sync and a checkpoint attempt
    ** that the app's held lock made fail: ~40 a millisecond while it ran.
    ** A waiting blocking checkpoint (ckpt_seen) keeps its 1 ms answer. */
    if (force && !ckpt_seen && now - forced_at < FAST_TICK_MS) force = 0;
    if (force) forced_at = now;
    if (force && idle_repin) repin_mx = mx, repin_nb = nb, repin_wanted = 0;
    /* lag starts counting now; a waiter or a snapshot request needs a sync */
    if (o->stats && ws_stats_tick(o->stats, pending)) pending = 1;
    if (now - last_slow < (o->poll_ms ? o->poll_ms : 1000) && !force && !mask &&
        !(pending && now - last_sync >= o->sync_interval_ms) && !retry_at)
      continue;
    last_slow = now;
    struct stat stb;
    if (s.dbfd >= 0 && (stat(o->db_path, &stb) != 0 || stb.st_ino != s.db_ino ||
                        stb.st_dev != s.db_dev)) {
      ws_log(WS_LOG_WARN, "ship", "database file %s was replaced or removed; "
             "re-attaching", o->db_path);
      s.need_snapshot = 1;
      broken = 1;
      force = 1;
    }
    if (s.pin && now - last_mode_check >= 2000) {
      last_mode_check = now;
      if (ws_pin_shm_replaced(s.pin)) {
        ws_log(WS_LOG_WARN, "ship", "%s-shm was removed or replaced while in use; "
               "re-attaching", o->db_path);
        broken = 1;
        force = 1;
      }
      if ((rc = ws_pin_check_wal_mode(s.pin, err))) goto out;
    }
    /* renewed while idle too; lost, nothing more may be uploaded */
    ws_err le = WS_ERR_INIT;
    if ((rc = ws_lease_tick(lease, &le)) == WS_ELOCKED) {
      *err = le;
      goto out;
    }
    if (rc) {
      ws_log(WS_LOG_WARN, "lease", "renewal failed, retrying: %s", le.msg);
      rc = WS_OK;
    }
    if (retry_at && now < retry_at) continue;
    if (now < chase_until && !force && !broken && peeked && mx == chase_mx && cyc == chase_cyc)
      continue; /* still not published */
    if (!(force || broken || retry_at ||
          (pending && now - last_sync >= o->sync_interval_ms)))
      continue;

    ws_err e2 = WS_ERR_INIT;
    rc = WS_OK;
    uint64_t objs0 = s.objects;
    if (broken || !s.pin || !ws_pin_held(s.pin)) rc = attach(&s, &e2);
    /* Drain (leave the pin at the end with nothing unshipped) when maint
    ** needs it: a checkpoint is due, or an app checkpoint waits for us. */
    if (rc == WS_OK) {
      /* not while a failed sync is retried: the store may fail again, and
      ** the app's writers would wait for it (review of s13) */
      if (!retry_at && !broken)
        ship_brake_on(&s, now - flood_at < FLOOD_RECENT_MS || now - burst_at < BURST_MS);
      rc = ship_sync_all(&s, ckpt_seen ? SHIP_DRAIN_STILL : SHIP_DRAIN_NO, &e2);
    }
    s.ckpt_waiting = ckpt_seen, s.ckpt_look_mx = peeked ? mx : UINT32_MAX;
    if (rc == WS_OK) rc = ship_maint(&s, &e2);
    ship_brake_off(&s);
    if (rc == WS_OK) rc = maybe_snapshot(&s, &e2);
    uint64_t shipped_objs = s.objects - objs0; /* by the sync, maint or a snapshot */
    /* A blocking checkpoint still waits although everything is shipped and
    ** the pin sits at the end: it read our mark while we were behind and
    ** retries only our slot's lock, which every re-pin keeps held (pin.h).
    ** Only when nothing moved for YIELD_AFTER_MS (no commit, no backfill):
    ** the guard the yield holds blocks backfills too, and under a busy app
    ** that was a stall of its own.  Let go of the slot for up to 50 ms,
    ** then 110 (one busy-handler sleep).  Left alone it waited out the
    ** app's whole busy timeout (5 s in bench/ckpt_ab.sh's flood). */
    uint32_t smx = 0, snb = 0;
    if (rc == WS_OK && ckpt_seen && s.settled && s.have_cycle && s.pin &&
        ws_pin_shm_peek(s.pin, &smx, &snb)) {
      /* stuck: the same WAL state (no commit, no backfill) all along */
      if (!stuck_at || smx != stuck_mx || snb != stuck_nb)
        stuck_at = now, stuck_mx = smx, stuck_nb = snb, yields = 0;
      if (now - stuck_at >= YIELD_AFTER_MS && now >= yield_at && ws_pin_held(s.pin)) {
        int y, ms = yields ? 110 : 50;
        int64_t t0 = ws_mono_ms();
        rc = ws_pin_yield(s.pin, s.pos.frame, ms, &y, &e2);
        if (y) { /* the slot was released, even if the new pin failed */
          ws_log(WS_LOG_DEBUG, "ship", "an app checkpoint still waits with everything "
                 "shipped: read slot released for %d ms (up to %d)",
                 (int)(ws_mono_ms() - t0), ms);
          yields++;
          s.covered = 0;
          s.swap_ms = ws_mono_ms();
          s.swap_mx = smx;
          /* Past SQLite's longest busy-handler sleep (100 ms): with +20 the
          ** yields chained every ~150 ms and the guard was held ~85 % of the
          ** time, so the checkpoint's retries mostly met the next hold
          ** (review of s11). */
          yield_at = s.swap_ms + 150;
          if (s.o->stats) ws_stats_yield(s.o->stats);
        }
      }
    } else if (!ckpt_seen) {
      stuck_at = 0;
    }
    if (rc == WS_OK) {
      pending = s.more;
      if (s.wal) seen_walsz = ws_wal_size(s.wal); /* not sampled while pending */
      broken = 0;
      retry_at = backoff = 0;
      chase_until = 0;
      if (s.inflight && !shipped_objs && !s.more) {
        uint64_t c = (uint64_t)s.pos.salt1 << 32 | s.pos.salt2;
        if (c != chase_cyc || s.inflight_mx != chase_mx)
          chase_at = now, chase_cyc = c, chase_mx = s.inflight_mx;
        if (now - chase_at < CHASE_MS) chase_until = chase_at + CHASE_MS, pending = 1;
      }
      /* a chase syncs as soon as the commit is published, interval or not:
      ** this sync shipped nothing */
      if (!chase_until) last_sync = now;
      continue;
    }
    if (fatal(rc)) {
      *err = e2;
      goto out;
    }
    if (s.need_snapshot || (s.pin && !ws_pin_held(s.pin))) broken = 1;
    backoff = backoff ? (backoff * 2 > 30000 ? 30000 : backoff * 2) : 500;
    retry_at = ws_mono_ms() + backoff;
    /* a store that failed may hang next: no cycle barrier (its upload
    ** under the app's write lock) for a while (review of s14) */
    s.cycle_fail_ms = ws_mono_ms();
    ws_log(WS_LOG_WARN, "ship", "sync failed: %s; retrying in %lld ms", e2.msg,
           (long long)backoff);
    if (o->stats) ws_stats_error(o->stats, &e2);
  }
  ws_maint_stop(mt);   /* a merge in flight is abandoned, not half-written */
  mt = NULL;
  /* Final sync: everything committed goes out before we exit.  If it
  ** cannot, say so and fail: the frames stay in the WAL (our connections
  ** never checkpoint) and the next start ships them, or snapshots if the
  ** app checkpointed them away meanwhile.  "Committed" means before the
  ** stop: one pass ships up to the end of the WAL as it finds it, and
  ** commits landing during that upload stay in the WAL for the next start
  ** like any unshipped tail.  Chasing them (drain) never ends while the
  ** app writes faster than the store takes it: on a loaded 2-core machine
  ** a 500 tx/s writer kept a SIGTERM waiting for over 60 s. */
  {
    ws_err e2 = WS_ERR_INIT;
    rc = WS_OK;
    if (!s.pin || !ws_pin_held(s.pin) || s.need_snapshot) rc = attach(&s, &e2);
    if (rc == WS_OK) rc = ship_sync_all(&s, SHIP_DRAIN_NO, &e2);
    if (rc) {
      ws_fail(err, rc, "final sync failed, transactions after txid %llu are not in "
              "the store yet (they stay in the WAL for the next start): %s",
              (unsigned long long)s.txid, e2.msg);
      goto out;
    }
  }
done:
  ws_log(WS_LOG_INFO, "ship", "stopped: durable txid=%llu objects=%llu bytes=%llu",
         (unsigned long long)s.txid, (unsigned long long)s.objects,
         (unsigned long long)s.bytes);
  rc = WS_OK;
out:
  ws_maint_stop(mt);
  detach(&s);
  ws_watch_close(s.watch);
  ws_lease_release(lease);   /* writes only if the record is still ours */
  ws_store_close(s.st);
  ws_dbstate_free(&s.ds);
  ws_enc_free(s.enc);
  ship_delta_free(s.delta);
  free(s.tx);
  free(s.wal_path);
  close(lockfd);
  return rc;
}
