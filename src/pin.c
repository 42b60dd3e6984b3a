/*
** The pin: see pin.h for the protocol and docs/DESIGN.md for the proof.
**
** Invariant: after the first successful ws_pin_swap, `held` names a
** connection with an open read transaction, until ws_pin_release/close.
** Every SQLite call result is checked; a failed swap keeps the old pin.
*/
#include "pin.h"
#include "common.h"
#include "wal.h"
#include "wlock.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ws_pin {
  sqlite3 *db[2];
  sqlite3_stmt *read[2];  /* a statement that starts the read transaction */
  int held;               /* connection holding the pin, -1 if none */
  int barrier;            /* connection holding the write lock, -1 if none */
  char *path;
  char *shm_path;
  int shm_fd;
  ws_wlock *wlock;        /* the barrier's write lock, opened on first use */
  int slot0;              /* hint: the WAL was fully backfilled at the pin */
  uint32_t slot0_mx;       /* ... at this frame (mxFrame then) */
  int64_t slot0_ms;        /* ... taken then (monotonic) */
  uint32_t mark_lb;        /* hint: the pin sees at least the frames up to here */
  int clean;              /* taken by a barrier on a fully backfilled WAL:
                             on read-lock 0, everything in the WAL shipped */
};

/* The wal-index locks, bytes of -shm (unix VFS: WAL_WRITE_LOCK 0, CKPT 1,
** READ_LOCK(i) 3 + i, from offset 120). */
#define SHM_LOCK_WRITE 120
#define SHM_LOCK_CKPT 121
#define SHM_LOCK_READ0 123

static int shm_peek(ws_pin *p, uint32_t *mx, uint32_t *nb, uint64_t *cycle);
#define WS_SHM_NREAD 5 /* WAL_NREADER: aReadMark[] of WalCkptInfo */
static int shm_marks(ws_pin *p, uint32_t m[WS_SHM_NREAD]);
static int shm_byte_locked(ws_pin *p, off_t byte);

static int sqlfail(ws_pin *p, sqlite3 *db, int rc, const char *what, ws_err *err) {
  return ws_fail(err, WS_ESQLITE, "%s %s: %s (%d)", what, p->path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
}

static int exec(ws_pin *p, int i, const char *sql, ws_err *err) {
  int rc = sqlite3_exec(p->db[i], sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) return sqlfail(p, p->db[i], rc, sql, err);
  return WS_OK;
}

static int journal_mode(ws_pin *p, int i, char *out, size_t outsz, ws_err *err) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(p->db[i], "PRAGMA main.journal_mode", -1, &st, NULL);
  if (rc != SQLITE_OK) return sqlfail(p, p->db[i], rc, "query journal mode of", err);
  rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    int r = sqlfail(p, p->db[i], rc, "query journal mode of", err);
    sqlite3_finalize(st);
    return r;
  }
  snprintf(out, outsz, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return WS_OK;
}

int ws_pin_shm_replaced(ws_pin *p) {
  struct stat a, b;
  if (p->shm_fd < 0 || fstat(p->shm_fd, &a) != 0) return 0;
  if (stat(p->shm_path, &b) != 0) return errno == ENOENT; /* not a passing NFS error */
  return a.st_ino != b.st_ino || a.st_dev != b.st_dev;
}

int ws_pin_check_wal_mode(ws_pin *p, ws_err *err) {
  char mode[32];
  int i = p->held >= 0 ? 1 - p->held : 0;
  int rc = journal_mode(p, i, mode, sizeof(mode), err);
  if (rc) return rc;
  if (strcmp(mode, "wal") != 0)
    return ws_fail(err, WS_ENOTWAL,
                   "%s is not in WAL mode (journal_mode=%s); switch it once with: "
                   "sqlite3 %s 'PRAGMA journal_mode=WAL'", p->path, mode, p->path);
  return WS_OK;
}

int ws_pin_open(ws_pin **out, const char *db_path, ws_err *err) {
  int rc = WS_OK;
  struct stat stb;
  ws_pin *p = ws_calloc(1, sizeof(*p), err);
  if (!p) return WS_ENOMEM;
  p->held = p->barrier = -1;
  p->shm_fd = -1;
  if (!(p->path = ws_strdup(db_path, err)) ||
      !(p->shm_path = ws_asprintf(err, "%s-shm", db_path))) {
    rc = WS_ENOMEM;
    goto out;
  }
  if (stat(db_path, &stb) != 0) {
    rc = ws_fail(err, errno == ENOENT ? WS_ENOTFOUND : WS_EIO, "database %s: %s",
                 db_path, strerror(errno));
    goto out;
  }
  if (!S_ISREG(stb.st_mode)) {
    rc = ws_fail(err, WS_EINVAL, "database %s is not a regular file", db_path);
    goto out;
  }
  for (int i = 0; i < 2; i++) {
    int r = sqlite3_open_v2(db_path, &p->db[i], SQLITE_OPEN_READWRITE, NULL);
    if (r != SQLITE_OK) {
      rc = sqlfail(p, p->db[i], r, "open", err);
      goto out;
    }
    sqlite3_extended_result_codes(p->db[i], 1);
    sqlite3_busy_timeout(p->db[i], 5000);
    /* We only read: never fold frames into the database behind our back. */
    r = sqlite3_db_config(p->db[i], SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    if (r != SQLITE_OK) {
      rc = sqlfail(p, p->db[i], r, "configure", err);
      goto out;
    }
    sqlite3_wal_autocheckpoint(p->db[i], 0);
    r = sqlite3_prepare_v3(p->db[i], "SELECT 1 FROM sqlite_schema LIMIT 1", -1,
                           SQLITE_PREPARE_PERSISTENT, &p->read[i], NULL);
    if (r != SQLITE_OK) {
      /* "file is not a database" lands here */
      rc = sqlfail(p, p->db[i], r, "read", err);
      goto out;
    }
  }
  if ((rc = ws_pin_check_wal_mode(p, err))) goto out;
  *out = p;
  return WS_OK;
out:
  ws_pin_close(p);
  return rc;
}

void ws_pin_release(ws_pin *p) {
  if (!p) return;
  if (p->barrier >= 0) ws_pin_barrier_abort(p);
  p->clean = 0;
  if (p->held >= 0) {
    sqlite3_exec(p->db[p->held], "COMMIT", NULL, NULL, NULL);
    p->held = -1;
  }
}

void ws_pin_close(ws_pin *p) {
  if (!p) return;
  ws_pin_release(p);
  for (int i = 0; i < 2; i++) {
    sqlite3_finalize(p->read[i]);
    if (p->db[i]) sqlite3_close(p->db[i]);
  }
  ws_wlock_close(p->wlock);
  if (p->shm_fd >= 0) close(p->shm_fd);
  free(p->shm_path);
  free(p->path);
  free(p);
}

/* Begin a read transaction on connection i. */
static int take(ws_pin *p, int i, ws_err *err) {
  int rc;
  if ((rc = exec(p, i, "BEGIN", err))) return rc;
  int r = sqlite3_step(p->read[i]);
  sqlite3_reset(p->read[i]);
  if (r != SQLITE_ROW && r != SQLITE_DONE) {
    rc = sqlfail(p, p->db[i], r, "begin read transaction on", err);
    sqlite3_exec(p->db[i], "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  return WS_OK;
}

int ws_pin_swap(ws_pin *p, ws_err *err) {
  int next = p->held >= 0 ? 1 - p->held : 0;
  int rc;
  if (p->barrier >= 0)
    return ws_fail(err, WS_EINVAL, "pin swap during a barrier");
  /* Peeks before and after the take: the pin sees at least the frames up
  ** to the first's mxFrame, and it is on read-lock 0 if the WAL was fully
  ** backfilled at both with nothing committed in between (a backfill
  ** completing between the take and one peek alone would fake it). */
  uint32_t mx0, nb0, mx, nb, cmx = p->slot0_mx;
  int ok0 = shm_peek(p, &mx0, &nb0, NULL), was_clean = p->clean;
  if ((rc = take(p, next, err))) return rc;  /* old pin still held */
  p->slot0 = ok0 && shm_peek(p, &mx, &nb, NULL) && mx0 == nb0 && mx == nb && mx == mx0;
  /* A clean pin forbids every backfill, so a frame written since shows as
  ** mx > nb (a restart then writes a new cycle that cannot be backfilled
  ** either): the same full WAL at both peeks means nothing was written,
  ** and the new pin is on read-lock 0 with nothing unshipped, clean too. */
  p->clean = was_clean && p->slot0 && mx == cmx;
  p->slot0_mx = p->slot0 ? mx : 0;
  p->slot0_ms = ws_mono_ms();
  if (p->held >= 0 && (rc = exec(p, p->held, "COMMIT", err))) {
    sqlite3_exec(p->db[next], "COMMIT", NULL, NULL, NULL);
    return rc;
  }
  p->held = next;
  p->mark_lb = ok0 ? mx0 : 0;
  return WS_OK;
}

static int read0_guard(ws_pin *p, int type) {
  struct flock fl = {0};
  fl.l_type = (short)type;
  fl.l_whence = SEEK_SET;
  fl.l_start = SHM_LOCK_READ0;
  fl.l_len = 1;
  return fcntl(p->shm_fd, F_OFD_SETLK, &fl);
}

int ws_pin_yield(ws_pin *p, uint32_t mx, int hold_ms, int *yielded, ws_err *err) {
  uint32_t mx0, nb0, mx1, nb1;
  int rc, i = p->held;
  *yielded = 0;
  if (i < 0 || p->barrier >= 0) return ws_fail(err, WS_ERROR, "yield without a pin");
  if (p->shm_fd < 0 && (p->shm_fd = open(p->shm_path, O_RDONLY | O_CLOEXEC)) < 0) return WS_OK;
  /* OFD, not a process lock: SQLite's own POSIX locks on this file in this
  ** process stay untouched, and the two kinds conflict like two processes'. */
  if (read0_guard(p, F_RDLCK) != 0) return WS_OK; /* a backfill runs: not now */
  if (!shm_peek(p, &mx0, &nb0, NULL) || mx0 != mx) { /* unshipped commits: no */
    read0_guard(p, F_UNLCK);
    return WS_OK;
  }
  uint32_t m0[WS_SHM_NREAD], m1[WS_SHM_NREAD];
  int have = shm_marks(p, m0); /* before the COMMIT: a change right after counts */
  if ((rc = exec(p, i, "COMMIT", err))) {
    read0_guard(p, F_UNLCK);
    return rc;
  }
  p->held = -1;
  *yielded = 1;
  /* Wait for the checkpoint to take the slot we let go of.  It then writes
  ** that slot's read mark (READMARK_NOT_USED, or mxSafeFrame on slot 1)
  ** and goes on to wait for read-lock 0, i.e. for this guard: from then on
  ** holding on costs it the rest of hold_ms for nothing (up to 110 ms per
  ** yield, ~2 s per checkpoint in a flood, s10).  So the hold ends at the
  ** first change of any read mark; if the new pin then lands on slot 1 the
  ** checkpoint backfills to it and waits once more, for slot 0, which the
  ** ship loop's usual re-pin gives it.  Not seen when our slot was slot 1
  ** with a current mark (review of s11): the checkpoint writes the same
  ** value back there, and the hold runs its course. */
  int64_t deadline = ws_mono_ms() + hold_ms;
  while (ws_mono_ms() < deadline && ws_pin_app_ckpt_lock(p)) {
    usleep(1000);
    if (have && shm_marks(p, m1) && memcmp(m0, m1, sizeof(m0)) != 0) break;
  }
  /* as in ws_pin_swap: on read-lock 0 only if fully backfilled throughout.
  ** A short busy timeout: while we wait, the guard holds every backfill. */
  int ok0 = shm_peek(p, &mx0, &nb0, NULL);
  sqlite3_busy_timeout(p->db[i], 500);
  rc = take(p, i, err);
  sqlite3_busy_timeout(p->db[i], 5000);
  p->slot0 = rc == WS_OK && ok0 && shm_peek(p, &mx1, &nb1, NULL) && mx0 == nb0 &&
             mx1 == nb1 && mx1 == mx0;
  p->clean = 0;
  p->slot0_mx = p->slot0 ? mx1 : 0;
  p->slot0_ms = ws_mono_ms();
  p->mark_lb = ok0 ? mx0 : 0;
  if (rc == WS_OK) p->held = i;
  read0_guard(p, F_UNLCK); /* after the take: the new pin protects from here */
  return rc;
}

int ws_pin_checkpoint(ws_pin *p, int *nlog, int *nckpt, ws_err *err) {
  int i = p->held >= 0 ? 1 - p->held : 0;
  int r = sqlite3_wal_checkpoint_v2(p->db[i], "main", SQLITE_CHECKPOINT_PASSIVE,
                                    nlog, nckpt);
  if ((r & 0xff) == SQLITE_BUSY || (r & 0xff) == SQLITE_LOCKED) {
    *nlog = *nckpt = -1;
    return WS_OK;
  }
  if (r != SQLITE_OK) return sqlfail(p, p->db[i], r, "checkpoint", err);
  return WS_OK;
}

int ws_pin_barrier_begin(ws_pin *p, int wait_ms, ws_err *err) {
  int i = p->held >= 0 ? 1 - p->held : 0, rc;
  if (p->held < 0 || p->barrier >= 0)
    return ws_fail(err, WS_EINVAL, "barrier without a pin");
  if (!p->wlock && (rc = ws_wlock_open(&p->wlock, p->shm_path, err))) return rc;
  if ((rc = ws_wlock_acquire(p->wlock, wait_ms, err))) {
    if (rc == WS_ELOCKED) return ws_fail(err, WS_ELOCKED, "%s: write lock busy", p->path);
    return rc;
  }
  /* No write transaction can be open now (we hold its lock), so this read
  ** transaction sees the WAL's final end; it becomes the pin in end(). */
  if ((rc = take(p, i, err))) {
    ws_wlock_release(p->wlock);
    return rc;
  }
  p->barrier = i;
  return WS_OK;
}

void ws_pin_brake_arm(ws_pin *p, uint32_t limit_mx, int hold_ms) {
  ws_err e = WS_ERR_INIT;
  if (!p->wlock && ws_wlock_open(&p->wlock, p->shm_path, &e)) {
    ws_log(WS_LOG_DEBUG, "pin", "no write brake: %s", e.msg);
    return;
  }
  ws_wlock_arm(p->wlock, limit_mx, hold_ms);
}

int ws_pin_brake_held(ws_pin *p, int64_t *since_ms) {
  return p->wlock && p->barrier < 0 && ws_wlock_braked(p->wlock, since_ms);
}

int ws_pin_brake_off(ws_pin *p, int64_t *since_ms, unsigned *expired) {
  if (expired) *expired = 0;
  return p->wlock && ws_wlock_disarm(p->wlock, since_ms, expired) && p->barrier < 0;
}

void ws_pin_brake_release(ws_pin *p) {
  if (p->wlock && p->barrier < 0) ws_wlock_release(p->wlock);
}

void ws_pin_barrier_abort(ws_pin *p) {
  if (p->barrier < 0) return;
  sqlite3_exec(p->db[p->barrier], "ROLLBACK", NULL, NULL, NULL);
  p->barrier = -1;
  ws_wlock_release(p->wlock);
}

int ws_pin_barrier_end(ws_pin *p, int *nlog, int *nckpt, ws_err *err) {
  int x = p->barrier, y = p->held, rc;
  if (x < 0 || y < 0) return ws_fail(err, WS_EINVAL, "no barrier");
  /* x holds a read transaction at the WAL's end and we hold the write
  ** lock: x is the pin now, and no frame can be appended. */
  if ((rc = exec(p, y, "COMMIT", err))) {
    ws_pin_barrier_abort(p);
    return rc;
  }
  p->held = x;
  /* The app's own autocheckpoint may hold the checkpoint lock (it commits,
  ** then checkpoints without the write lock): wait for it, briefly.  Only
  ** ~30 ms: an app's RESTART/TRUNCATE takes the checkpoint lock and then
  ** waits for the write lock we hold, so neither moves until we give up
  ** (500 ms held writers ~550 ms per barrier for nothing, review of s9). */
  int r;
  for (int tries = 0;; tries++) {
    r = sqlite3_wal_checkpoint_v2(p->db[y], "main", SQLITE_CHECKPOINT_PASSIVE, nlog, nckpt);
    if (((r & 0xff) != SQLITE_BUSY && (r & 0xff) != SQLITE_LOCKED) || tries >= 30) break;
    usleep(1000);
  }
  if ((r & 0xff) == SQLITE_BUSY || (r & 0xff) == SQLITE_LOCKED) {
    *nlog = *nckpt = -1;
  } else if (r != SQLITE_OK) {
    rc = sqlfail(p, p->db[y], r, "checkpoint", err);
  }
  /* Re-pin on y (slot 0 when the backfill completed), then drop x.  We
  ** hold the write lock: the WAL's end cannot move under the peek. */
  uint32_t mx, nb, lb = shm_peek(p, &mx, &nb, NULL) ? mx : 0;
  int r2 = take(p, y, err);
  sqlite3_exec(p->db[x], "ROLLBACK", NULL, NULL, NULL);
  p->barrier = -1;
  ws_wlock_release(p->wlock);
  /* If y could not be pinned there is no pin now: the caller must treat
  ** the pin as lost and re-attach (which re-proves continuity). */
  p->held = r2 == WS_OK ? y : -1;
  p->mark_lb = lb;
  p->slot0 = *nlog >= 0 && *nlog == *nckpt;
  /* Not a hint here: under the write lock, with the backfill complete and
  ** no checkpoint left with anything to backfill, the take found nBackfill
  ** == mxFrame and chose read-lock 0; and the caller shipped every frame
  ** before end, so the WAL holds nothing unshipped. */
  p->clean = p->slot0 && r2 == WS_OK;
  p->slot0_mx = p->slot0 ? (uint32_t)*nlog : 0;
  p->slot0_ms = ws_mono_ms();
  return rc ? rc : r2;
}

int ws_pin_held(const ws_pin *p) { return p->held >= 0; }

/* The wal-index lock bytes start at offset 120 of -shm (unix VFS):
** 120 WRITE, 121 CKPT, 122 RECOVER, 123.. READ(i).  POSIX locks held by
** our own process are never reported by F_GETLK, so a hit is the app;
** our own OFD locks would be (pid -1): the barrier's write lock is never
** probed while held, nor is ws_pin_yield's guard on READ(0). */

int ws_pin_app_ckpt_lock(ws_pin *p) {
  if (p->shm_fd < 0) {
    p->shm_fd = open(p->shm_path, O_RDONLY | O_CLOEXEC);
    if (p->shm_fd < 0) return 0;
  }
  return shm_byte_locked(p, SHM_LOCK_CKPT);
}

static int shm_byte_locked(ws_pin *p, off_t byte) {
  struct flock fl = {0};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  if (fcntl(p->shm_fd, F_GETLK, &fl) != 0) return 0;
  return fl.l_type != F_UNLCK;
}

/* A blocking checkpoint (FULL/RESTART/TRUNCATE) holds the checkpoint lock
** AND the write lock while it waits for readers.  The app's PASSIVE
** autocheckpoints (run after each commit once the WAL is past its
** threshold) hold only the checkpoint lock and never wait for us, so they
** must not count: they would turn every commit into an early sync.
** The tests are not atomic: a fast writer's autocheckpoint at the first
** and its next transaction at the second looked like both held (once in
** ~25 blob floods).  A blocking checkpoint that waits for our reader holds
** both, so: the write lock before and after the checkpoint lock, and the
** WAL unchanged across.  That narrows the window, it does not close it (a
** peek between a commit's header update and its unlock; one connection's
** PASSIVE checkpoint next to another's open transaction): still a hint,
** and the caller's drain stops when the WAL grows. */
int ws_pin_ckpt_locked(ws_pin *p) {
  uint32_t mx0, mx1, nb;
  return shm_peek(p, &mx0, &nb, NULL) && shm_byte_locked(p, SHM_LOCK_WRITE) &&
         ws_pin_app_ckpt_lock(p) && shm_byte_locked(p, SHM_LOCK_WRITE) &&
         shm_peek(p, &mx1, &nb, NULL) && mx1 == mx0;
}

int ws_pin_slot0(const ws_pin *p) { return p->slot0; }

int ws_pin_clean(const ws_pin *p) { return p->held >= 0 && p->clean; }

int ws_pin_waits_on_writes(const ws_pin *p, uint32_t mx, uint32_t nb) {
  if (p->held < 0) return 0;
  /* on read-lock 0, nothing committed since: RESTART does not wait for it */
  if (p->slot0) return p->slot0_mx == mx && nb == mx;
  /* On slot >= 1 (which freezes the cycle: mark_lb <= mark <= mx), a
  ** checkpoint first waits for readers whose mark is below mxFrame, before
  ** it writes anything: only a pin at the end qualifies, with frames up
  ** to it still to backfill (the writes that wake us). */
  return p->mark_lb == mx && nb < mx;
}

int ws_pin_slot0_since(const ws_pin *p, uint32_t *mx, int64_t *ms) {
  *mx = p->slot0_mx;
  *ms = p->slot0_ms;
  return p->slot0;
}

int ws_pin_shm_peek(ws_pin *p, uint32_t *mx, uint32_t *nb) { return shm_peek(p, mx, nb, NULL); }

int ws_pin_shm_peek_cycle(ws_pin *p, uint32_t *mx, uint32_t *nb, uint64_t *cycle) {
  return shm_peek(p, mx, nb, cycle);
}

/* cycle may be NULL */
static int shm_peek(ws_pin *p, uint32_t *mx, uint32_t *nb, uint64_t *cycle) {
  if (p->shm_fd < 0) {
    p->shm_fd = open(p->shm_path, O_RDONLY | O_CLOEXEC);
    if (p->shm_fd < 0) return 0;
  }
  return ws_walidx_peek(p->shm_fd, mx, nb, cycle);
}

/* WalCkptInfo starts at 96: nBackfill, then aReadMark[5] at 100. */
static int shm_marks(ws_pin *p, uint32_t m[WS_SHM_NREAD]) {
  if (p->shm_fd < 0) return 0;
  return pread(p->shm_fd, m, WS_SHM_NREAD * 4, 100) == WS_SHM_NREAD * 4;
}
