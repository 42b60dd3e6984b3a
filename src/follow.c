/*
** Follow replicas: keep REPLICA current from a store (walship/follow.h).
**
** Every store object (snapshot or segment) is applied through apply.c — the
** same decoder and checks as restore — into ONE ordinary SQLite write
** transaction on the replica, pages written with
**   INSERT INTO sqlite_dbpage(pgno, data, schema) VALUES (?, ?, 'r')
** so SQLite's own WAL locking and atomic commit decide what readers see: the
** state before the object or the state after it, never a mix.  Invariants:
**   - the replica is attached as schema "r" to an in-memory main database:
**     statements then verify only main's schema cookie, never the replica's,
**     which changes under us mid-transaction as page 1 is overwritten (a
**     re-prepare would read a half-written schema);
**   - size follows the state model: a page written past the end, or a commit
**     that grows the database, zero-fills the gap with explicit pages (stale
**     WAL frames or file bytes must not reappear); a shrink is applied at
**     commit, as the last write (sqlite_dbpage cancels a truncation that is
**     followed by another write);
**   - before each COMMIT, the state file "REPLICA-walship-follow" durably
**     records {committed: the previous position, pending: this one}; after a
**     crash the replica holds one of the two and its recomputed checksum says
**     which.  SQLite rewrites page 1's change counter (bytes 24..27) and
**     version fields (92..99) on commit, so the file also keeps the source's
**     values of those 12 bytes and the checksum is taken with them restored;
**   - a new replica is built under a temp name and renamed into place only
**     when it holds a committed, verified state: readers never see it empty.
*/
#include "common.h"
#include "apply.h"
#include "walship/follow.h"
#include "walship/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATE_SUFFIX "-walship-follow"
#define P1_LEN 12               /* page-1 bytes SQLite rewrites on commit */
#define BACKOFF_MAX_MS 30000
#define IDLE_LOG_MS 60000       /* "still current" line while nothing changes */

/* A position of the replica: which source state it holds. */
typedef struct fpos {
  uint64_t txid;                /* 0 = none */
  uint64_t lineage;
  uint32_t page_size, npages;
  uint64_t dbsum;               /* source state checksum */
  int64_t time_ms;              /* capture time of txid */
  uint8_t p1[P1_LEN];           /* source page 1, bytes 24..27 and 92..99 */
} fpos;

typedef struct follower {
  const ws_follow_opts *o;
  ws_store *st;
  sqlite3 *db;                  /* ":memory:" main, the replica attached as r */
  sqlite3_stmt *put;            /* the sqlite_dbpage INSERT */
  sqlite3_stmt *get;            /* its SELECT of one page (delta bases) */
  char *replica, *state_path, *state_tmp, *init_path;
  fpos committed;               /* last position known to be committed */
  ws_apply a;                   /* state == replica content (when have) */
  int have;                     /* replica open and a holds its state */
  uint32_t page_size;           /* the replica's */
  uint32_t cur_pages;           /* logical size of the state being built */
  uint32_t phys_pages;          /* pages the replica holds in this txn */
  uint32_t begin_pages;         /* ... when the txn began (sqlite_dbpage reads
                                   no page past it: see sink_read) */
  int spill_fd;                 /* unlinked copies of pages past begin_pages
                                   written in this txn; -1 until needed */
  int in_txn;
  uint8_t p1[P1_LEN];           /* source page-1 bytes of the state built */
  uint8_t *zero;                /* one all-zero page */
  uint8_t *pbuf;                /* page-1 scratch for checksums */
  int64_t data_version;         /* PRAGMA r.data_version after our commit */
  int warned_empty, warned_behind;
  const char *crash;            /* test hook, see crash_point */
} follower;

static void p1_take(uint8_t out[P1_LEN], const uint8_t *page) {
  memcpy(out, page + 24, 4);
  memcpy(out + 4, page + 92, 8);
}

static void p1_put(uint8_t *page, const uint8_t p1[P1_LEN]) {
  memcpy(page + 24, p1, 4);
  memcpy(page + 92, p1 + 4, 8);
}

static uint32_t pending_byte_page(uint32_t page_size) {
  return (uint32_t)(0x40000000u / page_size) + 1;
}

/* ------------------------------------------------------------ state file */

static void fmt_pos(char *out, size_t n, const char *tag, const fpos *p) {
  char hex[2 * P1_LEN + 1];
  for (int i = 0; i < P1_LEN; i++) sprintf(hex + 2 * i, "%02x", p->p1[i]);
  snprintf(out, n, "%s %" PRIu64 " %016" PRIx64 " %" PRIu32 " %" PRIu32 " %016" PRIx64
           " %" PRId64 " %s\n", tag, p->txid, p->lineage, p->page_size, p->npages,
           p->dbsum, p->time_ms, hex);
}

static int parse_pos(fpos *p, const char *line, const char *tag) {
  char t[16], hex[2 * P1_LEN + 8];
  memset(p, 0, sizeof(*p));
  if (sscanf(line, "%15s %" SCNu64 " %" SCNx64 " %" SCNu32 " %" SCNu32 " %" SCNx64
             " %" SCNd64 " %30s", t, &p->txid, &p->lineage, &p->page_size, &p->npages,
             &p->dbsum, &p->time_ms, hex) != 8 || strcmp(t, tag) != 0 ||
      strlen(hex) != 2 * P1_LEN)
    return -1;
  for (int i = 0; i < P1_LEN; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1) return -1;
    p->p1[i] = (uint8_t)v;
  }
  return 0;
}

/* Durably replace the state file: temp, fsync, rename, fsync the dir. */
static int state_write(follower *f, const fpos *pending, ws_err *err) {
  char buf[1024 + 512], l1[256], l2[256] = "";
  fmt_pos(l1, sizeof(l1), "committed", &f->committed);
  if (pending) fmt_pos(l2, sizeof(l2), "pending", pending);
  int n = snprintf(buf, sizeof(buf), "walship-follow 1\nstore %s\n%s%s",
                   f->st->url, l1, l2);
  if (n < 0 || (size_t)n >= sizeof(buf))
    return ws_fail(err, WS_EINVAL, "state of %s: store URL too long", f->replica);
  int fd = open(f->state_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ws_fail(err, WS_EIO, "create %s: %s", f->state_tmp, strerror(errno));
  int rc = ws_write_full(fd, buf, (size_t)n, f->state_tmp, err);
  if (!rc) rc = ws_fsync(fd, f->state_tmp, err);
  ws_err ignore = WS_ERR_INIT;
  int crc = ws_close(fd, f->state_tmp, rc ? &ignore : err);
  if (!rc) rc = crc;
  if (!rc && rename(f->state_tmp, f->state_path) != 0)
    rc = ws_fail(err, WS_EIO, "rename %s to %s: %s", f->state_tmp, f->state_path,
                 strerror(errno));
  if (!rc) rc = ws_fsync_dir_of(f->state_path, err);
  return rc;
}

/* WS_ENOTFOUND when there is no state file. */
static int state_read(follower *f, fpos *committed, fpos *pending, int *has_pending,
                      ws_err *err) {
  FILE *fp = fopen(f->state_path, "re");
  if (!fp) {
    if (errno == ENOENT) return WS_ENOTFOUND;
    return ws_fail(err, WS_EIO, "open %s: %s", f->state_path, strerror(errno));
  }
  char l[4][1200];
  int n = 0;
  while (n < 4 && fgets(l[n], sizeof(l[n]), fp)) n++;
  fclose(fp);
  *has_pending = 0;
  char url[1100];
  if (n < 3 || strcmp(l[0], "walship-follow 1\n") != 0 ||
      sscanf(l[1], "store %1099s", url) != 1 || parse_pos(committed, l[2], "committed") ||
      (n == 4 && parse_pos(pending, l[3], "pending")))
    return ws_corrupt(err, "%s: not a walship follow state file (remove it and the "
                      "replica to start over)", f->state_path);
  *has_pending = n == 4;
  if (strcmp(url, f->st->url) != 0)
    return ws_fail(err, WS_EINVAL, "replica %s follows store %s, not %s", f->replica,
                   url, f->st->url);
  return WS_OK;
}

/* ---------------------------------------------------------- the replica */

static int exec(follower *f, const char *sql, ws_err *err) {
  char *msg = NULL;
  if (sqlite3_exec(f->db, sql, NULL, NULL, &msg) == SQLITE_OK) return WS_OK;
  int rc = ws_fail(err, WS_ESQLITE, "%s on replica %s: %s", sql, f->replica,
                   msg ? msg : sqlite3_errmsg(f->db));
  sqlite3_free(msg);
  return rc;
}

static int64_t pragma_int(follower *f, const char *sql) {
  sqlite3_stmt *q = NULL;
  int64_t v = -1;
  if (sqlite3_prepare_v2(f->db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
    v = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  return v;
}

static void db_close(follower *f) {
  sqlite3_finalize(f->put);
  f->put = NULL;
  sqlite3_finalize(f->get);
  f->get = NULL;
  if (f->db) sqlite3_close(f->db);   /* last connection: checkpoints the WAL away */
  f->db = NULL;
  f->in_txn = 0;
}

/* Open path as schema r; create it with page_size when create is set. */
static int db_open(follower *f, const char *path, uint32_t create_ps, ws_err *err) {
  sqlite3_stmt *q = NULL;
  int rc = WS_OK;
  if (sqlite3_open_v2(":memory:", &f->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)
      != SQLITE_OK)
    return ws_fail(err, WS_ENOMEM, "open an in-memory SQLite database");
  sqlite3_busy_timeout(f->db, 10000);
  if (sqlite3_prepare_v2(f->db, "ATTACH ?1 AS r", -1, &q, NULL) != SQLITE_OK ||
      sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_step(q) != SQLITE_DONE)
    rc = ws_fail(err, WS_ESQLITE, "open replica %s: %s", path, sqlite3_errmsg(f->db));
  sqlite3_finalize(q);
  if (rc) goto fail;
  if (create_ps) {
    char sql[128];
    snprintf(sql, sizeof(sql), "PRAGMA r.page_size=%" PRIu32 "; PRAGMA r.journal_mode=WAL",
             create_ps);
    if ((rc = exec(f, sql, err))) goto fail;
  }
  sqlite3_stmt *jm = NULL;
  const char *mode = NULL;
  if (sqlite3_prepare_v2(f->db, "PRAGMA r.journal_mode", -1, &jm, NULL) == SQLITE_OK &&
      sqlite3_step(jm) == SQLITE_ROW)
    mode = (const char *)sqlite3_column_text(jm, 0);
  int wal = mode && strcmp(mode, "wal") == 0;
  sqlite3_finalize(jm);
  if (!wal) {
    rc = ws_fail(err, WS_ENOTWAL, "replica %s is not in WAL mode: readers could see a "
                 "torn state (it was not made by walship follow?)", path);
    goto fail;
  }
  /* FULL: a COMMIT is durable when it returns, which the state file's
  ** pending/committed protocol relies on.  A WAL that was reset keeps at
  ** most 4 MiB on disk. */
  if ((rc = exec(f, "PRAGMA r.synchronous=FULL; PRAGMA r.journal_size_limit=4194304",
                 err)))
    goto fail;
  f->page_size = (uint32_t)pragma_int(f, "PRAGMA r.page_size");
  if (sqlite3_prepare_v2(f->db, "INSERT INTO sqlite_dbpage(pgno, data, schema) "
                         "VALUES (?1, ?2, 'r')", -1, &f->put, NULL) != SQLITE_OK) {
    rc = ws_fail(err, WS_ESQLITE, "prepare the page writer on %s: %s (SQLite built "
                 "without SQLITE_ENABLE_DBPAGE_VTAB?)", path, sqlite3_errmsg(f->db));
    goto fail;
  }
  free(f->zero);
  free(f->pbuf);
  f->zero = NULL;
  f->pbuf = NULL;
  if (!(f->zero = ws_calloc(1, f->page_size, err)) ||
      !(f->pbuf = ws_malloc(f->page_size, err))) {
    rc = WS_ENOMEM;
    goto fail;
  }
  return WS_OK;
fail:
  db_close(f);
  return rc;
}

static int put_page(follower *f, uint32_t pgno, const void *data, ws_err *err) {
  if (!f->in_txn) {
    int rc = exec(f, "BEGIN IMMEDIATE", err);
    if (rc) return rc;
    f->in_txn = 1;
    f->begin_pages = f->phys_pages;
  }
  if (pgno == pending_byte_page(f->page_size)) return WS_OK;  /* never stored */
  if (pgno > f->begin_pages) {
    if (f->spill_fd < 0) {
      const char *dir = getenv("TMPDIR");
      char *path = ws_asprintf(err, "%s/walship-follow-XXXXXX", dir && *dir ? dir : "/tmp");
      if (!path) return WS_ENOMEM;
      f->spill_fd = mkstemp(path);
      int e = errno;
      if (f->spill_fd >= 0) unlink(path);
      free(path);
      if (f->spill_fd < 0)
        return ws_fail(err, WS_EIO, "create a scratch file in %s: %s",
                       dir && *dir ? dir : "/tmp", strerror(e));
    }
    int rc = ws_pwrite_full(f->spill_fd, data, f->page_size,
                            (off_t)(pgno - f->begin_pages - 1) * f->page_size,
                            "follow scratch", err);
    if (rc) return rc;
  }
  sqlite3_bind_int64(f->put, 1, pgno);
  sqlite3_bind_blob(f->put, 2, data, (int)f->page_size, SQLITE_STATIC);
  int src = sqlite3_step(f->put);
  sqlite3_reset(f->put);
  if (src != SQLITE_DONE)
    return ws_fail(err, WS_ESQLITE, "write page %" PRIu32 " of replica %s: %s", pgno,
                   f->replica, sqlite3_errmsg(f->db));
  if (pgno > f->phys_pages) f->phys_pages = pgno;
  return WS_OK;
}

/* Explicit zero pages from+1..to: what the state model says they hold. */
static int zero_fill(follower *f, uint32_t from, uint32_t to, ws_err *err) {
  for (uint32_t p = from + 1; p <= to; p++) {
    int rc = put_page(f, p, f->zero, err);
    if (rc) return rc;
  }
  return WS_OK;
}

static int sink_history(void *ud, const ws_objhdr *h, ws_err *err) {
  follower *f = ud;
  if (h->page_size != f->page_size)
    return ws_fail(err, WS_EVERIFY, "the source's page size changed from %" PRIu32
                   " to %" PRIu32 "; replica %s cannot follow it in place (re-create "
                   "it: remove it and its state file)", f->page_size, h->page_size,
                   f->replica);
  return WS_OK;
}

static int sink_page(void *ud, uint32_t pgno, const uint8_t *data, ws_err *err) {
  follower *f = ud;
  int rc;
  if (pgno > f->cur_pages + 1 && (rc = zero_fill(f, f->cur_pages, pgno - 1, err)))
    return rc;
  if ((rc = put_page(f, pgno, data, err))) return rc;
  if (pgno == 1) p1_take(f->p1, data);
  if (pgno > f->cur_pages) f->cur_pages = pgno;
  return WS_OK;
}

static int sink_txn_end(void *ud, uint64_t txid, uint32_t db_pages, ws_err *err) {
  follower *f = ud;
  int rc;
  if (db_pages > f->cur_pages && (rc = zero_fill(f, f->cur_pages, db_pages, err)))
    return rc;
  f->cur_pages = db_pages;  /* a shrink is cut at commit (commit_object) */
  return WS_OK;
}

/* A delta's base: the page as this transaction has left it so far (SQLite
** shows a connection its own uncommitted writes), with the source's bytes
** of page 1 that SQLite rewrites in the replica put back.  sqlite_dbpage
** bounds reads by the b-tree's page count from the transaction's start, so
** pages this transaction appended come from the scratch copy put_page made
** (every page in begin_pages+1..phys_pages was written in this txn, with
** content or zeros: sink_page and sink_txn_end fill the gaps). */
static int sink_read(void *ud, uint32_t pgno, uint8_t *out, ws_err *err) {
  follower *f = ud;
  memset(out, 0, f->page_size);
  if (pgno == pending_byte_page(f->page_size) || pgno > f->phys_pages) return WS_OK;
  if (f->in_txn && pgno > f->begin_pages) {
    ssize_t n = f->spill_fd < 0 ? 0 :
        ws_pread_full(f->spill_fd, out, f->page_size,
                      (off_t)(pgno - f->begin_pages - 1) * f->page_size,
                      "follow scratch", err);
    if (n < 0) return err->code;
    if ((size_t)n != f->page_size)
      return ws_fail(err, WS_EIO, "follow scratch: page %" PRIu32 " missing", pgno);
    return WS_OK;
  }
  if (!f->get && sqlite3_prepare_v2(f->db, "SELECT data FROM sqlite_dbpage('r') "
                                    "WHERE pgno = ?1", -1, &f->get, NULL) != SQLITE_OK)
    return ws_fail(err, WS_ESQLITE, "prepare the page reader on %s: %s", f->replica,
                   sqlite3_errmsg(f->db));
  sqlite3_bind_int64(f->get, 1, pgno);
  int src = sqlite3_step(f->get);
  if (src == SQLITE_ROW) {
    const void *d = sqlite3_column_blob(f->get, 0);
    int n = sqlite3_column_bytes(f->get, 0);
    if (d && n > 0) memcpy(out, d, (size_t)n < f->page_size ? (size_t)n : f->page_size);
    src = SQLITE_DONE;
  }
  sqlite3_reset(f->get);
  if (src != SQLITE_DONE)
    return ws_fail(err, WS_ESQLITE, "read page %" PRIu32 " of replica %s: %s", pgno,
                   f->replica, sqlite3_errmsg(f->db));
  if (pgno == 1) p1_put(out, f->p1);
  return WS_OK;
}

static const ws_apply_sink follow_sink = {sink_history, sink_page, sink_txn_end,
                                          sink_read};

static void rollback(follower *f) {
  if (f->in_txn) {
    ws_err ignore = WS_ERR_INIT;
    (void)exec(f, "ROLLBACK", &ignore);
  }
  f->in_txn = 0;
}

/*
** Test hook for the two crash windows of the protocol: with
** WALSHIP_FOLLOW_CRASH=state the process dies right after the state file
** names the pending position (before COMMIT), with =commit right after
** COMMIT (before the next state write).  Only once the replica exists.
*/
static void crash_point(const follower *f, const char *where) {
  if (f->crash && f->have && strcmp(f->crash, where) == 0) _exit(70);
}

/* Make the applied object durable: state file first, then COMMIT. */
static int commit_object(follower *f, ws_err *err) {
  fpos np = {f->a.txid, f->a.lineage, f->page_size, f->cur_pages, f->a.s.sum,
             f->a.time_ms, {0}};
  memcpy(np.p1, f->p1, P1_LEN);
  int rc;
  if (!f->in_txn) {           /* nothing to write: the position still moves */
    f->committed = np;
    return state_write(f, NULL, err);
  }
  if (f->phys_pages > f->cur_pages) {
    /* "pgno N, data NULL" truncates to N-1 at commit; it must be the last
    ** write of the transaction (a later write cancels it). */
    sqlite3_bind_int64(f->put, 1, (sqlite3_int64)f->cur_pages + 1);
    sqlite3_bind_null(f->put, 2);
    int src = sqlite3_step(f->put);
    sqlite3_reset(f->put);
    if (src != SQLITE_DONE)
      return ws_fail(err, WS_ESQLITE, "truncate replica %s to %" PRIu32 " pages: %s",
                     f->replica, f->cur_pages, sqlite3_errmsg(f->db));
  }
  if ((rc = state_write(f, &np, err))) return rc;
  crash_point(f, "state");
  if ((rc = exec(f, "COMMIT", err))) return rc;
  crash_point(f, "commit");
  f->in_txn = 0;
  f->committed = np;
  f->phys_pages = f->cur_pages;
  /* PASSIVE never waits for readers; SQLite restarts the WAL on a later
  ** write once it is fully backfilled, so the WAL stays bounded. */
  sqlite3_wal_checkpoint_v2(f->db, "r", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
  f->data_version = pragma_int(f, "PRAGMA r.data_version");
  return WS_OK;
}

/*
** Rebuild the page hashes from the replica and decide which recorded
** position it holds (pending first: it is the newer).  WS_EVERIFY when it
** holds neither: someone else wrote it.
*/
static int load_position(follower *f, ws_err *err) {
  fpos c, p;
  int has_p = 0, rc;
  sqlite3_stmt *q = NULL;
  if ((rc = state_read(f, &c, &p, &has_p, err))) return rc;
  ws_apply_free(&f->a);
  memset(&f->a, 0, sizeof(f->a));
  f->have = 0;
  if ((rc = ws_dbstate_init(&f->a.s, f->page_size, err))) return rc;
  f->a.s_init = 1;
  int have_p1 = 0;
  uint32_t n = 0;
  if (sqlite3_prepare_v2(f->db, "SELECT pgno, data FROM sqlite_dbpage('r')", -1, &q,
                         NULL) != SQLITE_OK)
    return ws_fail(err, WS_ESQLITE, "read replica %s: %s", f->replica, sqlite3_errmsg(f->db));
  int src;
  while ((src = sqlite3_step(q)) == SQLITE_ROW) {
    uint32_t pg = (uint32_t)sqlite3_column_int64(q, 0);
    const void *d = sqlite3_column_blob(q, 1);
    if (sqlite3_column_bytes(q, 1) != (int)f->page_size || !d) {
      rc = ws_corrupt(err, "replica %s: page %" PRIu32 " has %d bytes", f->replica, pg,
                      sqlite3_column_bytes(q, 1));
      break;
    }
    if (pg == 1) {
      memcpy(f->pbuf, d, f->page_size);
      have_p1 = 1;
    } else if ((rc = ws_dbstate_set(&f->a.s, pg, ws_page_hash(pg, d, f->page_size), err))) {
      break;
    }
    n = pg;
  }
  if (!rc && src != SQLITE_DONE)
    rc = ws_fail(err, WS_ESQLITE, "read replica %s: %s", f->replica, sqlite3_errmsg(f->db));
  sqlite3_finalize(q);
  if (rc) return rc;
  if ((rc = ws_dbstate_resize(&f->a.s, n, err))) return rc;
  const fpos *cand[2] = {has_p ? &p : NULL, &c};
  for (int i = 0; i < 2; i++) {
    const fpos *x = cand[i];
    if (!x || !x->txid || x->npages != n || x->page_size != f->page_size || !have_p1)
      continue;
    p1_put(f->pbuf, x->p1);
    if ((rc = ws_dbstate_set(&f->a.s, 1, ws_page_hash(1, f->pbuf, f->page_size), err)))
      return rc;
    if (f->a.s.sum != x->dbsum) continue;
    f->a.page_size = x->page_size;
    f->a.lineage = x->lineage;
    f->a.txid = x->txid;
    f->a.time_ms = x->time_ms;
    snprintf(f->a.prev_name, sizeof(f->a.prev_name), "replica %s at txid %" PRIu64,
             f->replica, x->txid);
    memcpy(f->p1, x->p1, P1_LEN);
    f->committed = *x;
    f->cur_pages = f->phys_pages = n;
    f->have = 1;
    f->data_version = pragma_int(f, "PRAGMA r.data_version");
    return WS_OK;
  }
  char also[48] = "";
  if (has_p) snprintf(also, sizeof(also), " nor txid %" PRIu64, p.txid);
  return ws_fail(err, WS_EVERIFY, "replica %s holds neither txid %" PRIu64 "%s recorded "
                 "in %s (its checksum matches no recorded state): was it written by "
                 "another process? Remove both files to rebuild it", f->replica, c.txid,
                 also, f->state_path);
}

/* ------------------------------------------------------------- applying */

/* Apply plan->v[from..] (v[from] starts a history when fresh), one SQLite
** transaction per object.  On failure the open transaction is rolled back
** and the caller reloads the position from the replica. */
static int apply_plan(follower *f, const ws_plan *plan, size_t from, int fresh,
                      ws_err *err) {
  f->a.sink = &follow_sink;
  f->a.ud = f;
  f->a.target = plan->txid;
  f->a.stop = f->o->stop;
  f->a.stop_msg = "follow stopped";
  for (size_t i = from; i < plan->n; i++) {
    int rc = ws_apply_object(&f->a, f->st, plan->v[i], fresh && i == from, err);
    if (!rc) rc = commit_object(f, err);
    if (rc) {
      rollback(f);
      return rc;
    }
  }
  return WS_OK;
}

static void unlink_db(const char *path) {
  static const char *const sfx[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    char p[4096];
    snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
    unlink(p);
  }
}

/*
** A new replica: build it under a temp name from the newest snapshot and
** what follows, then rename it into place.  The state file is written at
** each commit as usual; a crash before the rename leaves a state file
** without a replica, which the next start discards.
*/
static int create_replica(follower *f, const ws_catalog *cat, ws_err *err) {
  ws_plan plan = {NULL, 0, 0};
  ws_objhdr h;
  int rc;
  if ((rc = ws_plan_build_for(&plan, cat, f->st->url, 0, err)) ||
      (rc = ws_catent_header(&h, f->st, plan.v[0], err)))
    goto out;
  unlink_db(f->init_path);
  memset(&f->committed, 0, sizeof(f->committed));
  if ((rc = db_open(f, f->init_path, h.page_size, err))) goto out;
  f->cur_pages = f->phys_pages = (uint32_t)pragma_int(f, "PRAGMA r.page_count");
  ws_apply_free(&f->a);
  memset(&f->a, 0, sizeof(f->a));
  ws_log(WS_LOG_INFO, "follow", "creating replica %s from %s (txid %" PRIu64 ")",
         f->replica, plan.v[0]->name, plan.txid);
  if ((rc = apply_plan(f, &plan, 0, 1, err))) goto out;
  db_close(f);
  if (rename(f->init_path, f->replica) != 0) {
    rc = ws_fail(err, WS_EIO, "rename %s to %s: %s", f->init_path, f->replica,
                 strerror(errno));
    goto out;
  }
  if ((rc = ws_fsync_dir_of(f->replica, err))) goto out;
  if ((rc = db_open(f, f->replica, 0, err))) goto out;
  rc = load_position(f, err);   /* proves the renamed file by checksum */
out:
  if (rc) {
    db_close(f);
    unlink_db(f->init_path);
    f->have = 0;
  }
  ws_plan_free(&plan);
  return rc;
}

/* Seconds the replica is behind the newest object in the store. */
static double lag_seconds(follower *f, const ws_catalog *cat, uint64_t store_last) {
  for (size_t i = cat->n; i-- > 0;) {
    if (cat->v[i].last != store_last) continue;
    ws_objhdr h;
    ws_err ignore = WS_ERR_INIT;
    if (ws_catent_header(&h, f->st, &cat->v[i], &ignore) != WS_OK || !f->a.time_ms)
      return -1;
    double s = (double)(h.time_last_ms - f->a.time_ms) / 1000.0;
    return s < 0 ? 0 : s;
  }
  return -1;
}

/* One round: list the store and apply whatever is new. */
static int poll_once(follower *f, int *applied, ws_err *err) {
  ws_catalog cat = {NULL, 0}, chain = {NULL, 0};
  ws_plan plan = {NULL, 0, 0};
  uint64_t store_last = 0;
  int rc;
  *applied = 0;
  if ((rc = ws_catalog_load(&cat, f->st, err))) return rc;
  int any_snap = 0;
  for (size_t i = 0; i < cat.n; i++) {
    if (cat.v[i].last > store_last) store_last = cat.v[i].last;
    if (cat.v[i].kind == WS_KIND_SNAPSHOT) any_snap = 1;
  }
  if (!any_snap) {
    if (!f->warned_empty++)
      ws_log(WS_LOG_INFO, "follow", "store %s holds no snapshot yet; waiting", f->st->url);
    goto out;
  }
  if (!f->have) {
    if ((rc = create_replica(f, &cat, err))) goto out;
    *applied = 1;
    ws_log(WS_LOG_INFO, "follow", "replica %s created at txid=%" PRIu64 " lag_txids=%" PRIu64,
           f->replica, f->a.txid, store_last - f->a.txid);
    goto out;
  }
  if (store_last == f->a.txid) goto out;
  uint64_t was = f->a.txid;
  double lag_s = lag_seconds(f, &cat, store_last);
  size_t from = 0;
  int fresh = 0;
  if (store_last > f->a.txid) {
    /* The replica's own position as the plan's "snapshot", real snapshots
    ** left out: a chain from it needs only the segments after it. */
    rc = WS_ENOMEM;
    if (!(chain.v = ws_calloc(cat.n + 1, sizeof(*chain.v), err))) goto out;
    ws_catent *me = &chain.v[chain.n++];
    me->kind = WS_KIND_SNAPSHOT;
    me->first = me->last = f->a.txid;
    snprintf(me->name, sizeof(me->name), "(replica)");
    for (size_t i = 0; i < cat.n; i++)
      if (cat.v[i].kind != WS_KIND_SNAPSHOT) chain.v[chain.n++] = cat.v[i];
    ws_err e2 = WS_ERR_INIT;
    rc = ws_plan_build_for(&plan, &chain, NULL, 0, &e2);
    if (rc == WS_OK && plan.n && plan.v[0] == me && plan.txid == store_last) {
      from = 1;
    } else {
      /* No chain, or one that stops short of the store's newest object (a
      ** snapshot with nothing after it: a new history just began). */
      if (rc == WS_OK)
        snprintf(e2.msg, sizeof(e2.msg), "the segments after it reach txid %" PRIu64
                 ", the store txid %" PRIu64, plan.txid, store_last);
      ws_plan_free(&plan);
      ws_log(WS_LOG_WARN, "follow", "history does not continue from the replica's txid "
             "%" PRIu64 " (%s); applying the newest snapshot", f->a.txid, e2.msg);
      fresh = 1;
    }
  } else {
    fresh = 1;
  }
  if (fresh) {
    ws_objhdr h;
    if ((rc = ws_plan_build_for(&plan, &cat, f->st->url, 0, err)) ||
        (rc = ws_catent_header(&h, f->st, plan.v[0], err)))
      goto out;
    if (h.lineage == f->a.lineage && plan.txid <= f->a.txid) {
      if (!f->warned_behind++)
        ws_log(WS_LOG_WARN, "follow", "store %s reaches txid %" PRIu64 ", behind the "
               "replica's %" PRIu64 "; waiting", f->st->url, plan.txid, f->a.txid);
      goto out;
    }
  }
  size_t nobj = plan.n - from;
  if ((rc = apply_plan(f, &plan, from, fresh, err))) goto out;
  *applied = 1;
  f->warned_behind = 0;
  char lag[32];
  if (lag_s < 0) snprintf(lag, sizeof(lag), "unknown");
  else snprintf(lag, sizeof(lag), "%.1f", lag_s);
  ws_log(WS_LOG_INFO, "follow", "replica txid=%" PRIu64 " applied=%" PRIu64 "-%" PRIu64
         " objects=%zu%s lag_txids=%" PRIu64 " lag_s=%s (behind the store before this "
         "round)", f->a.txid, fresh ? plan.v[0]->first : was + 1, f->a.txid, nobj,
         fresh ? " (snapshot)" : "", store_last > was ? store_last - was : 0, lag);
out:
  ws_plan_free(&plan);
  free(chain.v);
  ws_catalog_free(&cat);
  return rc;
}

/* Another writer committed to the replica?  Re-prove the position. */
static int check_foreign_writes(follower *f, ws_err *err) {
  if (!f->have || pragma_int(f, "PRAGMA r.data_version") == f->data_version)
    return WS_OK;
  ws_log(WS_LOG_WARN, "follow", "replica %s changed outside walship; verifying it",
         f->replica);
  return load_position(f, err);
}

static int retryable(int rc) {
  return rc == WS_ESTORE || rc == WS_ENOTFOUND || rc == WS_EGAP || rc == WS_EEMPTY;
}

static void nap(follower *f, int64_t ms) {
  int64_t end = ws_mono_ms() + ms;
  while (!(f->o->stop && *f->o->stop)) {
    int64_t left = end - ws_mono_ms();
    if (left <= 0) break;
    if (left > 50) left = 50;
    struct timespec ts = {0, (long)left * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* Open an existing replica, or decide to build one. */
static int attach(follower *f, ws_err *err) {
  fpos c, p;
  int has_p, rc;
  struct stat sb;
  int exists = lstat(f->replica, &sb) == 0;
  unlink_db(f->init_path);   /* a creation that never reached its rename */
  rc = state_read(f, &c, &p, &has_p, err);
  if (rc == WS_ENOTFOUND) {
    if (!exists) return WS_OK;
    if (!f->o->force)
      return ws_fail(err, WS_EEXIST, "%s exists and is not a follow replica (no %s); "
                     "use --force to replace it", f->replica, f->state_path);
    ws_log(WS_LOG_WARN, "follow", "replacing %s (--force)", f->replica);
    unlink_db(f->replica);
    return WS_OK;
  }
  if (rc) return rc;
  if (!exists) {
    ws_log(WS_LOG_INFO, "follow", "%s has no replica; building it anew", f->state_path);
    unlink(f->state_path);
    return WS_OK;
  }
  if ((rc = db_open(f, f->replica, 0, err))) return rc;
  if ((rc = load_position(f, err))) return rc;
  ws_log(WS_LOG_INFO, "follow", "resuming replica %s at txid=%" PRIu64 " (checksum "
         "verified)", f->replica, f->a.txid);
  return WS_OK;
}

int ws_follow(const ws_follow_opts *o, ws_err *err) {
  follower f;
  int rc;
  memset(&f, 0, sizeof(f));
  f.spill_fd = -1;
  if (!o || o->version != WS_FOLLOW_OPTS_VERSION || !o->store_url || !o->replica_path ||
      !*o->replica_path)
    return ws_fail(err, WS_EINVAL, "follow: missing store URL or replica path (or "
                   "options version mismatch)");
  f.o = o;
  f.replica = (char *)o->replica_path;
  f.crash = getenv("WALSHIP_FOLLOW_CRASH");
  if ((rc = ws_store_open_ex(&f.st, o->store_url, o->store, err))) return rc;
  rc = WS_ENOMEM;
  if (!(f.state_path = ws_asprintf(err, "%s" STATE_SUFFIX, o->replica_path)) ||
      !(f.state_tmp = ws_asprintf(err, "%s" STATE_SUFFIX ".tmp", o->replica_path)) ||
      !(f.init_path = ws_asprintf(err, "%s.walship-init", o->replica_path)))
    goto out;
  if ((rc = attach(&f, err))) goto out;
  int64_t poll = o->poll_ms > 0 ? o->poll_ms : 1000, backoff = 0;
  int64_t last_log = ws_mono_ms();
  while (!(o->stop && *o->stop)) {
    int applied = 0;
    rc = check_foreign_writes(&f, err);
    if (!rc) rc = poll_once(&f, &applied, err);
    if (rc && o->stop && *o->stop) {   /* an interrupted transfer, whatever its code */
      rc = WS_OK;
      break;
    }
    if (rc && f.have && f.db) {
      /* the page hashes may be ahead of the rolled-back replica */
      ws_err e2 = WS_ERR_INIT;
      if (load_position(&f, &e2) != WS_OK) {
        *err = e2;
        rc = e2.code;
        goto out;
      }
    }
    if (rc && !retryable(rc)) goto out;
    if (rc) {
      backoff = backoff ? backoff * 2 : poll;
      if (backoff > BACKOFF_MAX_MS) backoff = BACKOFF_MAX_MS;
      if (o->once) goto out;
      ws_log(WS_LOG_WARN, "follow", "%s; retrying in %" PRId64 " ms", err->msg, backoff);
      *err = (ws_err)WS_ERR_INIT;
      nap(&f, backoff);
      continue;
    }
    backoff = 0;
    if (applied) last_log = ws_mono_ms();
    else if (ws_mono_ms() - last_log >= IDLE_LOG_MS && f.have) {
      ws_log(WS_LOG_INFO, "follow", "replica txid=%" PRIu64 " lag_txids=0 lag_s=0.0 "
             "(current)", f.a.txid);
      last_log = ws_mono_ms();
    }
    if (o->once) break;
    nap(&f, poll);
  }
  rc = WS_OK;
out:
  rollback(&f);
  db_close(&f);
  ws_apply_free(&f.a);
  free(f.zero);
  free(f.pbuf);
  if (f.spill_fd >= 0) close(f.spill_fd);
  free(f.state_path);
  free(f.state_tmp);
  free(f.init_path);
  ws_store_close(f.st);
  return rc;
}
