/*
** Keeping the WAL bounded (part of the sidecar, ship.c): the sidecar's
** PASSIVE checkpoints, the re-pins that let the app's next write restart
** the WAL, and past wal_max the write barrier.  ship.c's loop calls
** ship_maint after each sync; docs/DESIGN.md ("The capture protocol" and
** its "Not starving the app") has the measurements behind the numbers here.
*/
#include "ship.h"
#include "common.h"
#include "walship/stats.h"

#include <unistd.h>

#define TAIL_RETRY_MS 10000       /* maint: after a failed tail ship or cycle barrier */
#define CYCLE_WAIT_MS 20          /* cycle barrier: its wait for the write lock */
#define CYCLE_COMMIT_MS 20        /* ... only while the store commits this fast
                                     (on average) */
#define CYCLE_LEAVE_MS 20         /* ... then the app's first write, to re-pin */
#define CYCLE_LEAVE_FRAMES 32     /* ... if it is at most this many frames yet */
#define CYCLE_BUSY_MS 3000        /* ... none for this long after a busy lock */
#define CYCLE_TAIL_MAX (512u << 10) /* ... nor for a tail past this (a flood) */
#define BARRIER_BUSY_RUN 3        /* barriers in a row whose checkpoint found the */
#define BARRIER_BACKOFF_MS 50     /* ... checkpoint lock busy: then this pause, */
#define BARRIER_BACKOFF_MAX_MS 1000 /* ... doubling to this */
#define PREWORK_ROUNDS 3          /* barrier: unlocked ship+checkpoint rounds */
#define BUSY_WARN_MS 10000        /* maint: at most one "WAL past the barrier" warning */
#define BRAKE_X 3                 /* the brake: at this many times ship_wal_max */
#define BRAKE_HOLD_MIN_MS 1000    /* ... and its lock waits for a barrier at least */
#define BRAKE_HOLD_MAX_MS 10000   /* ... at most this long */

/* The WAL size the barrier holds: --wal-max, but at most four times the
** autocheckpoint size in frames.  With small pages 16 MiB is many times
** SQLite's 1000 frames, and past those every commit of the app runs a
** checkpoint attempt that sorts the frames after nBackfill (1 KiB pages:
** the writer ran at 0.34x its speed alone). */
uint64_t ship_wal_max(const ship *s) {
  uint64_t m = s->o->wal_max_bytes;
  if (m && s->o->checkpoint_frames && s->page_size) {
    uint64_t f = 4ull * s->o->checkpoint_frames * (s->page_size + WS_WAL_FRAME_HDR);
    if (f < m) m = f;
  }
  /* callers compare against 2 and 4 times this as int64_t */
  return m > (1ull << 60) ? 1ull << 60 : m;
}

/* Bytes of WAL in use (the file keeps its size after a reset). */
int64_t ship_wal_in_use(ship *s, uint32_t *pmx, uint32_t *pnb) {
  uint32_t mx_, nb_, *mx = pmx ? pmx : &mx_, *nb = pnb ? pnb : &nb_;
  uint64_t fsz = (uint64_t)s->page_size + WS_WAL_FRAME_HDR;
  if (!s->pin || !ws_pin_shm_peek(s->pin, mx, nb)) {
    int64_t filesz = s->wal ? ws_wal_size(s->wal) : 0;
    *mx = (uint32_t)(filesz > 32 ? (uint64_t)(filesz - 32) / fsz : 0), *nb = 0;
  }
  return 32 + (int64_t)*mx * (int64_t)fsz;
}

/* The wal-index's mxFrame, if the WAL is still in the cycle of the shipped
** position (its salts); 0 otherwise or if it cannot be read.  A reset since
** can bring mxFrame back to any value: frame numbers alone do not say that
** nothing came since (review of s14). */
static int same_cycle(ship *s, uint32_t *mx) {
  return s->have_cycle && ship_committed_end(s, s->pos.salt1, s->pos.salt2, mx);
}

/* The brake (pin.h) from a sync to the end of maint: the loop cannot look
** at the WAL while it writes an object, and that object's fsync stalled
** 0.2-0.44 s behind an unthrottled writer's writeback on this project's
** VMs: a 64 KiB flood's WAL reached 110-428 MB in 5 of 11 runs (s12).
** Past BRAKE_X times the limit, where a barrier would have begun long
** since (at 1x) and normally holds the WAL (2x), another thread takes the
** app's write lock and the next barrier uses it.  A WAL that cannot
** restart (an app reader on an old snapshot) stays past the limit, and the
** brake then held the writers through every upload as well as each barrier
** (review of s13: 1.2 -> 2.4 s in 8 s): so when the WAL was past the limit
** at the last arm too, in the same cycle, only growth by another wal_max
** trips it.  Not at every arm: under a 64 KiB flood the WAL often passes
** the limit between two syncs, and that rule let it peak at ~73 MB, not 66.
** Arming costs two wake-ups of the waiter (~0.1 ms each on a 2-vCPU VM: ~1
** ms per 1000 tx of a 100 tx/s writer, S13), so only where a stall could
** matter: hot (a flood or a burst seen lately, or a barrier just ended), or
** the WAL past a quarter of the limit. */
void ship_brake_on(ship *s, int hot) {
  uint64_t m = ship_wal_max(s), fsz = (uint64_t)s->page_size + WS_WAL_FRAME_HDR, cyc;
  uint32_t mx, nb;
  /* Not during a barrier's back-off (maint): the checkpoint lock stayed
  ** busy, and a barrier now would hold the app's writers for nothing. */
  if (!s->pin || !m || !s->page_size || ws_mono_ms() < s->barrier_after_ms) return;
  uint64_t lim = (BRAKE_X * m - 32) / fsz;
  int ok = ws_pin_shm_peek_cycle(s->pin, &mx, &nb, &cyc);
  if (!hot && ok && (32 + (uint64_t)mx * fsz) <= m / 4) return;
  int past = ok && nb < mx && mx > lim;
  if (past && s->brake_past && cyc == s->brake_cyc) lim = mx + m / fsz;
  s->brake_past = past, s->brake_cyc = cyc;
  /* How long its lock may wait for the barrier: a stuck sync (a store that
  ** hangs, then fails) must not hold the app's writers for all of its
  ** retries (a 1.5 s busy timeout ran out, review of s13), but a slow disk
  ** is no stuck sync: with 0.6 s fsyncs (two per object) a fixed 1 s let
  ** a 64 KiB flood's WAL reach 507 MB.  So 1 s plus three times the
  ** store's last commit (its fsyncs), at most 10 s. */
  int64_t hold = BRAKE_HOLD_MIN_MS + 3 * s->commit_ms;
  if (hold > BRAKE_HOLD_MAX_MS) hold = BRAKE_HOLD_MAX_MS;
  ws_pin_brake_arm(s->pin, lim > UINT32_MAX ? UINT32_MAX : (uint32_t)lim, (int)hold);
}

/* Disarm: 1 if the brake holds the lock (since_ms: since when). */
static int brake_off(ship *s, int64_t *since_ms) {
  unsigned expired = 0;
  int held = ws_pin_brake_off(s->pin, since_ms, &expired);
  if (expired)
    ws_log(WS_LOG_INFO, "ship", "write brake: the app's writers were let go: the sync "
           "they waited for did not end in 1 s plus three times the store's last commit "
           "(a slow or failing store)");
  return held;
}

/* Disarm; a lock the brake took and no barrier used (the sync failed) is
** dropped. */
void ship_brake_off(ship *s) {
  if (s->pin && brake_off(s, NULL)) ws_pin_brake_release(s->pin);
}

/* A sidecar PASSIVE checkpoint, timed for the stats. */
static int ckpt(ship *s, int *nlog, int *nckpt, ws_err *err) {
  int64_t t0 = ws_mono_ms();
  int rc = ws_pin_checkpoint(s->pin, nlog, nckpt, err);
  if (s->o->stats) ws_stats_checkpoint(s->o->stats, ws_mono_ms() - t0);
  return rc;
}

/* After a cycle barrier the pin is clean on read-lock 0 (pin.h), where it
** forbids every backfill: past its autocheckpoint size each of the app's
** commits would sort the WAL's frames before failing on that lock.  The
** loop moves such a pin with a sync once checkpoint_frames/2 frames came
** (slot0_outrun: two objects, and the interval's clock restarts, so the
** next cycle barrier came at ~1600 frames, not ~1070, next to a 1000 tx/s
** writer).  A clean pin may move without shipping: wait (1 ms looks, at
** most CYCLE_LEAVE_MS) for the app's first frame of the new cycle, then
** swap; the new pin lands on a slot >= 1 just past it.  Right away, not at
** the loop's next look: the app's autocheckpoint may backfill the frames
** before the new pin before we ship them, and a page whose delta base is
** then read from the database file ships whole (moving at the loop's look,
** up to 250 ms later, took bench/run.sh (d)'s random updates from ~140 to
** ~700 segment bytes per update). */
static void leave_slot0(ship *s) {
  int64_t end = ws_mono_ms() + CYCLE_LEAVE_MS;
  uint32_t mx, nb;
  ws_err e = WS_ERR_INIT;
  while (ws_pin_clean(s->pin)) {
    if (ws_pin_shm_peek(s->pin, &mx, &nb) && mx > nb) {
      /* A fast writer got further in that millisecond: its frames before
      ** the new pin would be backfilled unshipped (bench/run.sh (d),
      ** ~30,000 updates a second: 133-165 -> 213-280 segment bytes per
      ** update).  The loop's rule moves the pin then, shipping first. */
      if (mx - nb > CYCLE_LEAVE_FRAMES) break;
      /* not settled: the new pin is past what we shipped (snapshots) */
      if (ws_pin_swap(s->pin, &e) == WS_OK)
        s->covered = 0, s->settled = 0, s->swap_ms = ws_mono_ms(), s->swap_mx = mx;
      else
        ws_log(WS_LOG_DEBUG, "ship", "pin not moved off read-lock 0: %s", e.msg);
      break;
    }
    if (ws_mono_ms() >= end) break;
    usleep(1000);
  }
}

/* The write barrier (pin.h): ship the tail under the app's write lock so
** the checkpoint completes and the new pin lands on slot 0.  WS_ELOCKED
** (the lock stayed busy for wait_ms) is not an error: try again later. */
/* Is the tail a cycle barrier would ship under the app's write lock short?
** Only a tail of the shipped position's cycle is known at all. */
static int cycle_tail_ok(ship *s, uint32_t *mx) {
  uint64_t fsz = (uint64_t)s->page_size + WS_WAL_FRAME_HDR;
  return same_cycle(s, mx) && *mx >= s->pos.frame &&
         (uint64_t)(*mx - s->pos.frame) * fsz <= CYCLE_TAIL_MAX;
}

/* cycle: a cycle barrier (maint), ending the WAL cycle cyc */
static int barrier(ship *s, int64_t walsz, int wait_ms, int rearm, int cycle, uint64_t cyc,
                   ws_err *err) {
  int nlog, nckpt, shipped, rc;
  /* Everything slow happens before the lock: ship what is committed, move
  ** the pin to the end, backfill up to it (PASSIVE, with its fsync).  Under
  ** the lock only the few commits since are shipped and backfilled, so the
  ** app's writers wait milliseconds — an app without a busy timeout gets
  ** SQLITE_BUSY for exactly that span. */
  /* A writer that never pauses outruns that pre-work (it keeps appending
  ** while we ship and backfill), so past twice the limit the lock comes
  ** first: the WAL stays near 2 * wal_max, and the lock span grows. */
  int64_t lim = 2 * (int64_t)ship_wal_max(s), tp = ws_mono_ms();
  ws_log(WS_LOG_DEBUG, "ship", "write barrier: begin, wal_bytes=%lld", (long long)walsz);
  /* Up to three rounds while the tail left for the lock shrinks: what the
  ** lock span costs is mostly that tail's fsyncs (the checkpoint's fsync of
  ** the WAL writes out every page the app wrote since the last one). */
  /* And a writer faster than we ship (random blobs: ~200 MB/s against our
  ** ~100) outruns it from the start: we come here with much of the WAL
  ** unshipped, the pre-work's shipping and checkpoint fsync took ~200 ms
  ** while the WAL grew to 80-105 MB.  Then the lock comes first too. */
  uint32_t mx0, nb0;
  ship_wal_in_use(s, &mx0, &nb0);
  /* The brake holds the lock already: no pre-work, the writers wait. */
  int64_t braked_ms = 0;
  int locked = ws_pin_brake_held(s->pin, &braked_ms);
  uint64_t fsz0 = (uint64_t)s->page_size + WS_WAL_FRAME_HDR;
  int behind = s->have_cycle && mx0 > s->pos.frame &&
               (uint64_t)(mx0 - s->pos.frame) * fsz0 > ship_wal_max(s) / 4;
  /* A cycle barrier comes right after maint's own sync and checkpoint: its
  ** pre-work is done, only the commits since are left for the lock. */
  for (int round = 0; round < PREWORK_ROUNDS && walsz < lim && !behind && !locked && !cycle;
       round++) {
    do {
      if ((rc = ship_sync_once(s, &shipped, err))) return rc;
      if ((locked = ws_pin_brake_held(s->pin, &braked_ms))) break;
    } while (!s->covered && ship_wal_in_use(s, NULL, NULL) <= lim); /* outrun: lock now */
    if (locked || !s->covered || (walsz = ship_wal_in_use(s, NULL, NULL)) > lim) break;
    if ((rc = ws_pin_swap(s->pin, err))) return rc;
    s->covered = 0;
    if ((rc = ckpt(s, &nlog, &nckpt, err))) return rc;
    if ((locked = ws_pin_brake_held(s->pin, &braked_ms))) break;
    uint32_t mx, nb;
    walsz = ship_wal_in_use(s, &mx, &nb);
    uint64_t fsz = (uint64_t)s->page_size + WS_WAL_FRAME_HDR;
    if (mx < s->pos.frame || (uint64_t)(mx - s->pos.frame) * fsz < ship_wal_max(s) / 16)
      break;
  }
  /* From here the brake is off: the lock is the barrier's (at once if the
  ** brake took it), and once released the WAL may grow again. */
  /* (held a moment ago but expired since, on a descheduled thread: then a
  ** normal wait, not the braked one of 0 ms, which cannot succeed) */
  int was_locked = locked;
  locked = brake_off(s, &braked_ms);
  if (was_locked && !locked && wait_ms < 100) wait_ms = 100;
  int64_t t0 = ws_mono_ms(), brake_ms = locked ? t0 - braked_ms : 0;
  if (locked)
    ws_log(WS_LOG_DEBUG, "ship", "write brake: the WAL grew past its limit during a sync; "
           "the app's writers have waited %lld ms for this barrier", (long long)brake_ms);
  if ((rc = ws_pin_barrier_begin(s->pin, wait_ms, err))) return rc;
  /* The writer kept appending while we waited for its lock: measured
  ** again, now that nothing can commit. */
  uint32_t cmx;
  if (cycle && !cycle_tail_ok(s, &cmx)) {
    ws_pin_barrier_abort(s->pin);
    return ws_fail(err, WS_ELOCKED, "the tail grew past %u KiB while the write lock was awaited",
                   CYCLE_TAIL_MAX >> 10);
  }
  int64_t t1 = ws_mono_ms();
  do {
    if ((rc = ship_sync_once(s, &shipped, err))) {
      ws_pin_barrier_abort(s->pin);
      return rc;
    }
  } while (!s->covered);
  int64_t t2 = ws_mono_ms();
  rc = ws_pin_barrier_end(s->pin, &nlog, &nckpt, err);
  s->covered = 0;
  if (!ws_pin_held(s->pin)) /* attach re-proves continuity */
    return rc ? rc : ws_fail(err, WS_ERROR, "pin lost after barrier");
  if (!rc && nlog < 0) {
    /* The checkpoint lock stayed busy past pin.c's ~30 ms: the tail is
    ** shipped and the pin at the end, but nothing was backfilled, so the
    ** WAL cannot reset.  Its holder is an app checkpoint: a RESTART or
    ** TRUNCATE waiting for the write lock we just dropped, or a long
    ** PASSIVE.  Counted with the barriers (writers were held) and as busy
    ** (the WAL did not reset).  Usually it is the app's own autocheckpoint,
    ** over in milliseconds: the next barrier comes at once (a 50 ms pause
    ** after each let an unthrottled blob writer take the WAL from ~35 to
    ** 61-86 MB in make bench).  Only BARRIER_BUSY_RUN in a row mean a long
    ** holder: then the next waits BARRIER_BACKOFF_MS, doubling while this
    ** repeats, instead of stalling the app's writers back to back for
    ** nothing (wal_bounded.sh ckheld: 112 such barriers in 5 s). */
    if (s->o->stats) ws_stats_barrier(s->o->stats, locked, cycle);
    int sh = ++s->barrier_fails - BARRIER_BUSY_RUN, wait = 0;
    if (sh >= 0) wait = sh >= 5 ? BARRIER_BACKOFF_MAX_MS : BARRIER_BACKOFF_MS << sh;
    s->barrier_after_ms = ws_mono_ms() + wait;
    return ws_fail(err, WS_ELOCKED, "checkpoint lock busy after the tail was shipped "
                   "(an app checkpoint runs); next barrier in %d ms", wait);
  }
  s->barrier_fails = 0;
  if (s->o->stats) ws_stats_barrier(s->o->stats, locked, cycle);
  /* A cycle barrier every WAL cycle is routine: logged at debug level. */
  ws_log(cycle ? WS_LOG_DEBUG : WS_LOG_INFO, "ship", "write barrier: %swal_bytes=%lld log=%d "
         "backfilled=%d prework_ms=%lld wait_ms=%lld held_ms=%lld (ship_ms=%lld "
         "checkpoint_ms=%lld) brake_ms=%lld", cycle ? "cycle " : "", (long long)walsz, nlog,
         nckpt, (long long)(t0 - tp), (long long)(t1 - t0), (long long)(ws_mono_ms() - t1),
         (long long)(t2 - t1), (long long)(ws_mono_ms() - t2), (long long)brake_ms);
  if (rc) return rc;
  /* An app reader on an old snapshot stopped the backfill: the WAL cannot
  ** restart, and cycle barriers would hold the writers for nothing. */
  if (cycle && !(nlog > 0 && nlog == nckpt)) {
    s->cycle_fail_ms = ws_mono_ms();
    s->cycle_ok_ms = 0;
  } else if (cycle) {
    s->cycle_ok_ms = ws_mono_ms();
    s->cycle_cyc = cyc;
  }
  /* braked again: what came during the barrier may be an object too (every
  ** caller of maint turns the brake off after it; ship_maint runs maint
  ** once more for a trip, and in that second run this re-arm is left out,
  ** as a trip there would be dropped unused).  A sync just succeeded, so
  ** the no-arming-during-retries rule does not apply. */
  if (cycle) {
    leave_slot0(s);
    return WS_OK;
  }
  if (rearm) ship_brake_on(s, 1);
  return ship_sync_all(s, SHIP_DRAIN_NO, err);
}

/* The cycle barrier: past checkpoint_frames, maint's PASSIVE checkpoint
** left frames committed during our upload, so the WAL cannot restart: a
** writer that never pauses as long as a tail ship and a checkpoint take
** (~1 ms apart at 1000 tx/s).  Then every commit of the app past SQLite's
** autocheckpoint size (1000 frames) runs a checkpoint attempt that fails
** on our pin, and the WAL runs on to --wal-max: next to a 1000 tx/s
** writer, 76 % of its commits made one, and its CPU per commit was x1.04-
** 1.07 of its own alone (paired, docs/benchmarks.md S14).  So the tail is
** shipped under the app's write lock, as at --wal-max (one small object
** and a checkpoint: 1-3 ms on a local disk), and the WAL restarts.  Only
** where that is cheap and allowed: --wal-max not 0 (the user's "never
** hold my writers"), a store whose commits take CYCLE_COMMIT_MS at most
** (a remote store's PUT would be the hold), not while an app's blocking
** checkpoint waits for us (it restarts the WAL itself), not during a
** barrier's back-off, and not for TAIL_RETRY_MS after one could not
** restart the WAL (an app reader on an old snapshot) or its lock stayed
** busy. */
static int cycle_barrier_ok(ship *s, int waiting, uint64_t *pcyc) {
  int64_t now = ws_mono_ms();
  uint32_t mx, nb;
  uint64_t cyc;
  if (!ship_wal_max(s) || !s->pin || !s->have_cycle || waiting || s->o->once ||
      !s->seg_commits || s->commit_avg_ms > CYCLE_COMMIT_MS ||
      now < s->barrier_after_ms || now < s->cycle_after_ms ||
      (s->cycle_fail_ms && now - s->cycle_fail_ms < TAIL_RETRY_MS) ||
      !ws_pin_shm_peek_cycle(s->pin, &mx, &nb, &cyc))
    return 0;
  /* The last one backfilled everything, but the app's next write did not
  ** restart the WAL: an app reader on a slot >= 1 (begun after it, or
  ** renewing its transactions) stops that, and would stop every one. */
  if (s->cycle_ok_ms && cyc == s->cycle_cyc) {
    s->cycle_ok_ms = 0;
    s->cycle_fail_ms = now;
    ws_log(WS_LOG_DEBUG, "ship", "the WAL did not restart after the last cycle barrier: "
           "none for %d s", TAIL_RETRY_MS / 1000);
    return 0;
  }
  *pcyc = cyc;
  return 1;
}

/*
** Keep the WAL small without starving the app (docs/DESIGN.md):
**   1. past wal_max: the write barrier, checked first because a writer that
**      never pauses defeats the cheaper steps below indefinitely (its next
**      transaction begins with a read mark before our checkpoint ends, so
**      the WAL never restarts even when fully backfilled);
**   2. past checkpoint_frames: a PASSIVE checkpoint; if it backfilled
**      everything, re-pin (slot 0) so the app's next write can restart;
**   3. fully backfilled by someone else (an app RESTART/TRUNCATE waiting
**      for our reader): re-pin at once.
*/
static int maint(ship *s, int rearm, ws_err *err) {
  uint32_t mx = 0, nb = 0;
  int nlog, nckpt, rc, tried = 0; /* tried: a barrier past wal_max, this call */
  int64_t walsz = ship_wal_in_use(s, &mx, &nb);
  if (s->o->stats) ws_stats_wal_size(s->o->stats, walsz);

  /* Not while an app's blocking checkpoint waits for us (ckpt_waiting):
  ** it holds the write lock, so the barrier would only queue behind it for
  ** 100 ms, and it resets the WAL itself once we re-pin (step 3).  Nor while
  ** one waits for the write lock that a live writer holds (the look sees
  ** the same two locks): it gets it within milliseconds, then waits for us.
  ** But a look can be fooled (another process's checkpoint lock next to a
  ** live writer, pin.c), and trusting every look skipped the barrier at
  ** each tick a look was fooled: under a blob flood next to 5 ms
  ** checkpoint-lock bursts, with ~100 ms of shipping and PASSIVE checkpoint
  ** per tick, a few in a row took the WAL to 85-193 MB (wal_bounded.sh
  ** cklock; CI failed on it twice).  So once the WAL is past twice the
  ** limit (where the barrier normally holds it) and has changed since the
  ** look (a waiting checkpoint holds the write lock: it cannot), the
  ** barrier goes ahead, waiting 10 ms for the write lock instead of 100
  ** in case the checkpoint was real and takes the lock first.  Without the
  ** size condition, bench/ckpt_ab.sh's flood (real TRUNCATEs next to two
  ** unthrottled writers) saw the truncator's longest checkpoint go from
  ** 207-263 ms to 467-817 and the peak WAL from 22-25 MB to 27-68 (s12).
  ** A look that could not read mxFrame is trusted. */
  int looked = s->ckpt_waiting;
  int waiting = looked && (s->ckpt_look_mx == UINT32_MAX || mx == s->ckpt_look_mx ||
                           (uint64_t)walsz <= 2 * ship_wal_max(s));
  /* The brake took the lock (ship_brake_on): the barrier, whatever the
  ** look said, since the app's writers wait for it already. */
  int braked = s->pin && ws_pin_brake_held(s->pin, NULL);
  if (braked || (ship_wal_max(s) && (uint64_t)walsz > ship_wal_max(s) && nb < mx &&
                 !waiting && ws_mono_ms() >= s->barrier_after_ms)) {
    rc = barrier(s, walsz, braked ? 0 : looked ? 10 : 100, rearm, 0, 0, err);
    tried = 1;
    if (rc != WS_ELOCKED) return rc;
    /* Not an error, but the WAL keeps growing until a barrier gets in:
    ** count it, and say so once every BUSY_WARN_MS while the WAL is past
    ** four times the limit (the barrier normally holds it near twice). */
    s->busy_n++;
    if (s->o->stats) ws_stats_barrier_busy(s->o->stats);
    ws_log(WS_LOG_DEBUG, "ship", "write barrier not taken: %s; wal_bytes=%lld",
           err->msg, (long long)walsz);
    int64_t now = ws_mono_ms();
    if ((uint64_t)walsz > 4 * ship_wal_max(s) && now - s->busy_warn_ms >= BUSY_WARN_MS) {
      s->busy_warn_ms = now;
      ws_log(WS_LOG_WARN, "ship", "the WAL is %.1f MB, past 4x --wal-max (%.1f MB): %u write "
             "barriers since start were not taken, the app's write or checkpoint lock stayed "
             "busy (last: %s)", walsz / 1048576.0, ship_wal_max(s) / 1048576.0, s->busy_n,
             err->msg);
    }
    *err = (ws_err)WS_ERR_INIT;
  }
  /* While cycle barriers end the WAL's cycles, already when the WAL will
  ** be past the threshold at the next sync (at its rate since the last
  ** one), from half of it: a writer that makes about checkpoint_frames
  ** frames per sync interval (1000 tx/s of small inserts at 1 s) is
  ** sometimes just under it at a sync, and its next cycle then ran two
  ** intervals, half of it past SQLite's autocheckpoint size (a WAL of
  ** ~2100 frames under CPU load, tests/integration/cycle_barrier.sh).
  ** Slower writers keep the threshold (a fixed half of it kept write-lock
  ** holds every 500 frames going for writers the unlocked tail ship
  ** would serve, review of s14). */
  int64_t since = ws_mono_ms() - s->cycle_ok_ms;
  int regime = s->cycle_ok_ms && since < TAIL_RETRY_MS;
  uint32_t thr = s->o->checkpoint_frames;
  if (regime && since > 0 && mx >= thr / 2 &&
      mx + (uint64_t)mx * (uint64_t)s->o->sync_interval_ms / (uint64_t)since >= thr)
    thr = mx;
  if (s->o->checkpoint_frames && mx >= thr && nb < mx) {
    /* PASSIVE is always safe (backfill never destroys a frame).  If it
    ** backfilled everything and the WAL holds exactly the frames we have
    ** shipped (nlog is mxFrame as the checkpoint saw it), nothing is
    ** unshipped and a pin on slot 0 lets the app's next write restart
    ** the WAL.  A reset since our pin cannot fake this: frames of a new
    ** cycle cannot be backfilled while we hold it (pin.h). */
    uint64_t cyc = 0;
    int tail_shipped = 0, cyc_ok = !tried && cycle_barrier_ok(s, waiting, &cyc);
    int cycle_regime = cyc_ok && regime;
    /* The cycle barrier skips its pre-work: the pin should be at the end
    ** before this checkpoint, or what lies past it is backfilled under the
    ** app's write lock (sync_all rations its moves).  Only if nothing came
    ** since our sync: a pin past unshipped frames lets this checkpoint
    ** backfill them, and a page whose delta base is read from the database
    ** file then ships whole (bench/run.sh (d): 133-165 -> 195-286 segment
    ** bytes per update). */
    uint32_t pmx;
    if (cyc_ok && s->covered && same_cycle(s, &pmx) && pmx == s->pos.frame) {
      if ((rc = ws_pin_swap(s->pin, err))) return rc;
      s->covered = 0, s->settled = 0;
    }
    for (int round = 0; round < 2; round++) {
      if ((rc = ckpt(s, &nlog, &nckpt, err))) return rc;
      ws_log(WS_LOG_DEBUG, "ship", "checkpoint passive log=%d backfilled=%d shipped=%u",
             nlog, nckpt, s->pos.frame);
      if (round > 0 || nlog <= 0 || nlog != nckpt || !s->have_cycle ||
          (uint32_t)nlog <= s->pos.frame)
        break;
      /* Everything backfilled but a tail committed during our upload is not
      ** shipped yet: ship it now (one extra object per WAL cycle), then
      ** check again.  Not again for TAIL_RETRY_MS after it failed: a writer
      ** that never pauses commits again during that extra upload too, and
      ** trying at every sync doubled the objects (the PUTs, on S3) once
      ** the WAL was past checkpoint_frames; the barrier past wal_max is
      ** what resets the WAL under such a writer. */
      if (s->tail_fail_ms && ws_mono_ms() - s->tail_fail_ms < TAIL_RETRY_MS) break;
      /* Nor when the last cycles needed a cycle barrier: it ships the tail
      ** itself, and this upload would be one more object per cycle. */
      if (cycle_regime) break;
      int shipped;
      if ((rc = ship_sync_once(s, &shipped, err))) return rc;
      tail_shipped = 1;
    }
    /* (and still the shipped position's cycle: checked again, though the
    ** pin held since the sync forbids a reset, as a guard for any path
    ** that moves it in between) */
    uint32_t smx;
    if (nlog > 0 && nlog == nckpt && s->have_cycle && (uint32_t)nlog == s->pos.frame &&
        same_cycle(s, &smx)) {
      s->last_full_mx = (uint32_t)nlog;
      s->tail_fail_ms = 0;
      if ((rc = ws_pin_swap(s->pin, err))) return rc;
      s->covered = 0;
      return WS_OK;
    }
    /* Only for a short tail: under a flood the commits since our sync are
    ** megabytes, and shipping them under the lock held an unthrottled 4
    ** KiB writer to 0.80x the commits (the barrier past wal_max ships
    ** first, then locks). */
    uint32_t tmx = 0;
    if (cyc_ok && !cycle_tail_ok(s, &tmx)) cyc_ok = 0;
    if (cyc_ok) {
      rc = barrier(s, walsz, CYCLE_WAIT_MS, rearm, 1, cyc, err);
      if (rc != WS_ELOCKED) return rc;
      /* The app's writer held its lock past CYCLE_WAIT_MS (a long write
      ** transaction), or an app checkpoint held the checkpoint lock: not
      ** for CYCLE_BUSY_MS, longer than a sync interval (barrier()'s own
      ** back-off tops out at 1 s: each sync would hold the writers ~30 ms
      ** for nothing next to a long checkpoint, review of s14). */
      ws_log(WS_LOG_DEBUG, "ship", "cycle barrier not taken: %s", err->msg);
      *err = (ws_err)WS_ERR_INIT;
      s->busy_n++;
      if (s->o->stats) ws_stats_barrier_busy(s->o->stats);
      s->cycle_after_ms = ws_mono_ms() + CYCLE_BUSY_MS;
      return WS_OK;
    }
    if (tail_shipped) s->tail_fail_ms = ws_mono_ms();
    return WS_OK;
  }
  if (!s->covered) return WS_OK;
  if (mx > 0 && nb == mx && mx != s->last_full_mx) {
    /* Re-pin only: the swap rule needs the old pin covered (it is), and
    ** whatever was committed since waits for the next sync as usual. */
    s->last_full_mx = mx;
    if ((rc = ws_pin_swap(s->pin, err))) return rc;
    s->covered = 0;
  }
  return WS_OK;
}

int ship_maint(ship *s, ws_err *err) {
  int rc = maint(s, 1, err);
  /* The brake took the lock during maint's own checkpoint (its fsync can
  ** stall like an object's): the barrier now, not after the next sync. */
  if (rc == WS_OK && s->pin && ws_pin_brake_held(s->pin, NULL)) rc = maint(s, 0, err);
  return rc;
}
