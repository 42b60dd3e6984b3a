/*
** Restore: rebuild a database file from a store, and list a store (ls).
**
** A restore follows the plan of names.c (one snapshot, then contiguous
** segments), streaming every object through apply.c (decoder + checks)
** straight into a hidden temp file next to the output:
**   ".OUT.walship-restore-PID"  --(verified)-->  rename over OUT
** Invariants:
**   - OUT is touched only by the final rename; on any failure or stop the
**     temp (and its -wal/-shm) is unlinked, so no half-written database is
**     ever left behind.  A stale OUT-wal/-shm is refused without --force,
**     because SQLite would replay it into the restored file;
**   - every page is applied only after its block's crc32 was checked (the
**     decoder guarantees it), every transaction end carrying a state
**     checksum is compared with the rebuilt state, objects must chain:
**     same page size and lineage, segment dbsum_before == current state;
**   - memory is the decoder's bounded buffers, a 1 MiB write-combining
**     buffer, and the 8-byte-per-page ws_dbstate; nothing else grows with
**     the database.
*/
#include "common.h"
#include "apply.h"
#include "codec.h"
#include "names.h"
#include "prefetch.h"
#include "pagehash.h"
#include "walship/store.h"

#include <errno.h>
#include <signal.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WBUF_SIZE (1u << 20)   /* write-combining buffer for page runs */
#define PREFETCH_CAP (8u << 20) /* bytes downloaded ahead of the apply */

/* The file sink of ws_apply: pages into the temp file, write-combined. */
typedef struct rctx {
  const char *tmp;             /* temp database path */
  int fd;
  uint32_t page_size;          /* set when the snapshot header arrives */
  uint32_t file_pages;         /* pages the temp file may hold content for */
  /* write combining: a run of consecutive pages starting at wb_pgno */
  uint8_t *wb;
  uint32_t wb_pgno, wb_n;
  uint64_t dirty;              /* bytes written since the last writeback start */
  int kick;                    /* start writeback as we go (the snapshot only) */
  /* progress reporting (opts->progress) */
  const ws_restore_opts *o;
  const ws_apply *a;
  ws_restore_progress p;
} rctx;

static int wb_flush(rctx *c, ws_err *err) {
  if (!c->wb_n) return WS_OK;
  off_t off = (off_t)(c->wb_pgno - 1) * c->page_size;
  size_t n = (size_t)c->wb_n * c->page_size;
  int rc = ws_pwrite_full(c->fd, c->wb, n, off, c->tmp, err);
  c->wb_n = 0;
  /* The disk writes the snapshot while the rest of it downloads, inflates
  ** and verifies (a plain `cp` + fsync pays both in turn).  Not the
  ** segments: they rewrite the same pages (page 1, roots, hot leaves) over
  ** and over, and a page under writeback must wait for it before it is
  ** written again: a 100 MB database with 250 segments of rewrites took
  ** 0.26 -> 0.55 s to restore with writeback started throughout (s15).
  ** (ws_restore decides, per plan.) */
  if (rc == WS_OK && c->kick) ws_writeback_kick(c->fd, &c->dirty, n);
  return rc;
}

static int file_history(void *ud, const ws_objhdr *h, ws_err *err) {
  rctx *c = ud;
  c->page_size = h->page_size;
  return WS_OK;
}

static int file_page(void *ud, uint32_t pgno, const uint8_t *data, ws_err *err) {
  rctx *c = ud;
  int rc;
  if (c->wb_n && (pgno != c->wb_pgno + c->wb_n ||
                  (size_t)(c->wb_n + 1) * c->page_size > WBUF_SIZE)) {
    if ((rc = wb_flush(c, err))) return rc;
  }
  if (!c->wb_n) c->wb_pgno = pgno;
  memcpy(c->wb + (size_t)c->wb_n * c->page_size, data, c->page_size);
  c->wb_n++;
  if (pgno > c->file_pages) c->file_pages = pgno;
  return WS_OK;
}

static int file_txn_end(void *ud, uint64_t txid, uint32_t db_pages, ws_err *err) {
  rctx *c = ud;
  int rc;
  if (db_pages < c->file_pages) {
    /* The database shrank: cut the file now, so pages that grow back later
    ** read as zeros, as the state model (and SQLite) expects. */
    if ((rc = wb_flush(c, err))) return rc;
    if (ftruncate(c->fd, (off_t)db_pages * c->page_size) != 0)
      return ws_fail(err, WS_EIO, "truncate %s: %s", c->tmp, strerror(errno));
    c->file_pages = db_pages;
  }
  return WS_OK;
}

/* A delta's base: the write-combining buffer, else the file (a page past
** its end, or in a hole, reads as zeros: the state model's zero pages). */
static int file_read(void *ud, uint32_t pgno, uint8_t *out, ws_err *err) {
  rctx *c = ud;
  if (c->wb_n && pgno >= c->wb_pgno && pgno - c->wb_pgno < c->wb_n) {
    memcpy(out, c->wb + (size_t)(pgno - c->wb_pgno) * c->page_size, c->page_size);
    return WS_OK;
  }
  ssize_t n = ws_pread_full(c->fd, out, c->page_size,
                            (off_t)(pgno - 1) * c->page_size, c->tmp, err);
  if (n < 0) return err->code;
  memset(out + n, 0, c->page_size - (size_t)n);
  return WS_OK;
}

static const ws_apply_sink file_sink = {file_history, file_page, file_txn_end,
                                        file_read};

static void report(rctx *c, uint64_t bytes) {
  c->p.bytes_done = bytes;
  c->p.txid = c->a->txid;
  c->o->progress(c->o->progress_ud, &c->p);
}

static void on_bytes(void *ud, uint64_t bytes) { report(ud, bytes); }

/* ws_apply.get through the prefetcher: object i of the plan. */
typedef struct pfget {
  ws_prefetch *pf;
  size_t i;
} pfget;

static int pf_get(void *gud, const ws_catent *obj, ws_sink_fn sink, void *ud, ws_err *err) {
  pfget *g = gud;
  return ws_prefetch_get(g->pf, g->i, sink, ud, err);
}

/* PRAGMA integrity_check on the temp file; it must answer exactly "ok". */
static int integrity_check(const char *path, const char *out, ws_err *err) {
  sqlite3 *db = NULL;
  sqlite3_stmt *q = NULL;
  int rc = WS_OK;
  int src = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
  if (src != SQLITE_OK) {
    rc = ws_fail(err, WS_ESQLITE, "open %s (restoring %s) for integrity check: %s", path, out,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
    goto out;
  }
  src = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL);
  if (src == SQLITE_OK) src = sqlite3_step(q);
  if (src == SQLITE_ROW) {
    const char *msg = (const char *)sqlite3_column_text(q, 0);
    if (!msg || strcmp(msg, "ok") != 0 || sqlite3_step(q) != SQLITE_DONE)
      rc = ws_fail(err, WS_EVERIFY, "integrity check of restored %s failed: %s",
                   out, msg ? msg : "(null)");
  } else {
    int ec = sqlite3_errcode(db);
    rc = ws_fail(err, ec == SQLITE_CORRUPT || ec == SQLITE_NOTADB ? WS_EVERIFY
                 : WS_ESQLITE, "integrity check of restored %s (temp %s): %s",
                 out, path, sqlite3_errmsg(db));
  }
out:
  sqlite3_finalize(q);
  /* close_v2 runs the last-connection checkpoint that removes -wal/-shm */
  if (db && sqlite3_close(db) != SQLITE_OK && rc == WS_OK)
    rc = ws_fail(err, WS_ESQLITE, "close %s: %s", path, sqlite3_errmsg(db));
  return rc;
}

/* Remove PATH-wal and PATH-shm; missing is fine. */
static int unlink_sidecars(const char *path, ws_err *err) {
  static const char *const sfx[] = {"-wal", "-shm"};
  for (int i = 0; i < 2; i++) {
    char *p = ws_asprintf(err, "%s%s", path, sfx[i]);
    if (!p) return WS_ENOMEM;
    int bad = unlink(p) != 0 && errno != ENOENT;
    int rc = bad ? ws_fail(err, WS_EIO, "remove %s: %s", p, strerror(errno)) : WS_OK;
    free(p);
    if (rc) return rc;
  }
  return WS_OK;
}

/* Refuse an existing OUT, OUT-wal or OUT-shm unless forced. */
static int check_output(const char *out, int force, ws_err *err) {
  struct stat sb;
  if (lstat(out, &sb) == 0) {
    if (!force)
      return ws_fail(err, WS_EEXIST, "output %s exists (use --force to overwrite)", out);
    if (S_ISDIR(sb.st_mode))
      return ws_fail(err, WS_EEXIST, "output %s is a directory", out);
  }
  if (force) return WS_OK;
  static const char *const sfx[] = {"-wal", "-shm"};
  for (int i = 0; i < 2; i++) {
    char *p = ws_asprintf(err, "%s%s", out, sfx[i]);
    if (!p) return WS_ENOMEM;
    int exists = lstat(p, &sb) == 0;
    int rc = exists ? ws_fail(err, WS_EEXIST, "%s exists next to the output; SQLite "
                              "would apply it to the restored database (use --force "
                              "to remove it)", p) : WS_OK;
    free(p);
    if (rc) return rc;
  }
  return WS_OK;
}

/* ".BASE.walship-restore-PID" in OUT's directory. */
/* Temp files of restores to the same output that were killed (their PID is
** gone) would otherwise stay forever, up to the database's size each: a
** restore removes them before it starts.  Only names of exactly our form
** for this output, and only when kill(pid, 0) says no such process. */
static void remove_stale_temps(const char *out) {
  const char *slash = strrchr(out, '/');
  const char *base = slash ? slash + 1 : out;
  char *dir = slash ? strndup(out, (size_t)(slash - out + 1)) : strdup("./");
  char prefix[512];
  snprintf(prefix, sizeof(prefix), ".%s.walship-restore-", base);
  DIR *d = dir ? opendir(dir) : NULL;
  struct dirent *de;
  size_t pl = strlen(prefix);
  while (d && (de = readdir(d))) {
    if (strncmp(de->d_name, prefix, pl) != 0) continue;
    char *end;
    long pid = strtol(de->d_name + pl, &end, 10);
    if (end == de->d_name + pl || pid <= 0 ||
        (*end && strcmp(end, "-wal") && strcmp(end, "-shm") && strcmp(end, "-journal")))
      continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    char path[4096];
    snprintf(path, sizeof(path), "%s%s", dir, de->d_name);
    if (unlink(path) == 0)
      ws_log(WS_LOG_INFO, "restore", "removed %s, left by a restore that was killed", path);
  }
  if (d) closedir(d);
  free(dir);
}

static char *temp_name(const char *out, ws_err *err) {
  const char *slash = strrchr(out, '/');
  int dirlen = slash ? (int)(slash - out + 1) : 0;
  return ws_asprintf(err, "%.*s.%s.walship-restore-%ld", dirlen, out,
                     slash ? slash + 1 : out, (long)getpid());
}

static void fill_info(ws_objinfo *o, const ws_catent *e, const ws_objhdr *h) {
  snprintf(o->name, sizeof(o->name), "%s", e->name);
  o->kind = e->kind;
  o->txid_first = e->first;
  o->txid_last = e->last;
  o->size = e->size;
  if (!h) return;
  o->page_size = h->page_size;
  o->db_pages = h->db_pages;
  o->ntxn = h->ntxn;
  o->time_first_ms = h->time_first_ms;
  o->time_last_ms = h->time_last_ms;
}

/* Open, list, and turn the options' target (TXID or time) into a TXID. */
static int resolve_target(uint64_t *txid, ws_store *st, const ws_catalog *cat,
                          const ws_restore_opts *o, ws_err *err) {
  *txid = o->target_txid;
  if (o->target_time_ms && o->target_txid)
    return ws_fail(err, WS_EINVAL, "give a target TXID or a time, not both");
  if (!o->target_time_ms) return WS_OK;
  int rc = ws_catalog_txid_at(txid, st, cat, o->target_time_ms, err);
  if (rc == WS_OK)
    ws_log(WS_LOG_INFO, "restore", "time resolves to txid=%" PRIu64, *txid);
  return rc;
}

int ws_restore(ws_restore_result *res, const ws_restore_opts *opts, ws_err *err) {
  ws_store *st = NULL;
  ws_catalog cat = {NULL, 0};
  ws_plan plan = {NULL, 0, 0};
  rctx c;
  ws_apply a;
  pfget pg = {NULL, 0};
  memset(&c, 0, sizeof(c));
  memset(&a, 0, sizeof(a));
  c.fd = -1;
  char *tmp = NULL;
  int rc;

  if (!opts || opts->version != WS_RESTORE_OPTS_VERSION || !opts->store_url ||
      !opts->out_path || !*opts->out_path)
    return ws_fail(err, WS_EINVAL, "restore: missing store URL or output path "
                   "(or options version mismatch)");
  const char *out = opts->out_path;
  if ((rc = ws_store_open_ex(&st, opts->store_url, opts->store, err))) return rc;
  if ((rc = ws_catalog_load(&cat, st, err))) goto out;
  if (cat.n == 0 && opts->if_replica_exists) {
    /* Not a failure the user must read about: the caller asked for this. */
    err->code = rc = WS_EEMPTY;
    err->msg[0] = '\0';
    goto out;
  }
  /* Before any download: refusing late would waste the whole transfer. */
  if ((rc = check_output(out, opts->force, err))) goto out;
  uint64_t target;
  if ((rc = resolve_target(&target, st, &cat, opts, err))) goto out;
  if ((rc = ws_plan_build_for(&plan, &cat, st->url, target, err))) goto out;
  ws_log(WS_LOG_DEBUG, "restore", "plan objects=%zu from=%s txid=%" PRIu64,
         plan.n, plan.v[0]->name, plan.txid);

  rc = WS_ENOMEM;
  remove_stale_temps(out);
  if (!(tmp = temp_name(out, err)) || !(c.wb = ws_malloc(WBUF_SIZE, err))) goto out;
  c.tmp = tmp;
  c.fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (c.fd < 0) {
    rc = ws_fail(err, WS_EIO, "create %s: %s", tmp, strerror(errno));
    free(tmp);
    tmp = NULL;   /* not ours: do not unlink it */
    goto out;
  }
  a.sink = &file_sink;
  a.ud = &c;
  a.target = plan.txid;
  a.stop = opts->stop;
  a.stop_msg = "restore interrupted; nothing written to the output";
  c.o = opts;
  c.a = &a;
  if (opts->progress) {
    a.on_bytes = on_bytes;
    c.p.objects_total = plan.n;
    for (size_t i = 0; i < plan.n; i++) c.p.bytes_total += plan.v[i]->size;
    report(&c, 0);
  }
  /* With more than one object, the next ones download while one applies. */
  if (plan.n > 1) {
    ws_err perr = WS_ERR_INIT;
    if (ws_prefetch_start(&pg.pf, opts->store_url, opts->store, plan.v, plan.n,
                          PREFETCH_CAP, &perr) == WS_OK) {
      a.get = pf_get;
      a.get_ud = &pg;
    } else {
      ws_log(WS_LOG_DEBUG, "restore", "no prefetch: %s", perr.msg);
    }
  }
  /* Writeback during the snapshot only when the segments after it are
  ** small next to it: each page they rewrite is then written twice (a
  ** 100 MB snapshot under 100 MB of rewrites: 0.26 -> 0.30 s). */
  uint64_t seg_bytes = 0;
  for (size_t i = 1; i < plan.n; i++) seg_bytes += plan.v[i]->size;
  size_t applied = 0;
  for (size_t i = 0; i < plan.n; i++, applied++) {
    pg.i = i;
    if (i == 1 && c.kick) { /* the snapshot's writeback ends before segments rewrite its pages */
      if ((rc = wb_flush(&c, err))) goto out;
      (void)sync_file_range(c.fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                        SYNC_FILE_RANGE_WAIT_AFTER);
    }
    c.kick = i == 0 && seg_bytes * 4 < plan.v[0]->size;
    if ((rc = ws_apply_object(&a, st, plan.v[i], i == 0, err))) goto out;
    c.p.objects_done = i + 1;
    if (a.stopped) { applied++; break; }
  }
  if (a.txid != plan.txid) {
    rc = ws_corrupt(err, "restore reached txid %" PRIu64 " instead of %" PRIu64
                    " (last object %s)", a.txid, plan.txid, a.prev_name);
    goto out;
  }
  if ((rc = wb_flush(&c, err))) goto out;
  if (ftruncate(c.fd, (off_t)a.s.npages * c.page_size) != 0) {
    rc = ws_fail(err, WS_EIO, "truncate %s: %s", tmp, strerror(errno));
    goto out;
  }
  if ((rc = ws_fsync(c.fd, tmp, err))) goto out;
  int fd = c.fd;
  c.fd = -1;
  if ((rc = ws_close(fd, tmp, err))) goto out;
  if (!opts->skip_integrity_check && (rc = integrity_check(tmp, out, err))) goto out;
  if ((rc = unlink_sidecars(tmp, err))) goto out;
  if (opts->stop && *opts->stop) {
    rc = ws_fail(err, WS_ESTOPPED, "restore interrupted; nothing written to the output");
    goto out;
  }
  if (opts->force && (rc = unlink_sidecars(out, err))) goto out;
  /* Without --force, never replace an OUT that appeared meanwhile. */
  int r = opts->force ? rename(tmp, out)
                      : renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_NOREPLACE);
  if (r != 0 && !opts->force && errno == EINVAL) {   /* fs without NOREPLACE */
    struct stat sb;
    r = lstat(out, &sb) == 0 ? (errno = EEXIST, -1) : rename(tmp, out);
  }
  if (r != 0) {
    rc = errno == EEXIST
        ? ws_fail(err, WS_EEXIST, "output %s exists (use --force to overwrite)", out)
        : ws_fail(err, WS_EIO, "rename %s to %s: %s", tmp, out, strerror(errno));
    goto out;
  }
  free(tmp);
  tmp = NULL;   /* renamed: nothing left to clean up */
  if ((rc = ws_fsync_dir_of(out, err))) goto out;

  ws_restore_result r0 = {a.txid, c.page_size, a.s.npages, applied, a.bytes, a.s.sum};
  ws_log(WS_LOG_INFO, "restore", "restored %s txid=%" PRIu64 " pages=%" PRIu32
         " page_size=%" PRIu32 " objects=%" PRIu64 " bytes=%" PRIu64, out,
         r0.txid, r0.db_pages, r0.page_size, r0.objects, r0.bytes_downloaded);
  if (res) *res = r0;
  if (opts->progress) {
    c.p.done = 1;
    report(&c, a.bytes);
  }
out:
  if (c.fd >= 0) close(c.fd);  /* failure path: the file is discarded */
  if (tmp) {
    unlink(tmp);
    ws_err ignore = WS_ERR_INIT;
    (void)unlink_sidecars(tmp, &ignore);
    free(tmp);
  }
  ws_prefetch_free(pg.pf);
  ws_apply_free(&a);
  free(c.wb);
  ws_plan_free(&plan);
  ws_catalog_free(&cat);
  ws_store_close(st);
  return rc;
}

/* ------------------------------------------------------------------ ls */

int ws_restore_plan(ws_objinfo **out, size_t *n, uint64_t *txid,
                    const ws_restore_opts *opts, ws_err *err) {
  ws_store *st = NULL;
  ws_catalog cat = {NULL, 0};
  ws_plan plan = {NULL, 0, 0};
  ws_objinfo *v = NULL;
  uint64_t target;
  int rc;
  if (!opts || opts->version != WS_RESTORE_OPTS_VERSION || !opts->store_url)
    return ws_fail(err, WS_EINVAL, "restore plan: missing store URL");
  if ((rc = ws_store_open_ex(&st, opts->store_url, opts->store, err))) return rc;
  if ((rc = ws_catalog_load(&cat, st, err)) ||
      (rc = resolve_target(&target, st, &cat, opts, err)) ||
      (rc = ws_plan_build_for(&plan, &cat, st->url, target, err)))
    goto out;
  rc = WS_ENOMEM;
  if (!(v = ws_calloc(plan.n, sizeof(*v), err))) goto out;
  for (size_t i = 0; i < plan.n; i++) {
    ws_objhdr h;
    if ((rc = ws_catent_header(&h, st, plan.v[i], err))) goto out;
    fill_info(&v[i], plan.v[i], &h);
  }
  *out = v;
  *n = plan.n;
  *txid = plan.txid;
  v = NULL;
  rc = WS_OK;
out:
  free(v);
  ws_plan_free(&plan);
  ws_catalog_free(&cat);
  ws_store_close(st);
  return rc;
}

int ws_ls(ws_objinfo **out, size_t *n, const char *store_url,
          const ws_store_opts *so, ws_err *err) {
  ws_store *st = NULL;
  ws_catalog cat = {NULL, 0};
  ws_objinfo *v = NULL;
  int rc = ws_store_open_ex(&st, store_url, so, err);
  if (rc) return rc;
  if ((rc = ws_catalog_load(&cat, st, err))) goto out;
  rc = WS_ENOMEM;
  if (!(v = ws_calloc(cat.n, sizeof(*v), err))) goto out;
  for (size_t i = 0; i < cat.n; i++) {
    const ws_catent *e = &cat.v[i];
    ws_objhdr h;
    ws_err herr = WS_ERR_INIT;
    fill_info(&v[i], e, NULL);
    if ((rc = ws_catent_header(&h, st, e, &herr))) {
      if (rc == WS_ENOTFOUND) continue;   /* deleted since listing: keep name */
      if (rc != WS_ECORRUPT) {
        *err = herr;
        goto out;
      }
      /* One bad object must not hide the rest of the store: show what its
      ** name says (page_size 0 marks the header as unreadable). */
      ws_log(WS_LOG_WARN, "ls", "%s", herr.msg);
      continue;
    }
    fill_info(&v[i], e, &h);
  }
  rc = WS_OK;
  *out = v;
  *n = cat.n;
  v = NULL;
out:
  free(v);
  ws_catalog_free(&cat);
  ws_store_close(st);
  return rc;
}

void ws_objinfo_free(ws_objinfo *v) { free(v); }
