/*
** Unit tests for src/wal.c (WAL reader) and src/dbscan.c (file + WAL
** overlay), on real WAL files written by libsqlite3 in a mkdtemp directory.
** The connection that wrote a WAL stays open while it is read, so SQLite
** neither checkpoints nor deletes it under us.
**
** Expected numbers never come from the code under test: frame counts come
** from the file size and from sqlite3_wal_checkpoint_v2's log count, commit
** frames from the transactions we ran (one commit frame each), commit sizes
** from PRAGMA page_count, and checksums from a reference implementation
** below.  Corrupted or truncated copies are written next to the real WAL and
** must yield exactly the valid prefix; the scanner's output must equal the
** database file SQLite writes when it checkpoints everything.
*/
/* t.h's RUN puts two statements after an else on one line (see test_codec.c) */
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#include "t.h"
#include "wal.h"
#include "dbscan.h"
#include "common.h"

#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------- helpers */
static uint64_t rng = 7;
static uint64_t rnd(void) {
  uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Reference WAL checksum, independent of ws_wal_cksum: for each pair of
** words x0,x1 (big-endian if be, else little-endian): s1 += x0 + s2;
** s2 += x1 + s1. */
static uint32_t word(int be, const uint8_t *p) {
  if (be) return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static void ref_cksum(int be, const uint8_t *p, size_t n, uint32_t s[2]) {
  for (size_t i = 0; i + 8 <= n; i += 8) {
    s[0] += word(be, p + i) + s[1];
    s[1] += word(be, p + i + 4) + s[0];
  }
}
static uint32_t be32(const uint8_t *p) { return word(1, p); }
static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
/* Recompute the header checksum of a WAL image over its bytes 0..23. */
static void seal_header(uint8_t *b, int be) {
  uint32_t s[2] = {0, 0};
  ref_cksum(be, b, 24, s);
  put_be32(b + 24, s[0]);
  put_be32(b + 28, s[1]);
}
/* Recompute the checksums of frames 1..n, chained from the header's. */
static void seal_frames(uint8_t *b, uint32_t ps, uint32_t n, int be) {
  uint32_t s[2] = {be32(b + 24), be32(b + 28)};
  for (uint32_t i = 0; i < n; i++) {
    uint8_t *f = b + WS_WAL_HDR_SIZE + (size_t)i * (24 + ps);
    ref_cksum(be, f, 8, s);
    ref_cksum(be, f + 24, ps, s);
    put_be32(f + 16, s[0]);
    put_be32(f + 20, s[1]);
  }
}

static uint8_t *slurp(const char *path, size_t *n) {
  struct stat st;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return NULL;
  uint8_t *p = NULL;
  if (fstat(fd, &st) == 0 && (p = malloc((size_t)st.st_size + 1)) &&
      read(fd, p, (size_t)st.st_size) != st.st_size) {
    free(p);
    p = NULL;
  }
  close(fd);
  if (p) *n = (size_t)st.st_size;
  return p;
}
static int spit(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(p, 1, n, f);
  return (fclose(f) == 0 && w == n) ? 0 : -1;
}
static int rm_ent(const char *p, const struct stat *st, int fl, struct FTW *ftw) {
  (void)st; (void)fl; (void)ftw;
  return remove(p);
}
/* Every test works in its own directory under one removed at exit, so a
** CHECK that returns early leaves nothing behind. */
static char root[32] = "/tmp/ws-test-wal-XXXXXX";
static int ndirs;
static void rm_root(void) { nftw(root, rm_ent, 8, FTW_DEPTH | FTW_PHYS); }

/* ------------------------------------------------- a real SQLite WAL */
#define MAXTXN 64
typedef struct gen {
  char dir[64], db[96], wal[104], tmp[104]; /* tmp: scratch copies */
  uint32_t ps;
  sqlite3 *c;
  int ntxn;               /* transactions committed */
  uint32_t size[MAXTXN];  /* PRAGMA page_count after each */
  int64_t maxid;          /* rows inserted so far */
  uint8_t *b;             /* gen_snap: the WAL's bytes, */
  size_t n;               /* its size */
  long nf;                /* and whole frames */
} gen;

static int sql(sqlite3 *c, const char *q) {
  return sqlite3_exec(c, q, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}
static int64_t sql_int(sqlite3 *c, const char *q) {
  sqlite3_stmt *st;
  int64_t v = -1;
  if (sqlite3_prepare_v2(c, q, -1, &st, NULL) != SQLITE_OK) return -1;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}
static int note_commit(gen *g) {
  int64_t n = sql_int(g->c, "PRAGMA page_count");
  if (g->ntxn >= MAXTXN || n <= 0) return -1;
  g->size[g->ntxn++] = (uint32_t)n;
  return 0;
}
static size_t fsz(const gen *g) { return 24 + (size_t)g->ps; }

/* A database in WAL mode, autocheckpoint and checkpoint-on-close off; `pre`
** runs before WAL mode is set.  The CREATE TABLE is transaction 1. */
static int gen_open(gen *g, uint32_t ps, const char *pre) {
  char q[64];
  memset(g, 0, sizeof(*g));
  snprintf(g->dir, sizeof(g->dir), "%s/%d", root, ++ndirs);
  if (mkdir(g->dir, 0700)) return -1;
  snprintf(g->db, sizeof(g->db), "%s/t.db", g->dir);
  snprintf(g->wal, sizeof(g->wal), "%s/t.db-wal", g->dir);
  snprintf(g->tmp, sizeof(g->tmp), "%s/copy-wal", g->dir);
  g->ps = ps;
  snprintf(q, sizeof(q), "PRAGMA page_size=%u", ps);
  if (sqlite3_open(g->db, &g->c) != SQLITE_OK || sql(g->c, q) || (pre && sql(g->c, pre)) ||
      sqlite3_db_config(g->c, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0) != SQLITE_OK ||
      sql(g->c, "PRAGMA journal_mode=WAL") || sql(g->c, "PRAGMA wal_autocheckpoint=0") ||
      sql_int(g->c, "PRAGMA wal_autocheckpoint") != 0 ||
      sql(g->c, "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)"))
    return -1;
  /* journal_mode answers with the mode; the file header says it too */
  uint8_t hdr[20];
  int fd = open(g->db, O_RDONLY);
  ssize_t got = fd < 0 ? -1 : pread(fd, hdr, sizeof(hdr), 0);
  if (fd >= 0) close(fd);
  if (got != (ssize_t)sizeof(hdr) || hdr[18] != 2 || hdr[19] != 2) return -1;
  return note_commit(g);
}

/* One transaction: nins random blobs inserted, nupd random rows rewritten. */
static int gen_txn(gen *g, int nins, int nupd) {
  sqlite3_stmt *ins = NULL, *upd = NULL;
  uint8_t blob[2600];
  int rc = -1;
  if (sql(g->c, "BEGIN")) return -1;
  if (sqlite3_prepare_v2(g->c, "INSERT INTO t(b) VALUES(?)", -1, &ins, NULL) ||
      sqlite3_prepare_v2(g->c, "UPDATE t SET b=? WHERE id=?", -1, &upd, NULL))
    goto out;
  for (int i = 0; i < nins + nupd; i++) {
    size_t len = 50 + rnd() % 2500;
    for (size_t j = 0; j < len; j++) blob[j] = (uint8_t)rnd();
    sqlite3_stmt *st = i < nins ? ins : upd;
    sqlite3_bind_blob(st, 1, blob, (int)len, SQLITE_TRANSIENT);
    if (st == upd) sqlite3_bind_int64(st, 2, 1 + (int64_t)(rnd() % (uint64_t)g->maxid));
    if (sqlite3_step(st) != SQLITE_DONE) goto out;
    sqlite3_reset(st);
    if (st == ins) g->maxid++;
  }
  rc = sql(g->c, "COMMIT") ? -1 : note_commit(g);
out:
  sqlite3_finalize(ins);
  sqlite3_finalize(upd);
  if (rc) sql(g->c, "ROLLBACK");
  return rc;
}
static int gen_sql(gen *g, const char *q) { return sql(g->c, q) ? -1 : note_commit(g); }

/* Copy the WAL's bytes (the writer is still open); whole frames only. */
static int gen_snap(gen *g) {
  free(g->b);
  if (!(g->b = slurp(g->wal, &g->n)) || g->n < 32 || (g->n - 32) % fsz(g)) return -1;
  g->nf = (long)((g->n - 32) / fsz(g));
  return 0;
}
/* gen_open, then ntxn transactions of a fixed mix, then gen_snap. */
static int gen_make(gen *g, uint32_t ps, int ntxn) {
  if (gen_open(g, ps, NULL)) return -1;
  for (int i = 1; i < ntxn; i++)
    if (gen_txn(g, 1 + i % 5 * 2, 1 + i % 3)) return -1;
  return gen_snap(g);
}
static void gen_close(gen *g) {
  sqlite3_close(g->c);
  free(g->b);
}
/* A checkpoint by the writer: SQLite's count of frames in the WAL and of
** those backfilled. */
static int ckpt(const gen *g, int mode, int *nlog, int *nckpt) {
  *nlog = *nckpt = -1;
  return sqlite3_wal_checkpoint_v2(g->c, NULL, mode, nlog, nckpt);
}
static long sqlite_frames(const gen *g) {
  int nlog, nckpt;
  return ckpt(g, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt) ? -1 : nlog;
}

/* ------------------------------------------------ iterating frames */
#define MAXF 4096
typedef struct seen {
  uint32_t n, ncommit, commit_at[MAXTXN]; /* commit_at: index of each commit */
  uint32_t idx[MAXF], pgno[MAXF], commit[MAXF];
  ws_walpos after[MAXF];
  const uint8_t *file;    /* if set, every page is compared with its bytes */
  uint32_t ps, page_diffs, stop_after;
} seen;

static int on_frame(void *ud, const ws_frame *f, ws_err *err) {
  seen *s = ud;
  if (s->n >= MAXF) return ws_fail(err, WS_ENOMEM, "test: too many frames");
  s->idx[s->n] = f->idx;
  s->pgno[s->n] = f->pgno;
  s->commit[s->n] = f->commit;
  s->after[s->n] = f->after;
  if (f->commit && s->ncommit < MAXTXN) s->commit_at[s->ncommit++] = f->idx;
  if (s->file && memcmp(f->page, s->file + 32 + (size_t)(f->idx - 1) * (24 + s->ps) + 24, s->ps))
    s->page_diffs++;
  if (++s->n == s->stop_after) return ws_fail(err, WS_ESTOPPED, "test: enough");
  return WS_OK;
}
static seen *seen_new(void) {
  seen *s = calloc(1, sizeof(seen));
  if (!s) abort();
  return s;
}
/* The chain position before frame i (1-based) of a walk. */
static ws_walpos before(const seen *s, const ws_walhdr *h, uint32_t i) {
  return i > 1 ? s->after[i - 2] : ws_walpos_start(h);
}

/* Parse the header of `path` and iterate its cycle from the start. */
static int walk(const char *path, seen *s, ws_walhdr *h, ws_walpos *end, ws_err *err) {
  ws_wal *w;
  ws_walhdr hh;
  ws_walpos e;
  int rc = ws_wal_open(&w, path, err);
  if (rc) return rc;
  if (!h) h = &hh;
  if (!end) end = &e;
  if (!(rc = ws_wal_header(w, h, err))) {
    ws_walpos st = ws_walpos_start(h);
    rc = ws_wal_iter(w, h, &st, 0, on_frame, s, end, err);
  }
  ws_wal_close(w);
  return rc;
}
/* Frames in the valid prefix of a WAL image written to `path`; < 0 on error. */
static long prefix(const char *path, const uint8_t *b, size_t n) {
  ws_err err = WS_ERR_INIT;
  ws_walpos end;
  if (spit(path, b, n)) return -1;
  seen *s = seen_new();
  long r = walk(path, s, NULL, &end, &err) ? -1 : (long)s->n;
  if (r >= 0 && end.frame != s->n) r = -2;
  free(s);
  return r;
}

/* ---------------------------------------------------------- tests */
static void test_cksum_matches_reference(void) {
  static uint8_t d[4096];
  for (size_t i = 0; i < sizeof(d); i++) d[i] = (uint8_t)rnd();
  for (size_t n = 8; n <= sizeof(d); n = n * 3 + 8) {
    uint32_t a1 = (uint32_t)rnd(), a2 = 5, b1 = a1, b2 = a2;
    uint32_t r[2] = {a1, a2}, q[2] = {a1, a2};
    ws_wal_cksum(0, d, n & ~(size_t)7, &a1, &a2);
    ws_wal_cksum(1, d, n & ~(size_t)7, &b1, &b2);
    ref_cksum(0, d, n & ~(size_t)7, r);
    ref_cksum(1, d, n & ~(size_t)7, q);
    CHECK(a1 == r[0] && a2 == r[1] && b1 == q[0] && b2 == q[1]);
  }
}

static void test_header_parse_real_wal(void) {
  gen g;
  ws_err err = WS_ERR_INIT;
  ws_walhdr h, h2;
  ws_wal *w;
  CHECK(gen_make(&g, 4096, 3) == 0);
  CHECK_EQ(ws_walhdr_parse(&h, g.b, g.wal, &err), WS_OK);
  CHECK_EQ(h.magic, 0x377f0682u);  /* little-endian host */
  CHECK_EQ(h.version, 3007000);
  CHECK_EQ(h.page_size, 4096);
  CHECK_EQ(h.ckpt_seq, 0);
  CHECK_EQ(h.salt1, be32(g.b + 32 + 8));  /* the salts every frame carries */
  CHECK_EQ(h.salt2, be32(g.b + 32 + 12));
  uint32_t s[2] = {0, 0};
  ref_cksum(0, g.b, 24, s);
  CHECK(h.ck1 == s[0] && h.ck2 == s[1]);
  /* the same through a handle; a missing or short file is "nothing yet" */
  CHECK_EQ(ws_wal_open(&w, g.wal, &err), WS_OK);
  CHECK_EQ(ws_wal_header(w, &h2, &err), WS_OK);
  CHECK(memcmp(&h, &h2, sizeof(h)) == 0);
  CHECK_EQ(ws_wal_size(w), (int64_t)g.n);
  ws_wal_close(w);
  CHECK_EQ(ws_wal_open(&w, g.tmp, &err), WS_OK);
  CHECK_EQ(ws_wal_header(w, &h2, &err), WS_ENOTFOUND);
  CHECK_EQ(ws_wal_size(w), 0);
  CHECK(spit(g.tmp, g.b, 31) == 0);
  CHECK_EQ(ws_wal_header(w, &h2, &err), WS_ENOTFOUND);
  ws_wal_close(w);
  gen_close(&g);
}

static void test_header_rejects(void) {
  gen g;
  ws_walhdr h;
  uint8_t b[32], c[32];
  const char *path = "/data/app.db-wal";
  CHECK(gen_make(&g, 4096, 1) == 0);
  memcpy(b, g.b, 32);
  gen_close(&g);
  struct { uint32_t off, val; const char *what; } bad[] = {
    {0, 0x377f0681u, "magic"}, {0, 0x377f0684u, "magic"}, {0, 0, "magic"},
    {4, 3007001, "version"}, {4, 3007000u << 1, "version"},
    {8, 0, "page size"}, {8, 256, "page size"}, {8, 1000, "page size"},
    {8, 131072, "page size"}, {8, 65537, "page size"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ws_err err = WS_ERR_INIT;
    memcpy(c, b, 32);
    put_be32(c + bad[i].off, bad[i].val);
    seal_header(c, c[3] & 1);  /* only the field is wrong */
    CHECK_EQ(ws_walhdr_parse(&h, c, path, &err), WS_ECORRUPT);
    CHECK(strstr(err.msg, path) && strstr(err.msg, bad[i].what));
  }
  /* every single-bit flip of the 32 header bytes */
  for (int bit = 0; bit < 32 * 8; bit++) {
    ws_err err = WS_ERR_INIT;
    memcpy(c, b, 32);
    c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    CHECK_EQ(ws_walhdr_parse(&h, c, path, &err), WS_ECORRUPT);
    CHECK(strstr(err.msg, path) != NULL);
  }
}

/* All frames, commit sizes, chain values, mid-cycle starts, limits, stops;
** at least `minf` frames (the reader reads ~1 MiB chunks: 15 frames of 64K). */
static void iter_real_wal(uint32_t ps, int ntxn, long minf) {
  gen g;
  ws_err err = WS_ERR_INIT;
  ws_walhdr h;
  ws_walpos end, end2;
  ws_wal *w;
  CHECK(gen_make(&g, ps, ntxn) == 0);
  CHECK(g.nf >= minf);
  seen *s = seen_new(), *s2 = seen_new();
  s->file = g.b;
  s->ps = ps;
  CHECK_EQ(walk(g.wal, s, &h, &end, &err), WS_OK);
  CHECK_EQ(h.page_size, ps);
  CHECK_EQ(s->n, g.nf);
  CHECK_EQ(s->n, sqlite_frames(&g));
  CHECK_EQ(s->page_diffs, 0);
  CHECK_EQ(s->ncommit, g.ntxn);
  for (uint32_t i = 0; i < s->n; i++) {
    const uint8_t *fh = g.b + 32 + (size_t)i * fsz(&g);
    CHECK(s->idx[i] == i + 1 && s->after[i].frame == i + 1);
    CHECK_EQ(s->pgno[i], be32(fh));
    CHECK(s->after[i].ck1 == be32(fh + 16) && s->after[i].ck2 == be32(fh + 20));
  }
  for (int t = 0; t < g.ntxn; t++) CHECK_EQ(s->commit[s->commit_at[t] - 1], g.size[t]);
  CHECK_EQ(s->commit_at[g.ntxn - 1], s->n);  /* the file ends with a commit */
  CHECK_EQ(end.frame, s->n);
  CHECK(end.salt1 == h.salt1 && end.salt2 == h.salt2);
  CHECK_EQ(end.ck1, be32(g.b + g.n - fsz(&g) + 16));
  CHECK_EQ(end.ck2, be32(g.b + g.n - fsz(&g) + 20));

  CHECK_EQ(ws_wal_open(&w, g.wal, &err), WS_OK);
  CHECK_EQ(ws_wal_header(w, &h, &err), WS_OK);
  /* from the position after the 4th commit: exactly the rest */
  ws_walpos mid = s->after[s->commit_at[3] - 1];
  CHECK_EQ(ws_wal_iter(w, &h, &mid, 0, on_frame, s2, &end2, &err), WS_OK);
  CHECK_EQ(s2->n, s->n - mid.frame);
  CHECK_EQ(s2->idx[0], mid.frame + 1);
  CHECK(memcmp(s2->pgno, s->pgno + mid.frame, s2->n * sizeof(uint32_t)) == 0);
  CHECK(memcmp(&end2, &end, sizeof(end)) == 0);
  /* up to a frame limit */
  memset(s2, 0, sizeof(*s2));
  ws_walpos st = ws_walpos_start(&h);
  CHECK_EQ(ws_wal_iter(w, &h, &st, s->commit_at[2], on_frame, s2, &end2, &err), WS_OK);
  CHECK_EQ(s2->n, s->commit_at[2]);
  CHECK(memcmp(&end2, &s->after[s->commit_at[2] - 1], sizeof(end2)) == 0);
  /* a callback's stop comes back with the position after that frame */
  memset(s2, 0, sizeof(*s2));
  s2->stop_after = 3;
  CHECK_EQ(ws_wal_iter(w, &h, &st, 0, on_frame, s2, &end2, &err), WS_ESTOPPED);
  CHECK(s2->n == 3 && end2.frame == 3);
  /* a position of another cycle is refused */
  st.salt1 ^= 1;
  CHECK_EQ(ws_wal_iter(w, &h, &st, 0, NULL, NULL, &end2, &err), WS_EINVAL);
  ws_wal_close(w);
  free(s);
  free(s2);
  gen_close(&g);
}
static void test_iter_page_size_512(void) { iter_real_wal(512, 7, 20); }
static void test_iter_page_size_4096(void) { iter_real_wal(4096, 7, 10); }
static void test_iter_page_size_65536(void) { iter_real_wal(65536, 40, 40); }

/* A damaged frame k ends the valid prefix at k - 1 frames. */
static void test_iter_stops_at_corrupt_frame(void) {
  gen g;
  CHECK(gen_make(&g, 1024, 5) == 0);
  CHECK(g.nf > 6);
  uint8_t *c = malloc(g.n);
  uint32_t ps = g.ps, ks[] = {1, 2, (uint32_t)g.nf / 2, (uint32_t)g.nf};
  /* pgno, commit size, salts, checksums, page: first, middle, last byte */
  uint32_t offs[] = {0, 3, 4, 7, 8, 11, 12, 15, 16, 19, 20, 23, 24, 24 + ps / 2, 23 + ps};
  CHECK_EQ(prefix(g.tmp, g.b, g.n), g.nf);
  for (size_t ki = 0; ki < 4; ki++) {
    size_t fo = 32 + (size_t)(ks[ki] - 1) * fsz(&g);
    for (size_t oi = 0; oi < sizeof(offs) / sizeof(offs[0]); oi++) {
      memcpy(c, g.b, g.n);
      c[fo + offs[oi]] ^= (uint8_t)(1u << (oi % 8));
      CHECK_EQ(prefix(g.tmp, c, g.n), ks[ki] - 1);
    }
    /* salts of another cycle: the checksum chain still holds (it does not
    ** cover salts), so only the salt check can stop here */
    for (int which = 0; which < 2; which++) {
      memcpy(c, g.b, g.n);
      put_be32(c + fo + 8 + 4 * which, be32(c + fo + 8 + 4 * which) + 1);
      CHECK_EQ(prefix(g.tmp, c, g.n), ks[ki] - 1);
    }
    /* page number 0 under a correct chain */
    memcpy(c, g.b, g.n);
    put_be32(c + fo, 0);
    seal_frames(c, ps, (uint32_t)g.nf, 0);
    CHECK_EQ(prefix(g.tmp, c, g.n), ks[ki] - 1);
  }
  free(c);
  gen_close(&g);
}

/* One iter call over more valid frames than its read buffer grows to in
** ~30 reads (32 MiB here): the read size grows x4 per read from 16 frames
** and must stop at the buffer, not wrap to 0 and spin. */
static int count_frame(void *ud, const ws_frame *f, ws_err *err) {
  (void)f, (void)err;
  ++*(long *)ud;
  return WS_OK;
}
static void test_iter_long_valid_run(void) {
  const uint32_t ps = 32768, n = 1000;
  size_t len = WS_WAL_HDR_SIZE + (size_t)n * (24 + ps);
  uint8_t *b = calloc(1, len);
  CHECK(b != NULL);
  if (!b) return;
  put_be32(b, WS_WAL_MAGIC_BE);
  put_be32(b + 4, 3007000);
  put_be32(b + 8, ps);
  put_be32(b + 16, 0x1234), put_be32(b + 20, 0x5678);
  seal_header(b, 1);
  for (uint32_t i = 0; i < n; i++) {
    uint8_t *f = b + WS_WAL_HDR_SIZE + (size_t)i * (24 + ps);
    put_be32(f, i % 50 + 1);
    put_be32(f + 4, i % 10 == 9 ? 50 : 0);   /* a commit every 10 frames */
    memcpy(f + 8, b + 16, 8);
    memset(f + 24, (int)i, 64);
  }
  seal_frames(b, ps, n, 1);
  char path[64];
  snprintf(path, sizeof(path), "%s/long-wal", root);
  CHECK(spit(path, b, len) == 0);
  ws_wal *w = NULL;
  ws_walhdr h;
  ws_walpos end;
  ws_err err = WS_ERR_INIT;
  long count = 0;
  CHECK(ws_wal_open(&w, path, &err) == WS_OK);
  CHECK(ws_wal_header(w, &h, &err) == WS_OK);
  ws_walpos st = ws_walpos_start(&h);
  CHECK(ws_wal_iter(w, &h, &st, 0, count_frame, &count, &end, &err) == WS_OK);
  CHECK_EQ(count, (long)n);
  CHECK_EQ(end.frame, n);
  ws_wal_close(w);
  free(b);
}

/* Walk `path` with ws_wal_iter_known up to frame `to`. */
static int walk_known(const char *path, seen *s, uint32_t to, ws_walpos *end, ws_err *err) {
  ws_wal *w;
  ws_walhdr h;
  int rc = ws_wal_open(&w, path, err);
  if (rc) return rc;
  if (!(rc = ws_wal_header(w, &h, err))) {
    ws_walpos st = ws_walpos_start(&h);
    rc = ws_wal_iter_known(w, &h, &st, to, on_frame, s, end, err);
  }
  ws_wal_close(w);
  return rc;
}

/* The encode pass's re-read: same frames, pages and chain values as the
** verified walk; it does not recompute checksums, so a changed page goes
** through, but a changed chain value in any frame header shows in that
** frame's position (ship_write.c folds them all into a digest). */
static void test_iter_known(void) {
  gen g;
  ws_err err = WS_ERR_INIT;
  CHECK(gen_make(&g, 1024, 5) == 0);
  CHECK(g.nf > 6);
  CHECK(spit(g.tmp, g.b, g.n) == 0);
  seen *v = seen_new(), *k = seen_new();
  ws_walpos ve, ke;
  v->file = k->file = g.b;
  v->ps = k->ps = g.ps;
  CHECK_EQ(walk(g.tmp, v, NULL, &ve, &err), WS_OK);
  CHECK_EQ(walk_known(g.tmp, k, ve.frame, &ke, &err), WS_OK);
  CHECK_EQ(k->n, v->n);
  CHECK_EQ(k->page_diffs, 0);
  CHECK(memcmp(&ke, &ve, sizeof(ke)) == 0);
  for (uint32_t i = 0; i < v->n; i++) {
    CHECK_EQ(k->pgno[i], v->pgno[i]);
    CHECK_EQ(k->commit[i], v->commit[i]);
    CHECK(memcmp(&k->after[i], &v->after[i], sizeof(ws_walpos)) == 0);
  }
  /* stops at the frame limit, and at a frame of another cycle */
  free(k); k = seen_new();
  CHECK_EQ(walk_known(g.tmp, k, 3, &ke, &err), WS_OK);
  CHECK_EQ(k->n, 3);
  uint8_t *c = malloc(g.n);
  uint32_t mid = (uint32_t)g.nf / 2;
  size_t fo = 32 + (size_t)(mid - 1) * fsz(&g);
  memcpy(c, g.b, g.n);
  put_be32(c + fo + 8, be32(c + fo + 8) + 1);
  CHECK(spit(g.tmp, c, g.n) == 0);
  free(k); k = seen_new();
  CHECK_EQ(walk_known(g.tmp, k, ve.frame, &ke, &err), WS_OK);
  CHECK_EQ(k->n, mid - 1);
  /* a changed chain value in a middle header: that frame's position differs */
  memcpy(c, g.b, g.n);
  c[fo + 16] ^= 1;
  CHECK(spit(g.tmp, c, g.n) == 0);
  free(k); k = seen_new();
  CHECK_EQ(walk_known(g.tmp, k, ve.frame, &ke, &err), WS_OK);
  CHECK_EQ(k->n, v->n);
  CHECK(memcmp(&k->after[mid - 1], &v->after[mid - 1], sizeof(ws_walpos)) != 0);
  CHECK(memcmp(&k->after[mid], &v->after[mid], sizeof(ws_walpos)) == 0);
  free(c);
  free(v);
  free(k);
  gen_close(&g);
}

/* A case of test_iter_known_cache: write img to path, open a reader on it,
** scan (verify) frames up to scan_to into cc->v, then flip the page byte at
** offset `at` in the file (scratch: a copy of img's size).  The reader's
** buffer keeps the bytes it verified; the file has the change. */
typedef struct cache_case {
  ws_wal *w;
  ws_walhdr h;
  ws_walpos st, ve;
  seen *v;
} cache_case;

static void cache_case_open(cache_case *cc, const char *path, const uint8_t *img,
                            uint8_t *scratch, size_t n, uint32_t ps, uint32_t scan_to,
                            size_t at) {
  ws_err err = WS_ERR_INIT;
  CHECK(spit(path, img, n) == 0);
  CHECK_EQ(ws_wal_open(&cc->w, path, &err), WS_OK);
  CHECK_EQ(ws_wal_header(cc->w, &cc->h, &err), WS_OK);
  cc->st = ws_walpos_start(&cc->h);
  cc->v = seen_new();
  cc->v->file = img;
  cc->v->ps = ps;
  CHECK_EQ(ws_wal_iter(cc->w, &cc->h, &cc->st, scan_to, on_frame, cc->v, &cc->ve, &err), WS_OK);
  CHECK_EQ(cc->v->n, scan_to);
  CHECK_EQ(cc->v->page_diffs, 0);
  memcpy(scratch, img, n);
  scratch[at] ^= 0x5a;
  CHECK(spit(path, scratch, n) == 0);
}

static void cache_case_close(cache_case *cc) {
  free(cc->v);
  ws_wal_close(cc->w);
}

/* The encode pass right after a verifying pass on the same reader takes the
** frames that pass verified from its buffer, not from the file: a page
** changed in the file since is not seen.  Frames it did not verify in one
** run (a range longer than the buffer), or after ws_wal_read_frame reused
** the buffer, or past the last commit frame, or in a second known pass,
** come from the file.  A synthetic WAL of 4000 frames of 512
** bytes: the buffer holds ~1950. */
static void test_iter_known_cache(void) {
  gen g;
  ws_err err = WS_ERR_INIT;
  CHECK(gen_make(&g, 512, 2) == 0);
  const uint32_t ps = 512, nf = 4000, small = 100;
  size_t fs = 24 + ps, n = 32 + nf * fs;
  uint8_t *b = malloc(n), *c = malloc(n);
  memcpy(b, g.b, 32);
  for (uint32_t i = 0; i < nf; i++) {
    uint8_t *f = b + 32 + (size_t)i * fs;
    put_be32(f, 1 + i % 10);
    put_be32(f + 4, 10);                 /* every frame commits */
    memcpy(f + 8, b + 16, 8);            /* the header's salts */
    for (uint32_t k = 0; k < ps; k += 8) {
      uint64_t r = rnd();
      memcpy(f + 24 + k, &r, 8);
    }
  }
  seal_frames(b, ps, nf, (int)(be32(b) & 1));
  size_t p50 = 32 + 49 * fs + 24 + 7, plast = 32 + (size_t)(nf - 10) * fs + 24 + 7;
  for (int kase = 0; kase < 3; kase++) {
    cache_case cc;
    uint32_t to = kase == 1 ? nf : small;
    cache_case_open(&cc, g.tmp, b, c, n, ps, to, kase == 1 ? plast : p50);
    seen *k = seen_new();
    ws_walpos ke;
    k->file = b;
    k->ps = ps;
    uint8_t page[512];
    if (kase == 2)
      CHECK_EQ(ws_wal_read_frame(cc.w, &cc.h, 1, cc.st.ck1, cc.st.ck2, page, &err), WS_OK);
    CHECK_EQ(ws_wal_iter_known(cc.w, &cc.h, &cc.st, to, on_frame, k, &ke, &err), WS_OK);
    CHECK_EQ(k->n, to);
    CHECK(memcmp(&ke, &cc.ve, sizeof(ke)) == 0);
    for (uint32_t i = 0; i < k->n; i++)
      CHECK(memcmp(&k->after[i], &cc.v->after[i], sizeof(ws_walpos)) == 0);
    /* kase 0: served from the buffer; 1: longer than it; 2: after read_frame */
    CHECK_EQ(k->page_diffs, (kase == 0 ? 0u : 1u));
    free(k);
    cache_case_close(&cc);
  }
  /* Frames past the last commit frame are not served (an open transaction
  ** may rewrite them in place), and a cache serves one known pass only. */
  memcpy(c, b, n);
  for (uint32_t i = 90; i < small; i++) put_be32(c + 32 + (size_t)i * fs + 4, 0);
  seal_frames(c, ps, nf, (int)(be32(c) & 1));
  uint8_t *c2 = malloc(n);
  for (int kase = 0; kase < 2; kase++) {
    cache_case cc;                       /* a page byte of frame 95 or 50 */
    cache_case_open(&cc, g.tmp, c, c2, n, ps, small, kase == 0 ? 32 + 94 * fs + 24 + 7 : p50);
    seen *k = seen_new(), *k2 = seen_new();
    ws_walpos ke;
    k->file = k2->file = c;
    k->ps = k2->ps = ps;
    uint32_t to = kase == 0 ? small : 90;
    CHECK_EQ(ws_wal_iter_known(cc.w, &cc.h, &cc.st, to, on_frame, k, &ke, &err), WS_OK);
    CHECK_EQ(k->n, to);
    /* kase 0: past the last commit, read from the file; 1: from the buffer */
    CHECK_EQ(k->page_diffs, (kase == 0 ? 1u : 0u));
    CHECK_EQ(ws_wal_iter_known(cc.w, &cc.h, &cc.st, to, on_frame, k2, &ke, &err), WS_OK);
    CHECK_EQ(k2->page_diffs, 1);         /* the second pass reads the file */
    free(k);
    free(k2);
    cache_case_close(&cc);
  }
  free(c2);
  /* a fresh reader does see the change (the check above can fail) */
  seen *k = seen_new();
  ws_walpos ke;
  k->file = b;
  k->ps = ps;
  CHECK_EQ(walk_known(g.tmp, k, small, &ke, &err), WS_OK);
  CHECK_EQ(k->page_diffs, 1);
  free(k);
  free(b);
  free(c);
  gen_close(&g);
}

static void test_iter_truncated(void) {
  gen g;
  CHECK(gen_make(&g, 512, 4) == 0);
  CHECK(g.nf > 4);
  size_t cuts[] = {0, 1, 8, 23, 24, 25, fsz(&g) / 2, fsz(&g) - 1};
  for (long t = 0; t <= g.nf; t++)
    for (size_t ci = 0; ci < sizeof(cuts) / sizeof(cuts[0]); ci++) {
      size_t len = 32 + (size_t)t * fsz(&g) + cuts[ci];
      if (len <= g.n) CHECK_EQ(prefix(g.tmp, g.b, len), t);
    }
  CHECK_EQ(prefix(g.tmp, g.b, 20), -1);  /* shorter than a header */
  gen_close(&g);
}

/* After a RESTART checkpoint the next writer starts a new cycle at offset
** 32; the tail of the file still holds frames of the old cycle. */
static void test_iter_ignores_old_cycle(void) {
  gen g;
  ws_err err = WS_ERR_INIT;
  ws_walhdr h0, h1;
  int nlog, nckpt;
  CHECK(gen_make(&g, 4096, 8) == 0);
  CHECK_EQ(ws_walhdr_parse(&h0, g.b, g.wal, &err), WS_OK);
  long old = g.nf;
  size_t n0 = g.n;
  CHECK_EQ(ckpt(&g, SQLITE_CHECKPOINT_RESTART, &nlog, &nckpt), SQLITE_OK);
  CHECK(nlog == old && nckpt == old);
  int t0 = g.ntxn;
  CHECK(gen_txn(&g, 1, 0) == 0 && gen_txn(&g, 0, 1) == 0 && gen_snap(&g) == 0);
  CHECK_EQ(g.n, n0);  /* overwritten in place, not truncated */
  seen *s = seen_new();
  CHECK_EQ(walk(g.wal, s, &h1, NULL, &err), WS_OK);
  long fresh = sqlite_frames(&g);
  CHECK(fresh > 0 && fresh < old);
  CHECK_EQ(s->n, fresh);
  CHECK_EQ(s->ncommit, g.ntxn - t0);
  CHECK(h1.salt1 != h0.salt1);
  CHECK_EQ(h1.ckpt_seq, h0.ckpt_seq + 1);
  /* the frame after the new ones is a leftover of the old cycle */
  CHECK_EQ(be32(g.b + 32 + (size_t)fresh * fsz(&g) + 8), h0.salt1);
  free(s);
  gen_close(&g);
}

static void test_bigendian_checksums(void) {
  gen g;
  ws_err err = WS_ERR_INIT;
  ws_walhdr h;
  ws_walpos end;
  CHECK(gen_make(&g, 4096, 4) == 0);
  uint8_t *c = malloc(g.n);
  const uint8_t *last = c + g.n - fsz(&g);
  memcpy(c, g.b, g.n);
  put_be32(c, 0x377f0683u);
  seal_header(c, 1);
  seal_frames(c, g.ps, (uint32_t)g.nf, 1);
  CHECK(spit(g.tmp, c, g.n) == 0);
  seen *s = seen_new();
  CHECK_EQ(walk(g.tmp, s, &h, &end, &err), WS_OK);
  CHECK_EQ(h.magic, 0x377f0683u);
  CHECK_EQ(s->n, g.nf);
  CHECK_EQ(s->ncommit, g.ntxn);
  CHECK(end.ck1 == be32(last + 16) && end.ck2 == be32(last + 20));
  CHECK(end.ck1 != be32(g.b + g.n - fsz(&g) + 16));  /* really another chain */
  /* the little-endian file merely relabelled: header checksum mismatch */
  memcpy(c, g.b, g.n);
  put_be32(c, 0x377f0683u);
  CHECK(spit(g.tmp, c, g.n) == 0);
  CHECK_EQ(walk(g.tmp, s, &h, &end, &err), WS_ECORRUPT);
  CHECK(strstr(err.msg, g.tmp) && strstr(err.msg, "checksum"));
  /* a big-endian header over little-endian frames: no valid frame */
  seal_header(c, 1);
  CHECK_EQ(prefix(g.tmp, c, g.n), 0);
  free(s);
  free(c);
  gen_close(&g);
}

static void test_read_frame_verifies_chain(void) {
  gen g;
  ws_err err = WS_ERR_INIT;
  ws_walhdr h;
  ws_wal *w;
  ws_walpos p;
  uint8_t page[1024];
  CHECK(gen_make(&g, 1024, 4) == 0);
  CHECK(spit(g.tmp, g.b, g.n) == 0);
  seen *s = seen_new();
  CHECK_EQ(walk(g.tmp, s, &h, NULL, &err), WS_OK);
  CHECK(s->n >= 6);
  CHECK_EQ(ws_wal_open(&w, g.tmp, &err), WS_OK);
  CHECK_EQ(ws_wal_header(w, &h, &err), WS_OK);
  for (uint32_t i = 1; i <= s->n; i++) {
    p = before(s, &h, i);
    CHECK_EQ(ws_wal_read_frame(w, &h, i, p.ck1, p.ck2, page, &err), WS_OK);
    CHECK(memcmp(page, g.b + 32 + (i - 1) * fsz(&g) + 24, 1024) == 0);
    /* another chain value does not verify it, not even the one after it */
    CHECK_EQ(ws_wal_read_frame(w, &h, i, p.ck1 + 1, p.ck2, page, &err), WS_ECORRUPT);
    p = s->after[i - 1];
    CHECK_EQ(ws_wal_read_frame(w, &h, i, p.ck1, p.ck2, page, &err), WS_ECORRUPT);
  }
  /* frame k changed in place (same inode): k fails, its neighbours pass */
  uint32_t k = s->n / 2;
  size_t off = 32 + (k - 1) * fsz(&g) + 100;
  uint8_t x = g.b[off] ^ 0x40;
  int fd = open(g.tmp, O_WRONLY);
  CHECK(fd >= 0 && pwrite(fd, &x, 1, (off_t)off) == 1 && close(fd) == 0);
  memset(&err, 0, sizeof(err));
  p = before(s, &h, k);
  CHECK_EQ(ws_wal_read_frame(w, &h, k, p.ck1, p.ck2, page, &err), WS_ECORRUPT);
  CHECK(strstr(err.msg, g.tmp) != NULL);
  p = before(s, &h, k - 1);
  CHECK_EQ(ws_wal_read_frame(w, &h, k - 1, p.ck1, p.ck2, page, &err), WS_OK);
  p = before(s, &h, k + 1);
  CHECK_EQ(ws_wal_read_frame(w, &h, k + 1, p.ck1, p.ck2, page, &err), WS_OK);
  /* frame 0 and a frame past the end of the file */
  CHECK_EQ(ws_wal_read_frame(w, &h, 0, h.ck1, h.ck2, page, &err), WS_ECORRUPT);
  p = s->after[s->n - 1];
  CHECK_EQ(ws_wal_read_frame(w, &h, s->n + 1, p.ck1, p.ck2, page, &err), WS_ECORRUPT);
  ws_wal_close(w);
  free(s);
  gen_close(&g);
}

/* ------------------------------------------------ database scanner */
typedef struct pages { uint8_t *p; uint32_t n, cap, ps; } pages;

static int on_page(void *ud, uint32_t pgno, const uint8_t *page, ws_err *err) {
  pages *s = ud;
  if (pgno != s->n + 1 || s->n >= s->cap)
    return ws_fail(err, WS_EINVAL, "test: page %u out of order", pgno);
  memcpy(s->p + (size_t)s->n++ * s->ps, page, s->ps);
  return WS_OK;
}
/* The state at commit frame end_frame (0: the file alone) into out->p,
** asking for `extra` pages beyond its size. */
static int scan(pages *out, const gen *g, ws_wal *w, const ws_walhdr *h,
                uint32_t end_frame, uint32_t extra, ws_err *err) {
  ws_dbscan_src src = {-1, g->db, w, h, end_frame, 0, NULL, NULL};
  uint32_t np = 0;
  int rc;
  memset(out, 0, sizeof(*out));
  if ((src.dbfd = open(g->db, O_RDONLY)) < 0) return ws_fail(err, WS_EIO, "test: open");
  if (!(rc = ws_db_page_size(&src.page_size, src.dbfd, g->db, err)) &&
      !(rc = ws_dbscan_npages(&np, &src, err))) {
    np += extra;
    out->ps = src.page_size;
    out->cap = np;
    if (!(out->p = malloc((size_t)np * out->ps + 1))) abort();
    rc = ws_dbscan(&src, np, on_page, out, err);
    if (!rc && out->n != np) rc = ws_fail(err, WS_EINVAL, "test: %u of %u pages", out->n, np);
  }
  close(src.dbfd);
  return rc;
}
static long file_pages(const char *path, uint32_t ps) {
  struct stat st;
  return stat(path, &st) ? -1 : (long)(st.st_size / ps);
}

/* State A is backfilled into the file (a reader pinned at its end stops the
** checkpoint there), states B and C live in the WAL only; C shrinks the
** database (auto_vacuum).  Each scan must equal what SQLite itself has. */
static void test_dbscan_equals_sqlite(void) {
  gen g;
  ws_err err = WS_ERR_INIT;
  ws_walhdr h;
  ws_wal *w;
  sqlite3 *rd, *bk;
  sqlite3_backup *bu;
  int nlog, nckpt;
  size_t n;
  char bpath[128];
  pages pb, pc, pf, px;
  CHECK(gen_open(&g, 4096, "PRAGMA auto_vacuum=FULL") == 0);
  for (int i = 0; i < 6; i++) CHECK(gen_txn(&g, 8, i) == 0);
  CHECK(gen_snap(&g) == 0);
  long endA = g.nf;
  CHECK(sqlite3_open(g.db, &rd) == SQLITE_OK);
  CHECK(sql(rd, "BEGIN") == 0 && sql_int(rd, "SELECT count(*) FROM t") == g.maxid);
  for (int i = 0; i < 5; i++) CHECK(gen_txn(&g, 10, 6) == 0);
  CHECK(gen_snap(&g) == 0);
  long endB = g.nf;
  uint32_t sizeB = g.size[g.ntxn - 1];
  snprintf(bpath, sizeof(bpath), "%s/b.db", g.dir);
  CHECK(sqlite3_open(bpath, &bk) == SQLITE_OK);
  CHECK((bu = sqlite3_backup_init(bk, "main", g.c, "main")) != NULL);
  CHECK(sqlite3_backup_step(bu, -1) == SQLITE_DONE);
  CHECK(sqlite3_backup_finish(bu) == SQLITE_OK && sqlite3_close(bk) == SQLITE_OK);
  CHECK_EQ(ckpt(&g, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt), SQLITE_OK);
  CHECK_EQ(nlog, endB);
  CHECK_EQ(nckpt, endA);  /* some frames backfilled, some not */
  CHECK(sql(rd, "COMMIT") == 0 && sqlite3_close(rd) == SQLITE_OK);
  CHECK(gen_sql(&g, "DELETE FROM t WHERE id % 4 != 0") == 0);
  CHECK(gen_txn(&g, 3, 2) == 0);
  CHECK(g.size[g.ntxn - 1] < sizeB);
  CHECK(file_pages(g.db, 4096) < (long)sizeB);  /* B reaches past the file */

  seen *s = seen_new();
  CHECK_EQ(walk(g.wal, s, &h, NULL, &err), WS_OK);
  CHECK(gen_snap(&g) == 0);
  CHECK_EQ(s->n, g.nf);
  CHECK_EQ(s->ncommit, g.ntxn);
  uint32_t last = s->commit_at[s->ncommit - 1];
  CHECK_EQ(ws_wal_open(&w, g.wal, &err), WS_OK);
  CHECK_EQ(ws_wal_header(w, &h, &err), WS_OK);
  CHECK_EQ(scan(&pb, &g, w, &h, (uint32_t)endB, 0, &err), WS_OK);
  CHECK_EQ(scan(&pc, &g, w, &h, last, 0, &err), WS_OK);
  CHECK_EQ(pb.n, sizeB);
  CHECK_EQ(pc.n, g.size[g.ntxn - 1]);
  CHECK_EQ(scan(&px, &g, w, &h, s->n + 1, 0, &err), WS_ECORRUPT);  /* past the WAL */
  free(px.p);
  ws_wal_close(w);

  /* C: the file after SQLite checkpoints everything, byte for byte */
  CHECK_EQ(ckpt(&g, SQLITE_CHECKPOINT_TRUNCATE, &nlog, &nckpt), SQLITE_OK);
  CHECK_EQ(file_pages(g.wal, 1), 0);
  uint8_t *db = slurp(g.db, &n);
  CHECK(db && n == (size_t)pc.n * 4096);
  CHECK(memcmp(db, pc.p, n) == 0);
  /* the file alone; pages past its end read as zeros, as in SQLite */
  CHECK_EQ(scan(&pf, &g, NULL, NULL, 0, 2, &err), WS_OK);
  CHECK(pf.n == pc.n + 2 && memcmp(pf.p, db, n) == 0);
  for (size_t i = n; i < n + 2 * 4096; i++) CHECK(pf.p[i] == 0);
  free(db);
  /* B: SQLite's backup copies pages verbatim but, on page 1, bumps the
  ** change counter (24-27) and the version-valid-for number (92-95) */
  uint8_t *bb = slurp(bpath, &n);
  CHECK(bb && n == (size_t)pb.n * 4096);
  CHECK(memcmp(bb + 4096, pb.p + 4096, n - 4096) == 0);
  memset(bb + 24, 0, 4), memset(pb.p + 24, 0, 4);
  memset(bb + 92, 0, 4), memset(pb.p + 92, 0, 4);
  CHECK(memcmp(bb, pb.p, 4096) == 0);
  free(bb);

  free(s);
  free(pb.p);
  free(pc.p);
  free(pf.p);
  gen_close(&g);
}

/* The scanner's end frame must be a commit frame: a frame in the middle of
** a transaction names no database state. */
static void test_dbscan_refuses_noncommit_end(void) {
  gen g;
  ws_err err = WS_ERR_INIT;
  ws_walhdr h;
  ws_wal *w;
  pages px;
  CHECK(gen_make(&g, 1024, 3) == 0);
  seen *s = seen_new();
  CHECK_EQ(walk(g.wal, s, &h, NULL, &err), WS_OK);
  /* frame 1 of transaction 3: an earlier commit precedes it */
  uint32_t mid = s->commit_at[1] + 1;
  CHECK(mid < s->commit_at[2] && s->commit[mid - 1] == 0);
  CHECK_EQ(ws_wal_open(&w, g.wal, &err), WS_OK);
  CHECK_EQ(ws_wal_header(w, &h, &err), WS_OK);
  CHECK_EQ(scan(&px, &g, w, &h, s->commit_at[1], 0, &err), WS_OK);
  CHECK_EQ(px.n, g.size[1]);
  free(px.p);
  px.p = NULL;
  int rc = scan(&px, &g, w, &h, mid, 0, &err);
  free(px.p);
  ws_wal_close(w);
  free(s);
  gen_close(&g);
  CHECK_EQ(rc, WS_ECORRUPT);
}

int main(void) {
  if (!mkdtemp(root) || atexit(rm_root)) return 2;
  RUN(test_cksum_matches_reference);
  RUN(test_header_parse_real_wal);
  RUN(test_header_rejects);
  RUN(test_iter_page_size_512);
  RUN(test_iter_page_size_4096);
  RUN(test_iter_page_size_65536);
  RUN(test_iter_stops_at_corrupt_frame);
  RUN(test_iter_long_valid_run);
  RUN(test_iter_truncated);
  RUN(test_iter_known);
  RUN(test_iter_known_cache);
  RUN(test_iter_ignores_old_cycle);
  RUN(test_bigendian_checksums);
  RUN(test_read_frame_verifies_chain);
  RUN(test_dbscan_equals_sqlite);
  RUN(test_dbscan_refuses_noncommit_end);
  T_EXIT();
}
