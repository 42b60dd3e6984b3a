/*
** Unit tests for src/restore.c (ws_restore, ws_ls) against a file store in
** a fresh mkdtemp directory per test.
**
** The page content is real: main() builds one SQLite database (journal_mode
** DELETE, page_size 4096) in three successive versions V1 -> V2 (more rows,
** grows) -> V3 (deletes + VACUUM, shrinks) and keeps each file's pages.  The
** store objects are then crafted with the codec's encoder: a snapshot of V1
** at TXID 5 and a segment 6-7 whose transactions write exactly the pages
** that differ (6: V1->V2, 7: V2->V3).  The state checksums in the headers,
** 'E' records and trailers are computed independently here, by running a
** ws_dbstate through the model of pagehash.h.  Every refusal test corrupts
** one fact and asserts the exact code, the key words of the message, that
** the result struct was not written, and that the output directory holds
** nothing new (no OUT, no temp file, no -wal/-shm).
*/
/* t.h's RUN puts fflush after an else on one line; -Wall flags that. */
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#include "t.h"
#include "codec.h"
#include "delta.h"
#include "compact.h"
#include "common.h"
#include "names.h"
#include "pagehash.h"
#include "walship/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINEAGE 0x5eed5eed0000beefull
#define T0_MS 1700000000000ll

/* ------------------------------------------------------------- images */

/* A database state: npages pages of ps bytes, page 1 at offset 0. */
typedef struct img {
  uint8_t *p;
  size_t len;          /* npages * ps */
  uint32_t ps, npages;
} img;

static img V[4];       /* V[1..3]: successive versions of one real database */

static const uint8_t *pg(const img *m, uint32_t p) {
  return m->p + (size_t)(p - 1) * m->ps;
}

static int img_read(img *m, const char *path, uint32_t ps) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  m->p = malloc(n > 0 ? (size_t)n : 1);
  int ok = m->p && n > 0 && n % ps == 0 && fread(m->p, 1, (size_t)n, f) == (size_t)n;
  fclose(f);
  m->len = (size_t)n;
  m->ps = ps;
  m->npages = (uint32_t)(n / ps);
  return ok ? 0 : -1;
}

/* m's bytes cut into npages pages of ps bytes (zero-padded); caller frees. */
static img img_copy(const img *m, uint32_t ps, uint32_t npages) {
  img r = {calloc((size_t)npages * ps, 1), (size_t)npages * ps, ps, npages};
  if (!r.p || r.len < m->len) abort();
  memcpy(r.p, m->p, m->len);
  return r;
}

/* Load pages 1..n of m into a fresh model state (as if written one by one). */
static void state_load(ws_dbstate *s, const img *m, uint32_t ps) {
  ws_err e = WS_ERR_INIT;
  uint32_t n = m ? (uint32_t)(m->len / ps) : 0;
  if (ws_dbstate_init(s, ps, &e)) abort();
  for (uint32_t p = 1; p <= n; p++)
    if (ws_dbstate_set(s, p, ws_page_hash(p, m->p + (size_t)(p - 1) * ps, ps), &e))
      abort();
  if (ws_dbstate_resize(s, n, &e)) abort();
}

/* State checksum of a whole image. */
static uint64_t img_sum(const img *m) {
  ws_dbstate s;
  state_load(&s, m, m->ps);
  uint64_t sum = s.sum;
  ws_dbstate_free(&s);
  return sum;
}

static int sql(sqlite3 *db, const char *q) {
  char *msg = NULL;
  int rc = sqlite3_exec(db, q, NULL, NULL, &msg);
  if (rc != SQLITE_OK) printf("  sql: %s: %s\n", q, msg ? msg : "?");
  sqlite3_free(msg);
  return rc;
}

/* Apply one batch of SQL to the database at path and keep its pages in m. */
static int version(img *m, const char *path, const char *q) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open(path, &db) != SQLITE_OK || sql(db, q);
  if (sqlite3_close(db) != SQLITE_OK) rc = 1;
  return rc || img_read(m, path, 4096);
}

static int build_versions(const char *dir) {
  char path[128];
  snprintf(path, sizeof(path), "%s/src.db", dir);
  return version(&V[1], path,
                 "PRAGMA page_size=4096; PRAGMA journal_mode=DELETE;"
                 "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                 "CREATE INDEX t_v ON t(v);"
                 "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c"
                 " WHERE i<40) INSERT INTO t SELECT i, i||'-'||hex(zeroblob(150)) FROM c;") ||
         version(&V[2], path,
                 "WITH RECURSIVE c(i) AS (SELECT 41 UNION ALL SELECT i+1 FROM c"
                 " WHERE i<120) INSERT INTO t SELECT i, i||'+'||hex(zeroblob(200)) FROM c;"
                 "UPDATE t SET v = 'updated-'||id WHERE id <= 10;") ||
         version(&V[3], path, "DELETE FROM t WHERE id % 3 = 0 OR id > 90; VACUUM;");
}

/* ------------------------------------------------------------- fixture */

static struct fx {
  char root[64];       /* mkdtemp */
  char store[96];      /* ROOT/store: created by the first put */
  char outdir[96];     /* ROOT/out: holds only what restore leaves */
  char out[128];       /* ROOT/out/app.db */
} F;

static void fx_begin(void) {
  snprintf(F.root, sizeof(F.root), "/tmp/ws-test-restore-XXXXXX");
  if (!mkdtemp(F.root)) abort();
  snprintf(F.store, sizeof(F.store), "%s/store", F.root);
  snprintf(F.outdir, sizeof(F.outdir), "%s/out", F.root);
  snprintf(F.out, sizeof(F.out), "%s/app.db", F.outdir);
  if (mkdir(F.outdir, 0755) != 0) abort();
}

static void rm_rf(const char *dir) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0) printf("  cleanup of %s failed\n", dir);
}

static void fx_end(void) { rm_rf(F.root); }

#define RUNF(fn) do { fx_begin(); RUN(fn); fx_end(); } while (0)

static ws_restore_opts ropts(void) {
  ws_restore_opts o = WS_RESTORE_OPTS_INIT;
  o.store_url = F.store;
  o.out_path = F.out;
  return o;
}

static char *store_path(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", F.store, name);
  return buf;
}

static uint64_t obj_size(const char *name) {
  char p[256];
  struct stat sb;
  return stat(store_path(p, sizeof(p), name), &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* 1 if OUT holds exactly the bytes of m. */
static int out_equals(const img *m) {
  img got = {0};
  int ok = img_read(&got, F.out, m->ps) == 0 && got.len == m->len &&
           memcmp(got.p, m->p, m->len) == 0;
  if (!ok) printf("  %s: %zu bytes, want %zu (or content differs)\n", F.out, got.len, m->len);
  free(got.p);
  return ok;
}

/* 1 if the output directory holds exactly `only` (NULL: nothing); a temp
** file, a -wal/-shm or anything else is reported. */
static int outdir_holds(const char *only) {
  DIR *d = opendir(F.outdir);
  if (!d) return 0;
  int ok = 1, seen = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (only && !strcmp(de->d_name, only)) seen = 1;
    else { printf("  unexpected %s/%s\n", F.outdir, de->d_name); ok = 0; }
  }
  closedir(d);
  return ok && seen == (only != NULL);
}

/* ------------------------------------------------------------- objects */

/* One crafted object.  Each transaction writes the pages of its `after`
** image that differ from the state before it (every page, for a snapshot). */
typedef struct objspec {
  int kind;                /* WS_KIND_* */
  uint64_t first;          /* TXID of the first transaction */
  const img *before;       /* segment: the state it applies onto */
  const img *after[3];     /* state after each transaction */
  uint32_t ntxn;
  uint64_t lineage;        /* 0 = LINEAGE */
  uint64_t before_xor;     /* != 0: dbsum_before is wrong */
  uint32_t bad_end;        /* 1-based transaction whose 'E' dbsum is wrong */
  int no_sums;             /* 'E' records without a dbsum (has_sum 0) */
  uint64_t trailer_xor;    /* != 0: the trailer dbsum is wrong */
  int deltas;              /* pages inside the state before: 'D' records */
} objspec;

/* Must a transaction from state b write a's page p?  Past b's end the model
** grows with zero pages, so only a non-zero page needs writing there. */
static int page_differs(const img *a, uint32_t p, const img *b) {
  static const uint8_t zero[65536];
  size_t off = (size_t)(p - 1) * a->ps;
  if (!b) return 1;
  if (off + a->ps > b->len) return memcmp(a->p + off, zero, a->ps) != 0;
  return memcmp(a->p + off, b->p + off, a->ps) != 0;
}

static uint32_t txn_pages(const objspec *o, uint32_t t) {
  const img *a = o->after[t], *b = t ? o->after[t - 1] : o->before;
  uint32_t n = 0;
  for (uint32_t p = 1; p <= a->npages; p++) n += page_differs(a, p, b);
  return n;
}

typedef struct membuf { uint8_t *p; size_t n, cap; } membuf;

static int mem_write(void *ud, const void *buf, size_t len, ws_err *err) {
  membuf *m = ud;
  (void)err;
  if (m->n + len > m->cap) {
    m->cap = (m->n + len) * 2;
    if (!(m->p = realloc(m->p, m->cap))) abort();
  }
  memcpy(m->p + m->n, buf, len);
  m->n += len;
  return WS_OK;
}

/* Encode o and put it in the store; its name goes to name. */
static int put_obj(char name[WS_NAME_MAX], const objspec *o) {
  uint32_t ps = o->after[0]->ps, last = (uint32_t)(o->first + o->ntxn - 1);
  ws_objhdr h = {.kind = (uint32_t)o->kind, .page_size = ps, .txid_first = o->first,
                 .txid_last = last, .db_pages = o->after[o->ntxn - 1]->npages,
                 .ntxn = o->ntxn, .time_first_ms = T0_MS + (int64_t)o->first,
                 .time_last_ms = T0_MS + (int64_t)last,
                 .lineage = o->lineage ? o->lineage : LINEAGE,
                 .dbsum_before = o->before ? img_sum(o->before) ^ o->before_xor : 0,
                 .pos = {.salt1 = 1, .frame = last}};
  for (uint32_t t = 0; t < o->ntxn; t++) h.npages += txn_pages(o, t);
  membuf m = {0};
  ws_err err = WS_ERR_INIT;
  ws_enc *e = NULL;
  ws_store *st = NULL;
  ws_dbstate s;   /* the state the restore should rebuild, txn by txn */
  state_load(&s, o->before, ps);
  uint64_t sum = 0;
  int rc = ws_enc_new(&e, &h, 6, mem_write, &m, &err);
  for (uint32_t t = 0; t < o->ntxn && !rc; t++) {
    const img *a = o->after[t], *b = t ? o->after[t - 1] : o->before;
    rc = ws_enc_txn_begin(e, o->first + t, T0_MS + (int64_t)(o->first + t),
                          a->npages, txn_pages(o, t), &err);
    for (uint32_t p = 1; p <= a->npages && !rc; p++) {
      if (!page_differs(a, p, b)) continue;
      if (o->deltas && b && p <= b->npages) {
        static uint8_t d[2 * 65536];
        size_t dl = 0;
        rc = !ws_delta_make(d, sizeof(d), &dl, pg(b, p), pg(a, p), ps) ||
             ws_enc_delta(e, p, d, dl, &err);
      } else {
        rc = ws_enc_page(e, p, pg(a, p), &err);
      }
      rc = rc || ws_dbstate_set(&s, p, ws_page_hash(p, pg(a, p), ps), &err);
    }
    if (!rc) rc = ws_dbstate_resize(&s, a->npages, &err);
    sum = s.sum ^ (o->bad_end == t + 1 ? 0x100 : 0);
    if (!rc) rc = ws_enc_txn_end(e, !o->no_sums, o->no_sums ? 0 : sum, &err);
  }
  if (!rc) rc = ws_enc_finish(e, sum ^ o->trailer_xor, &err);
  if (o->kind == WS_KIND_SNAPSHOT) ws_name_snapshot(name, o->first);
  else ws_name_segment(name, o->first, last);
  if (!rc && !(rc = ws_store_open(&st, F.store, &err)))
    rc = ws_store_put_buf(st, name, m.p, m.n, &err);
  if (rc) printf("  put_obj %s: %s\n", name, err.msg);
  ws_store_close(st);
  ws_enc_free(e);
  ws_dbstate_free(&s);
  free(m.p);
  return rc;
}

#define SNAP(txid, m) {.kind = WS_KIND_SNAPSHOT, .first = (txid), .after = {(m)}, .ntxn = 1}
#define SEG(t, b, m1, m2) {.kind = WS_KIND_SEGMENT, .first = (t), .before = (b), \
                           .after = {(m1), (m2)}, .ntxn = 2}

static char SNAP5[WS_NAME_MAX], SEG67[WS_NAME_MAX];

/* Snapshot 5 = V1, then segment g (a variant of the standard one). */
static int put_history_with(objspec g) {
  objspec s = SNAP(5, &V[1]);
  return put_obj(SNAP5, &s) || put_obj(SEG67, &g);
}

/* The standard history: snapshot 5 = V1, segment 6 (-> V2), 7 (-> V3). */
static int put_history(void) {
  objspec g = SEG(6, &V[1], &V[2], &V[3]);
  return put_history_with(g);
}

/* Restore must fail with code and a message containing needle (NULL: the
** message must be empty), write nothing to the result, and leave the output
** directory holding exactly keep (NULL: nothing). */
static int refused(const ws_restore_opts *o, int code, const char *needle,
                   const char *keep) {
  ws_restore_result r, r0;
  memset(&r, 0xa5, sizeof(r));
  r0 = r;
  ws_err err = {WS_ERROR, "stale message from an earlier call", NULL, 0};
  int rc = ws_restore(&r, o, &err);
  if (rc != code || err.code != code) {
    printf("  restore returned %d (err.code %d), want %d: %s\n", rc, err.code, code, err.msg);
    return 0;
  }
  if (needle ? !strstr(err.msg, needle) : err.msg[0] != '\0') {
    printf("  message \"%s\" lacks \"%s\"\n", err.msg, needle ? needle : "(empty)");
    return 0;
  }
  if (memcmp(&r, &r0, sizeof(r)) != 0) {
    printf("  result written on failure\n");
    return 0;
  }
  return outdir_holds(keep);
}

/* Restore with o must succeed: OUT holds exactly m and is alone in its
** directory; the result says txid, objects, m's size and checksum. */
static int restores(const ws_restore_opts *o, const img *m, uint64_t txid,
                    uint64_t objects, ws_restore_result *out) {
  ws_restore_result r;
  ws_err err = WS_ERR_INIT;
  int rc = ws_restore(&r, o, &err);
  if (rc != WS_OK || err.code != WS_OK) {
    printf("  restore returned %d: %s\n", rc, err.msg);
    return 0;
  }
  if (r.txid != txid || r.objects != objects || r.page_size != m->ps ||
      r.db_pages != m->npages || r.dbsum != img_sum(m)) {
    printf("  result: txid %llu objects %llu page_size %u db_pages %u\n",
           (unsigned long long)r.txid, (unsigned long long)r.objects,
           r.page_size, r.db_pages);
    return 0;
  }
  if (out) *out = r;
  return out_equals(m) && outdir_holds("app.db");
}

/* ---------------------------------------------------------- successes */

static void test_restore_latest_equals_v3(void) {
  CHECK_EQ(put_history(), WS_OK);
  ws_restore_opts o = ropts();
  ws_restore_result r;
  CHECK(restores(&o, &V[3], 7, 2, &r));
  CHECK_EQ(r.bytes_downloaded, obj_size(SNAP5) + obj_size(SEG67));
}

static void test_restore_target_is_snapshot_txid(void) {
  CHECK_EQ(put_history(), WS_OK);
  ws_restore_opts o = ropts();
  o.target_txid = 5;
  ws_restore_result r;
  CHECK(restores(&o, &V[1], 5, 1, &r));
  CHECK_EQ(r.bytes_downloaded, obj_size(SNAP5));
}

/* The restore stops after txn 6's 'E', inside the segment. */
static void test_restore_target_inside_segment(void) {
  CHECK_EQ(put_history(), WS_OK);
  ws_restore_opts o = ropts();
  o.target_txid = 6;
  CHECK(restores(&o, &V[2], 6, 2, NULL));
  /* and past the end of the history: a gap, not the latest state */
  o.target_txid = 100;
  o.force = 1;
  CHECK(refused(&o, WS_EGAP, "target txid 100 is not reachable", "app.db"));
  CHECK(out_equals(&V[2]));
}

/* Txn 6 shrinks the database, txn 7 grows it back without writing the new
** pages: they must read as zeros, not as the content the shrink dropped. */
static void test_restore_shrink_then_grow_reads_zeros(void) {
  img z = img_copy(&V[3], 4096, V[2].npages);
  objspec s = SNAP(5, &V[2]);
  objspec g = SEG(6, &V[2], &V[3], &z);
  int put = put_obj(SNAP5, &s) || put_obj(SEG67, &g);
  uint32_t grow_writes = txn_pages(&g, 1);
  ws_restore_opts o = ropts();
  int ok = restores(&o, &z, 7, 2, NULL);
  free(z.p);
  CHECK_EQ(put, 0);
  CHECK_EQ(grow_writes, 0);   /* txn 7 really writes no page */
  CHECK(ok);
}

/* -------------------------------------------------- merged segments */

/* Merge the history's segment 6-7 (compact.c) and restore through it: the
** latest state comes from snapshot + merged object (its bytes prove which
** object was read), txid 6 still from the level-0 segment. */
static int merged_restores(const img *mid, const img *last) {
  ws_store *st = NULL;
  ws_catalog cat = {NULL, 0};
  ws_err err = WS_ERR_INIT;
  uint64_t bytes = 0;
  int ok = 0;
  if (ws_store_open(&st, F.store, &err) || ws_catalog_load(&cat, st, &err))
    goto out;
  const ws_catent *seg = NULL;
  for (size_t i = 0; i < cat.n; i++)
    if (cat.v[i].kind == WS_KIND_SEGMENT) seg = &cat.v[i];
  if (!seg || ws_merge_run(st, &seg, 1, 1, 6, &bytes, NULL, &err)) goto out;
  char mname[WS_NAME_MAX];
  ws_name_merged(mname, 1, 6, 7);
  ws_restore_opts o = ropts();
  ws_restore_result r;
  if (!restores(&o, last, 7, 2, &r)) goto out;
  if (r.bytes_downloaded != obj_size(SNAP5) + obj_size(mname) || !obj_size(mname)) {
    printf("  latest read %llu bytes, not snapshot + %s\n",
           (unsigned long long)r.bytes_downloaded, mname);
    goto out;
  }
  if (unlink(F.out) != 0) goto out;
  o.target_txid = 6;
  if (!restores(&o, mid, 6, 2, &r)) goto out;
  ok = r.bytes_downloaded == obj_size(SNAP5) + obj_size(SEG67);
out:
  if (err.code) printf("  %s\n", err.msg);
  ws_catalog_free(&cat);
  ws_store_close(st);
  return ok;
}

static void test_merged_segment_restores_like_its_sources(void) {
  CHECK_EQ(put_history(), WS_OK);
  CHECK(merged_restores(&V[2], &V[3]));
}

/* The run shrinks (7 pages -> V3) and grows back without writing: the
** merged record must carry the regrown pages as zeros. */
static void test_merged_segment_keeps_regrown_zero_pages(void) {
  img z = img_copy(&V[3], 4096, V[2].npages);
  objspec s = SNAP(5, &V[2]);
  objspec g = SEG(6, &V[2], &V[3], &z);
  int put = put_obj(SNAP5, &s) || put_obj(SEG67, &g);
  int ok = !put && merged_restores(&V[3], &z);
  free(z.p);
  CHECK_EQ(put, 0);
  CHECK(ok);
}

/* The same two with the segment's pages as deltas: the merged object
** carries the XOR of each page's deltas (a mutation that stages a delta as
** a page, or drops the zero pages, fails these). */
static void test_merged_segment_of_deltas(void) {
  objspec s = SNAP(5, &V[1]);
  objspec g = SEG(6, &V[1], &V[2], &V[3]);
  g.deltas = 1;
  CHECK_EQ(put_obj(SNAP5, &s) || put_obj(SEG67, &g), 0);
  ws_restore_opts o = ropts();
  ws_restore_result r;
  CHECK(restores(&o, &V[3], 7, 2, &r));     /* deltas apply onto the file */
  CHECK_EQ(unlink(F.out), 0);
  CHECK(merged_restores(&V[2], &V[3]));
}

/* Shrink (V2 -> V3), regrow with zeros, then a delta onto a regrown zero
** page: after the shrink that page's base is zeros, not its content before
** the run, so the merged object must carry it whole. */
static void test_merged_delta_after_shrink_is_a_page(void) {
  img z = img_copy(&V[3], 4096, V[2].npages);
  img w = img_copy(&z, 4096, z.npages);
  uint32_t p = V[3].npages + 1;             /* regrown, zero in z */
  memset(w.p + (size_t)(p - 1) * 4096 + 100, 0xab, 40);
  objspec s = SNAP(5, &V[2]);
  objspec g = {.kind = WS_KIND_SEGMENT, .first = 6, .before = &V[2],
               .after = {&V[3], &z, &w}, .ntxn = 3, .deltas = 1};
  int put = put_obj(SNAP5, &s) || put_obj(SEG67, &g);
  ws_store *st = NULL;
  ws_catalog cat = {NULL, 0};
  ws_err err = WS_ERR_INIT;
  uint64_t bytes = 0;
  int ok = 0;
  if (!put && !ws_store_open(&st, F.store, &err) && !ws_catalog_load(&cat, st, &err)) {
    const ws_catent *seg = NULL;
    for (size_t i = 0; i < cat.n; i++)
      if (cat.v[i].kind == WS_KIND_SEGMENT) seg = &cat.v[i];
    if (seg && !ws_merge_run(st, &seg, 1, 1, 6, &bytes, NULL, &err)) {
      char sname[WS_NAME_MAX];
      snprintf(sname, sizeof(sname), "%s", seg->name);
      char path[4096];
      (void)unlink(store_path(path, sizeof(path), sname));  /* only the merged one */
      ws_restore_opts o = ropts();
      ws_restore_result r;
      ok = restores(&o, &w, 8, 2, &r);
    }
  }
  if (err.code) printf("  %s\n", err.msg);
  ws_catalog_free(&cat);
  ws_store_close(st);
  free(z.p);
  free(w.p);
  CHECK_EQ(put, 0);
  CHECK(ok);
}

/* ----------------------------------------------------------- refusals */

/* A hostile segment 6-6 on snapshot 5 = V1: one transaction declaring
** db_pages and carrying one zero page at pgno. */
static int put_hostile(uint32_t db_pages, uint32_t pgno) {
  static const uint8_t zero[4096];
  ws_objhdr h = {.kind = WS_KIND_SEGMENT, .page_size = 4096, .txid_first = 6,
                 .txid_last = 6, .db_pages = db_pages, .ntxn = 1, .npages = 1,
                 .time_first_ms = T0_MS, .time_last_ms = T0_MS, .lineage = LINEAGE,
                 .dbsum_before = img_sum(&V[1]), .pos = {.salt1 = 1, .frame = 6}};
  membuf m = {0};
  ws_err err = WS_ERR_INIT;
  ws_enc *e = NULL;
  ws_store *st = NULL;
  objspec s = SNAP(5, &V[1]);
  int rc = put_obj(SNAP5, &s);
  if (!rc) rc = ws_enc_new(&e, &h, 6, mem_write, &m, &err);
  if (!rc) rc = ws_enc_txn_begin(e, 6, T0_MS, db_pages, 1, &err);
  if (!rc) rc = ws_enc_page(e, pgno, zero, &err);
  if (!rc) rc = ws_enc_txn_end(e, 1, 0x1234, &err);
  if (!rc) rc = ws_enc_finish(e, 0x1234, &err);
  ws_name_segment(SEG67, 6, 6);
  if (!rc && !(rc = ws_store_open(&st, F.store, &err)))
    rc = ws_store_put_buf(st, SEG67, m.p, m.n, &err);
  ws_store_close(st);
  ws_enc_free(e);
  free(m.p);
  return rc;
}

/* Absurd sizes must be refused before anything is allocated for them (was:
** 16.8 GB and 51 s for a 4 KB segment, issue #8). */
static void test_restore_refuses_hostile_growth(void) {
  CHECK_EQ(put_hostile(0x7fffffff, 0x7fffffff), WS_OK);
  ws_restore_opts o = ropts();
  CHECK(refused(&o, WS_ECORRUPT, "beyond what its transaction can grow", NULL));
}

static void test_restore_refuses_hostile_size(void) {
  CHECK_EQ(put_hostile(0x7fffffff, 2), WS_OK);
  ws_restore_opts o = ropts();
  CHECK(refused(&o, WS_ECORRUPT, "but no page past", NULL));
}

static void test_restore_refuses_gap(void) {
  objspec s = SNAP(5, &V[1]);
  objspec g = SEG(8, &V[3], &V[2], &V[3]);
  char later[WS_NAME_MAX];
  CHECK_EQ(put_obj(SNAP5, &s), WS_OK);
  CHECK_EQ(put_obj(later, &g), WS_OK);
  ws_restore_opts o = ropts();
  CHECK(refused(&o, WS_EGAP, "missing TXIDs 6..7", NULL));
  o.target_txid = 9;
  CHECK(refused(&o, WS_EGAP, "missing TXIDs 6..7", NULL));
}

static void test_restore_refuses_wrong_dbsum_before(void) {
  objspec g = SEG(6, &V[1], &V[2], &V[3]);
  g.before_xor = 1;
  CHECK_EQ(put_history_with(g), WS_OK);
  ws_restore_opts o = ropts();
  CHECK(refused(&o, WS_EVERIFY, "applies onto state checksum", NULL));
}

static void test_restore_refuses_wrong_txn_dbsum(void) {
  objspec g = SEG(6, &V[1], &V[2], &V[3]);
  g.bad_end = 1;
  CHECK_EQ(put_history_with(g), WS_OK);
  ws_restore_opts o = ropts();
  CHECK(refused(&o, WS_EVERIFY, "txid 6: database checksum mismatch", NULL));
  o.target_txid = 6;   /* the sum of the last txn applied is still checked */
  CHECK(refused(&o, WS_EVERIFY, "txid 6: database checksum mismatch", NULL));
}

/* With no sum in any 'E', the trailer's dbsum is the only proof. */
static void test_restore_refuses_wrong_trailer_dbsum(void) {
  objspec g = SEG(6, &V[1], &V[2], &V[3]);
  g.no_sums = 1;
  CHECK_EQ(put_history_with(g), WS_OK);
  ws_restore_opts o = ropts();
  CHECK(restores(&o, &V[3], 7, 2, NULL));
  CHECK_EQ(unlink(F.out), 0);
  g.trailer_xor = 0x8000;
  CHECK_EQ(put_history_with(g), WS_OK);
  CHECK(refused(&o, WS_EVERIFY, "mismatch after apply (trailer expects", NULL));
}

static void test_restore_refuses_page_size_change(void) {
  img big = img_copy(&V[2], 8192, (uint32_t)((V[2].len + 8191) / 8192));
  objspec g = SEG(6, &V[1], &big, NULL);
  g.ntxn = 1;
  int rc = put_history_with(g);
  ws_restore_opts o = ropts();
  int ok = refused(&o, WS_EVERIFY, "page size 8192 differs from 4096", NULL);
  free(big.p);
  CHECK_EQ(rc, WS_OK);
  CHECK(ok);
}

static void test_restore_refuses_lineage_change(void) {
  objspec g = SEG(6, &V[1], &V[2], &V[3]);
  g.lineage = 0x1234;
  CHECK_EQ(put_history_with(g), WS_OK);
  ws_restore_opts o = ropts();
  CHECK(refused(&o, WS_EVERIFY, "lineage 0000000000001234 differs", NULL));
}

/* The name is only a hint: a header that disagrees with it is corrupt. */
static void test_restore_refuses_header_not_matching_name(void) {
  CHECK_EQ(put_history(), WS_OK);
  char from[256], to[256], name[WS_NAME_MAX];
  ws_name_segment(name, 6, 8);
  CHECK_EQ(rename(store_path(from, sizeof(from), SEG67),
                  store_path(to, sizeof(to), name)), 0);
  ws_restore_opts o = ropts();
  CHECK(refused(&o, WS_ECORRUPT, "txids 6-7, which does not match its name", NULL));
}

/* Flip one byte in the middle of the snapshot, then of the segment. */
static void test_restore_refuses_flipped_byte(void) {
  const char *names[2] = {SNAP5, SEG67};
  for (int i = 0; i < 2; i++) {
    CHECK_EQ(put_history(), WS_OK);
    char p[256];
    int fd = open(store_path(p, sizeof(p), names[i]), O_RDWR);
    CHECK(fd >= 0);
    off_t mid = (off_t)(obj_size(names[i]) / 2);
    uint8_t b = 0;
    CHECK_EQ(pread(fd, &b, 1, mid), 1);
    b ^= 0x10;
    CHECK_EQ(pwrite(fd, &b, 1, mid), 1);
    CHECK_EQ(close(fd), 0);
    ws_restore_opts o = ropts();
    CHECK(refused(&o, WS_ECORRUPT, names[i], NULL));
  }
}

static void test_restore_refuses_truncated_object(void) {
  CHECK_EQ(put_history(), WS_OK);
  char p[256];
  uint64_t full = obj_size(SEG67);
  uint64_t cut[3] = {full - 1, full / 2, WS_OBJHDR_SIZE};
  ws_restore_opts o = ropts();
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(truncate(store_path(p, sizeof(p), SEG67), (off_t)cut[i]), 0);
    CHECK(refused(&o, WS_ECORRUPT, SEG67, NULL));
  }
  CHECK(refused(&o, WS_ECORRUPT, "truncated", NULL));
}

static int write_file(const char *path, const char *s) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int rc = fputs(s, f) < 0;
  return fclose(f) != 0 || rc ? -1 : 0;
}

static int file_is(const char *path, const char *s) {
  char buf[64] = {0};
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  return n == strlen(s) && memcmp(buf, s, n) == 0;
}

static void test_restore_existing_output_needs_force(void) {
  CHECK_EQ(put_history(), WS_OK);
  CHECK_EQ(write_file(F.out, "precious"), 0);
  ws_restore_opts o = ropts();
  CHECK(refused(&o, WS_EEXIST, "exists (use --force", "app.db"));
  CHECK(file_is(F.out, "precious"));
  o.force = 1;
  CHECK(restores(&o, &V[3], 7, 2, NULL));
}

/* SQLite would replay a stale OUT-wal into the restored file. */
static void test_restore_stale_wal_needs_force(void) {
  CHECK_EQ(put_history(), WS_OK);
  char wal[160];
  snprintf(wal, sizeof(wal), "%s-wal", F.out);
  CHECK_EQ(write_file(wal, "stale frames"), 0);
  ws_restore_opts o = ropts();
  CHECK(refused(&o, WS_EEXIST, "app.db-wal exists next to the output", "app.db-wal"));
  CHECK(file_is(wal, "stale frames"));
  o.force = 1;
  CHECK(restores(&o, &V[3], 7, 2, NULL));   /* and the stale -wal is gone */
}

static void test_restore_empty_store(void) {
  ws_restore_opts o = ropts();
  CHECK(refused(&o, WS_EEMPTY, "holds no snapshot", NULL));   /* no root */
  CHECK_EQ(mkdir(F.store, 0755), 0);
  CHECK(refused(&o, WS_EEMPTY, "holds no snapshot", NULL));
  char p[256];
  CHECK_EQ(mkdir(store_path(p, sizeof(p), "snap"), 0755), 0);
  CHECK_EQ(write_file(store_path(p, sizeof(p), "snap/notes.txt"), "foreign"), 0);
  CHECK(refused(&o, WS_EEMPTY, "holds no snapshot", NULL));
  o.if_replica_exists = 1;
  CHECK(refused(&o, WS_EEMPTY, NULL, NULL));
}

/* Pages whose checksums are all right but which SQLite cannot read: the
** checksum proof passes, and only the integrity check stands in the way. */
static void test_restore_integrity_check_failure(void) {
  img bad = img_copy(&V[1], 4096, V[1].npages);
  uint64_t x = 42;
  for (uint32_t i = 0; i < bad.ps; i++) {   /* garbage over table t's root */
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    bad.p[bad.ps + i] = (uint8_t)(x >> 56);
  }
  objspec s = SNAP(5, &bad);
  int put = put_obj(SNAP5, &s);
  ws_restore_opts o = ropts();
  int ok1 = refused(&o, WS_EVERIFY, "integrity check of restored", NULL);
  o.skip_integrity_check = 1;   /* the checksum proof alone still holds */
  int ok2 = restores(&o, &bad, 5, 1, NULL);
  free(bad.p);
  CHECK_EQ(put, WS_OK);
  CHECK(ok1);
  CHECK(ok2);
}

/* The debug log names each object applied; the hook counts them and can
** raise the stop flag once the first one is in. */
static volatile int *hook_stop;
static int hook_applied;

static void hook(void *ud, int level, const char *component, const char *msg) {
  (void)ud; (void)level; (void)component;
  if (strncmp(msg, "applied ", 8) != 0) return;
  hook_applied++;
  if (hook_stop) *hook_stop = 1;
}

static void test_restore_stop_flag(void) {
  CHECK_EQ(put_history(), WS_OK);
  volatile int stop = 1;
  ws_restore_opts o = ropts();
  o.stop = &stop;
  ws_set_log(hook, NULL, WS_LOG_DEBUG);
  hook_applied = 0;
  int ok1 = refused(&o, WS_ESTOPPED, "restore interrupted", NULL);
  int before_any = hook_applied;
  stop = 0;
  hook_stop = &stop;   /* now: stop between the snapshot and the segment */
  int ok2 = refused(&o, WS_ESTOPPED, "restore interrupted", NULL);
  int after_first = hook_applied;
  hook_stop = NULL;
  ws_set_log(NULL, NULL, 0);
  CHECK(ok1);
  CHECK_EQ(before_any, 0);
  CHECK(ok2);
  CHECK_EQ(after_first, 1);
  stop = 0;
  CHECK(restores(&o, &V[3], 7, 2, NULL));
}

/* --------------------------------------------------------------- ls */

static void test_ls_lists_objects_in_position_order(void) {
  CHECK_EQ(put_history(), WS_OK);
  char snap7[WS_NAME_MAX];
  objspec s7 = SNAP(7, &V[3]);
  CHECK_EQ(put_obj(snap7, &s7), WS_OK);
  char p[256];
  CHECK_EQ(write_file(store_path(p, sizeof(p), "snap/notes.txt"), "foreign"), 0);
  ws_objinfo *v = NULL;
  size_t n = 0;
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(ws_ls(&v, &n, F.store, NULL, &err), WS_OK);
  struct { const char *name; int kind; uint64_t a, b; uint32_t pages, ntxn; } want[3] = {
      {SNAP5, WS_KIND_SNAPSHOT, 5, 5, V[1].npages, 1},
      {SEG67, WS_KIND_SEGMENT, 6, 7, V[3].npages, 2},
      {snap7, WS_KIND_SNAPSHOT, 7, 7, V[3].npages, 1}};
  int ok = n == 3;
  for (size_t i = 0; ok && i < 3; i++) {
    ok = !strcmp(v[i].name, want[i].name) && v[i].kind == want[i].kind &&
         v[i].txid_first == want[i].a && v[i].txid_last == want[i].b &&
         v[i].db_pages == want[i].pages && v[i].ntxn == want[i].ntxn &&
         v[i].page_size == 4096 && v[i].size == obj_size(want[i].name) &&
         v[i].time_first_ms == T0_MS + (int64_t)want[i].a &&
         v[i].time_last_ms == T0_MS + (int64_t)want[i].b;
    if (!ok) printf("  entry %zu: %s kind %d %llu-%llu pages %u\n", i, v[i].name,
                    v[i].kind, (unsigned long long)v[i].txid_first,
                    (unsigned long long)v[i].txid_last, v[i].db_pages);
  }
  ws_objinfo_free(v);
  CHECK_EQ(n, 3);
  CHECK(ok);
  /* latest now starts at the newer snapshot: one object */
  ws_restore_opts o = ropts();
  CHECK(restores(&o, &V[3], 7, 1, NULL));
  /* an unreadable header does not hide the rest: page_size 0 marks it */
  CHECK_EQ(truncate(store_path(p, sizeof(p), SEG67), 10), 0);
  CHECK_EQ(ws_ls(&v, &n, F.store, NULL, &err), WS_OK);
  ok = n == 3 && !strcmp(v[1].name, SEG67) && v[1].page_size == 0 &&
       v[1].txid_last == 7 && v[1].size == 10 && v[2].page_size == 4096;
  ws_objinfo_free(v);
  CHECK(ok);
}

int main(void) {
  char dir[] = "/tmp/ws-test-restore-src-XXXXXX";
  if (!mkdtemp(dir) || build_versions(dir)) {
    printf("FAIL setup: cannot build the SQLite versions in %s\n", dir);
    return 1;
  }
  rm_rf(dir);
  /* The history must grow then shrink, so truncation is exercised. */
  if (!(V[1].npages < V[2].npages && V[3].npages < V[2].npages)) {
    printf("FAIL setup: versions have %u, %u, %u pages\n", V[1].npages,
           V[2].npages, V[3].npages);
    return 1;
  }
  RUNF(test_restore_latest_equals_v3);
  RUNF(test_restore_target_is_snapshot_txid);
  RUNF(test_restore_target_inside_segment);
  RUNF(test_restore_shrink_then_grow_reads_zeros);
  RUNF(test_merged_segment_restores_like_its_sources);
  RUNF(test_merged_segment_keeps_regrown_zero_pages);
  RUNF(test_merged_segment_of_deltas);
  RUNF(test_merged_delta_after_shrink_is_a_page);
  RUNF(test_restore_refuses_gap);
  RUNF(test_restore_refuses_hostile_growth);
  RUNF(test_restore_refuses_hostile_size);
  RUNF(test_restore_refuses_wrong_dbsum_before);
  RUNF(test_restore_refuses_wrong_txn_dbsum);
  RUNF(test_restore_refuses_wrong_trailer_dbsum);
  RUNF(test_restore_refuses_page_size_change);
  RUNF(test_restore_refuses_lineage_change);
  RUNF(test_restore_refuses_header_not_matching_name);
  RUNF(test_restore_refuses_flipped_byte);
  RUNF(test_restore_refuses_truncated_object);
  RUNF(test_restore_existing_output_needs_force);
  RUNF(test_restore_stale_wal_needs_force);
  RUNF(test_restore_empty_store);
  RUNF(test_restore_integrity_check_failure);
  RUNF(test_restore_stop_flag);
  RUNF(test_ls_lists_objects_in_position_order);
  for (int i = 1; i <= 3; i++) free(V[i].p);
  T_EXIT();
}
