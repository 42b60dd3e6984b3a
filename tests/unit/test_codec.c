/*
** Unit tests for src/codec.c.  Objects are encoded into memory while the
** generator records a "trace" (a crc32 chained over every event a decoder
** should report); decoding must reproduce the same trace, for any split of
** the input.  Corruption tests flip bits, truncate, and hand-build objects
** whose crcs are right but whose records break a rule.
*/
/* t.h's RUN puts two statements after an else on one line, which gcc 12
** flags under -Wall; the harness is shared, so silence it here. */
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#include "t.h"
#include "codec.h"
#include "common.h"

#include <zlib.h>

/* ---------------------------------------------------------- helpers */
static uint64_t rng = 42;
static uint64_t rnd(void) {
  uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

typedef struct membuf { uint8_t *p; size_t n, cap; int fail_at, calls; } membuf;

static int mem_write(void *ud, const void *buf, size_t len, ws_err *err) {
  membuf *m = ud;
  if (m->fail_at && ++m->calls == m->fail_at)
    return ws_fail(err, WS_EIO, "write test: injected failure");
  if (m->n + len > m->cap) {
    size_t cap = m->cap ? m->cap : 4096;
    while (cap < m->n + len) cap *= 2;
    m->p = realloc(m->p, cap);
    if (!m->p) abort();
    m->cap = cap;
  }
  memcpy(m->p + m->n, buf, len);
  m->n += len;
  return WS_OK;
}

/* The trace: what a decoder reports, chained into one crc32 + counts. */
typedef struct trace {
  uint32_t crc;
  uint64_t txns, pages, ends, headers, trailers;
  uint64_t stop_after_pages;  /* on_page returns WS_ESTOPPED past this */
} trace;

static void tr_add(trace *t, const void *p, size_t n) {
  t->crc = (uint32_t)crc32(t->crc, p, (uInt)n);
}
static void tr_u64(trace *t, uint64_t v) { tr_add(t, &v, sizeof(v)); }

static void tr_begin(trace *t, uint64_t txid, int64_t time_ms, uint32_t dbp,
                     uint32_t np) {
  tr_u64(t, 'T'); tr_u64(t, txid); tr_u64(t, (uint64_t)time_ms);
  tr_u64(t, dbp); tr_u64(t, np);
  t->txns++;
}
static void tr_page(trace *t, uint32_t pgno, const uint8_t *d, uint32_t ps) {
  tr_u64(t, 'P'); tr_u64(t, pgno); tr_add(t, d, ps);
  t->pages++;
}
static void tr_end(trace *t, uint64_t txid, int has_sum, uint64_t sum) {
  tr_u64(t, 'E'); tr_u64(t, txid); tr_u64(t, (uint64_t)has_sum);
  tr_u64(t, sum);
  t->ends++;
}

static uint32_t cur_ps;  /* page size of the object being decoded */

static int cb_header(void *ud, const ws_objhdr *h, ws_err *err) {
  (void)err;
  ((trace *)ud)->headers++;
  cur_ps = h->page_size;
  return 0;
}
static int cb_begin(void *ud, uint64_t txid, int64_t time_ms, uint32_t dbp,
                    uint32_t np, ws_err *err) {
  (void)err;
  tr_begin(ud, txid, time_ms, dbp, np);
  return 0;
}
static int cb_page(void *ud, uint32_t pgno, const uint8_t *d, ws_err *err) {
  trace *t = ud;
  if (t->stop_after_pages && t->pages >= t->stop_after_pages)
    return ws_fail(err, WS_ESTOPPED, "enough pages");
  tr_page(t, pgno, d, cur_ps);
  return 0;
}
static int cb_end(void *ud, uint64_t txid, int has_sum, uint64_t sum,
                  ws_err *err) {
  (void)err;
  tr_end(ud, txid, has_sum, sum);
  return 0;
}
static int cb_trailer(void *ud, const ws_objtrl *t, ws_err *err) {
  (void)t; (void)err;
  ((trace *)ud)->trailers++;
  return 0;
}

/* Decode buf in chunks of `chunk` bytes (0 = at once), then finish. */
static int decode(const uint8_t *buf, size_t n, size_t chunk, trace *t,
                  ws_err *err) {
  ws_dec_cb cb = {t, cb_header, cb_begin, cb_page, cb_end, cb_trailer, NULL};
  ws_dec *d = NULL;
  int rc = ws_dec_new(&d, &cb, "seg/test.seg", err);
  if (rc) return rc;
  if (chunk == 0) chunk = n ? n : 1;
  for (size_t off = 0; off < n && rc == WS_OK; off += chunk)
    rc = ws_dec_feed(d, buf + off, n - off < chunk ? n - off : chunk, err);
  if (rc == WS_OK) rc = ws_dec_finish(d, err);
  ws_dec_free(d);
  return rc;
}

enum { PG_RANDOM, PG_TEXT, PG_MIXED };

static void fill_page(uint8_t *p, uint32_t ps, int kind) {
  if (kind == PG_MIXED) kind = (rnd() & 1) ? PG_RANDOM : PG_TEXT;
  if (kind == PG_RANDOM) {
    for (uint32_t i = 0; i < ps; i++) p[i] = (uint8_t)rnd();
  } else {
    static const char words[] = "insert into t values(hello, world, 42); ";
    uint32_t salt = (uint32_t)rnd();
    for (uint32_t i = 0; i < ps; i++) p[i] = (uint8_t)words[i % 40];
    ws_put32(p + 8, salt);
  }
}

typedef struct spec {
  int kind;            /* WS_KIND_* */
  uint32_t ps;
  uint64_t first;
  uint32_t ntxn;
  uint32_t max_pages;  /* pages per transaction: 1..max_pages */
  int pages;           /* PG_* */
  int level;
} spec;

/* Encode an object described by sp into m; the expected trace goes to t. */
static int make_obj(membuf *m, const spec *sp, trace *t, ws_err *err) {
  ws_objhdr h;
  memset(&h, 0, sizeof(h));
  uint32_t *np = calloc(sp->ntxn, sizeof(uint32_t));
  uint32_t *dbp = calloc(sp->ntxn, sizeof(uint32_t));
  uint8_t *page = malloc(sp->ps);
  ws_enc *e = NULL;
  int rc = WS_OK;
  uint32_t size = 1 + (uint32_t)(rnd() % 50);
  for (uint32_t i = 0; i < sp->ntxn; i++) {
    np[i] = 1 + (uint32_t)(rnd() % sp->max_pages);
    size += (uint32_t)(rnd() % 8);
    dbp[i] = sp->kind == WS_KIND_SNAPSHOT ? np[i] : size;
    h.npages += np[i];
  }
  h.kind = (uint32_t)sp->kind;
  h.page_size = sp->ps;
  h.txid_first = sp->first;
  h.txid_last = sp->first + sp->ntxn - 1;
  h.ntxn = sp->ntxn;
  h.db_pages = dbp[sp->ntxn - 1];
  h.time_first_ms = 1700000000000;
  h.time_last_ms = h.time_first_ms + sp->ntxn;
  h.lineage = 0xfeedfacecafebeefull;
  h.dbsum_before = sp->kind == WS_KIND_SNAPSHOT ? 0 : 0x1111;
  h.pos.salt1 = 7;
  h.pos.frame = 99;
  uint64_t sum = 0;
  if ((rc = ws_enc_new(&e, &h, sp->level, mem_write, m, err))) goto out;
  for (uint32_t i = 0; i < sp->ntxn; i++) {
    uint64_t txid = sp->first + i;
    int64_t tm = h.time_first_ms + i;
    if ((rc = ws_enc_txn_begin(e, txid, tm, dbp[i], np[i], err))) goto out;
    tr_begin(t, txid, tm, dbp[i], np[i]);
    for (uint32_t j = 0; j < np[i]; j++) {
      uint32_t pgno = sp->kind == WS_KIND_SNAPSHOT
                          ? j + 1 : 1 + (uint32_t)(rnd() % (dbp[i] + 3));
      fill_page(page, sp->ps, sp->pages);
      if ((rc = ws_enc_page(e, pgno, page, err))) goto out;
      tr_page(t, pgno, page, sp->ps);
    }
    int has_sum = (i % 2 == 0) || i + 1 == sp->ntxn;
    sum = rnd();
    if ((rc = ws_enc_txn_end(e, has_sum, sum, err))) goto out;
    tr_end(t, txid, has_sum, has_sum ? sum : 0);
  }
  if ((rc = ws_enc_finish(e, sum, err))) goto out;
  if (ws_enc_bytes_out(e) != m->n) rc = WS_ERROR;
out:
  ws_enc_free(e);
  free(np);
  free(dbp);
  free(page);
  return rc;
}

/* Encodings of the blocks of a well-formed object: counts[0] raw, [1] zlib. */
static void count_blocks(const membuf *m, uint64_t counts[2]) {
  counts[0] = counts[1] = 0;
  size_t off = WS_OBJHDR_SIZE;
  while (off + WS_BLOCK_HDR_SIZE <= m->n && m->p[off] == 'B') {
    counts[m->p[off + 1] & 1]++;
    off += WS_BLOCK_HDR_SIZE + ws_get32(m->p + off + 8);
  }
}

/* ------------------------------------------------------------ roundtrips */

static void test_segment_roundtrip_page_sizes(void) {
  static const uint32_t sizes[] = {512, 4096, 65536};
  for (int s = 0; s < 3; s++) {
    for (int level = 0; level <= 6; level += 6) {
      spec sp = {WS_KIND_SEGMENT, sizes[s], 1000, 6,
                 sizes[s] == 65536 ? 12 : sizes[s] == 512 ? 1000 : 300, PG_MIXED, level};
      membuf m = {0};
      trace want = {0}, got = {0};
      ws_err err = WS_ERR_INIT;
      CHECK_EQ(make_obj(&m, &sp, &want, &err), WS_OK);
      CHECK_EQ(decode(m.p, m.n, 0, &got, &err), WS_OK);
      CHECK_EQ(got.headers, 1);
      CHECK_EQ(got.trailers, 1);
      CHECK_EQ(got.txns, 6);
      CHECK_EQ(got.ends, 6);
      CHECK_EQ(got.pages, want.pages);
      CHECK(got.crc == want.crc);
      uint64_t c[2];
      count_blocks(&m, c);
      CHECK(c[0] + c[1] >= 2);          /* several blocks were cut */
      if (level == 0) CHECK_EQ(c[1], 0);
      free(m.p);
    }
  }
}

static void test_snapshot_roundtrip(void) {
  spec sp = {WS_KIND_SNAPSHOT, 4096, 77, 1, 600, PG_TEXT, 6};
  membuf m = {0};
  trace want = {0}, got = {0};
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(make_obj(&m, &sp, &want, &err), WS_OK);
  CHECK_EQ(decode(m.p, m.n, 0, &got, &err), WS_OK);
  CHECK_EQ(got.txns, 1);
  CHECK_EQ(got.pages, want.pages);
  CHECK(got.crc == want.crc);
  ws_objhdr h;
  CHECK_EQ(ws_objhdr_parse(&h, m.p, m.n, "snap/x", &err), WS_OK);
  CHECK_EQ(h.kind, WS_KIND_SNAPSHOT);
  CHECK_EQ(h.txid_first, 77);
  CHECK_EQ(h.npages, h.db_pages);
  CHECK(h.lineage == 0xfeedfacecafebeefull);
  CHECK_EQ(h.pos.frame, 99);
  ws_objtrl t;
  CHECK_EQ(ws_objtrl_parse(&t, m.p + m.n - WS_OBJTRL_SIZE, WS_OBJTRL_SIZE,
                           "snap/x", &err), WS_OK);
  CHECK_EQ(t.npages, h.npages);
  free(m.p);
}

static void test_feed_one_byte_matches_whole(void) {
  spec sp = {WS_KIND_SEGMENT, 1024, 5, 4, 40, PG_MIXED, 6};
  membuf m = {0};
  trace want = {0};
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(make_obj(&m, &sp, &want, &err), WS_OK);
  static const size_t chunks[] = {0, 1, 2, 7, 16, 127, 4093, 65536};
  for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
    trace got = {0};
    CHECK_EQ(decode(m.p, m.n, chunks[i], &got, &err), WS_OK);
    CHECK(got.crc == want.crc);
    CHECK_EQ(got.pages, want.pages);
    CHECK_EQ(got.trailers, 1);
  }
  free(m.p);
}

static void test_random_pages_stored_raw(void) {
  spec sp = {WS_KIND_SEGMENT, 4096, 1, 3, 200, PG_RANDOM, 9};
  membuf m = {0};
  trace want = {0};
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(make_obj(&m, &sp, &want, &err), WS_OK);
  uint64_t c[2];
  count_blocks(&m, c);
  CHECK(c[0] >= 1);
  CHECK_EQ(c[1], 0);
  free(m.p);
}

static void test_text_pages_deflated(void) {
  spec sp = {WS_KIND_SEGMENT, 4096, 1, 3, 200, PG_TEXT, 1};
  membuf m = {0};
  trace want = {0}, got = {0};
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(make_obj(&m, &sp, &want, &err), WS_OK);
  uint64_t c[2];
  count_blocks(&m, c);
  CHECK_EQ(c[0], 0);
  CHECK(c[1] >= 1);
  CHECK(m.n < want.pages * 4096 / 4);
  CHECK_EQ(decode(m.p, m.n, 0, &got, &err), WS_OK);
  CHECK(got.crc == want.crc);
  free(m.p);
}

/* ------------------------------------------------------------ corruption */

/* Every single-bit flip of obj must be refused as corrupt. */
static int flips_detected(const membuf *m, size_t step) {
  uint8_t *b = malloc(m->n);
  int ok = 1;
  for (size_t bit = 0; bit < m->n * 8 && ok; bit += step) {
    memcpy(b, m->p, m->n);
    b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    trace got = {0};
    ws_err err = WS_ERR_INIT;
    if (decode(b, m->n, 0, &got, &err) != WS_ECORRUPT) {
      printf("  bit %zu of %zu not detected\n", bit, m->n * 8);
      ok = 0;
    } else if (!strstr(err.msg, "seg/test.seg")) {
      printf("  bit %zu: message does not name the object: %s\n", bit,
             err.msg);
      ok = 0;
    }
  }
  free(b);
  return ok;
}

static void test_every_bit_flip_detected(void) {
  for (int level = 0; level <= 6; level += 6) {
    spec sp = {WS_KIND_SEGMENT, 512, 3, 2, 3, PG_TEXT, level};
    membuf m = {0};
    trace want = {0};
    ws_err err = WS_ERR_INIT;
    CHECK_EQ(make_obj(&m, &sp, &want, &err), WS_OK);
    CHECK(flips_detected(&m, 1));
    free(m.p);
  }
  /* A larger multi-block object: a spread sample of ~500 positions. */
  spec sp = {WS_KIND_SEGMENT, 4096, 3, 4, 200, PG_MIXED, 6};
  membuf m = {0};
  trace want = {0};
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(make_obj(&m, &sp, &want, &err), WS_OK);
  CHECK(flips_detected(&m, m.n * 8 / 500 | 1));
  free(m.p);
}

static void test_truncation_detected(void) {
  spec sp = {WS_KIND_SEGMENT, 512, 3, 3, 4, PG_MIXED, 6};
  membuf m = {0};
  trace want = {0};
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(make_obj(&m, &sp, &want, &err), WS_OK);
  for (size_t n = 0; n < m.n; n++) {
    trace got = {0};
    CHECK_EQ(decode(m.p, n, (n % 3) + 1, &got, &err), WS_ECORRUPT);
  }
  trace got = {0};
  CHECK_EQ(decode(m.p, m.n - 1, 0, &got, &err), WS_ECORRUPT);
  CHECK(strstr(err.msg, "truncated (no trailer)") != NULL);
  /* and bytes after the trailer */
  uint8_t *b = malloc(m.n + 1);
  memcpy(b, m.p, m.n);
  b[m.n] = 0;
  CHECK_EQ(decode(b, m.n + 1, 0, &got, &err), WS_ECORRUPT);
  CHECK(strstr(err.msg, "after the trailer") != NULL);
  free(b);
  free(m.p);
}

static ws_objhdr good_header(void) {
  ws_objhdr h;
  memset(&h, 0, sizeof(h));
  h.kind = WS_KIND_SEGMENT;
  h.page_size = 4096;
  h.txid_first = 2;
  h.txid_last = 9;
  h.ntxn = 8;
  h.db_pages = 10;
  h.npages = 8;
  return h;
}

/* Encode h (with a fresh crc) and parse it; returns the parse code. */
static int reparse(const ws_objhdr *h, ws_err *err) {
  uint8_t b[WS_OBJHDR_SIZE];
  ws_objhdr out;
  ws_objhdr_encode(b, h);
  return ws_objhdr_parse(&out, b, sizeof(b),
                         "seg/0000000000000002-0000000000000009.seg", err);
}

static void test_header_validation(void) {
  ws_err err = WS_ERR_INIT;
  ws_objhdr h = good_header();
  CHECK_EQ(reparse(&h, &err), WS_OK);
  static const uint32_t bad_ps[] = {0, 256, 1000, 4097, 131072};
  for (int i = 0; i < 5; i++) {
    h = good_header();
    h.page_size = bad_ps[i];
    CHECK_EQ(reparse(&h, &err), WS_ECORRUPT);
    CHECK(strstr(err.msg, "page size") != NULL);
  }
  h = good_header(); h.txid_first = 10;
  CHECK_EQ(reparse(&h, &err), WS_ECORRUPT);
  CHECK(strstr(err.msg, "txid_first 10 > txid_last 9") != NULL);
  CHECK(strstr(err.msg, "seg/0000000000000002-0000000000000009.seg") != NULL);
  h = good_header(); h.txid_first = 0; h.ntxn = 10;
  CHECK_EQ(reparse(&h, &err), WS_ECORRUPT);
  h = good_header(); h.ntxn = 7;
  CHECK_EQ(reparse(&h, &err), WS_ECORRUPT);
  h = good_header(); h.kind = 3;
  CHECK_EQ(reparse(&h, &err), WS_ECORRUPT);
  h = good_header(); h.db_pages = 0x80000000u;
  CHECK_EQ(reparse(&h, &err), WS_ECORRUPT);
  h = good_header(); h.kind = WS_KIND_SNAPSHOT;   /* 8 txns */
  CHECK_EQ(reparse(&h, &err), WS_ECORRUPT);
  h.txid_first = h.txid_last = 9; h.ntxn = 1; h.db_pages = 8;
  CHECK_EQ(reparse(&h, &err), WS_OK);
  h.npages = 7;                                    /* snapshot: all pages */
  CHECK_EQ(reparse(&h, &err), WS_ECORRUPT);

  /* Raw byte damage: crc, magic, newer version, short buffer. */
  uint8_t b[WS_OBJHDR_SIZE];
  ws_objhdr out;
  h = good_header();
  ws_objhdr_encode(b, &h);
  b[20] ^= 4;
  CHECK_EQ(ws_objhdr_parse(&out, b, sizeof(b), "seg/a.seg", &err),
           WS_ECORRUPT);
  CHECK(strstr(err.msg, "seg/a.seg: header crc mismatch") != NULL);
  ws_objhdr_encode(b, &h);
  ws_put16(b + 8, WS_FORMAT_VERSION + 1);
  ws_put32(b + 124, (uint32_t)crc32(0, b, 124));
  CHECK_EQ(ws_objhdr_parse(&out, b, sizeof(b), "seg/a.seg", &err),
           WS_ECORRUPT);
  CHECK(strstr(err.msg, "is newer than this walship supports") != NULL);
  ws_objhdr_encode(b, &h);
  b[0] = 'X';
  CHECK_EQ(ws_objhdr_parse(&out, b, sizeof(b), "seg/a.seg", &err),
           WS_ECORRUPT);
  ws_objhdr_encode(b, &h);
  CHECK_EQ(ws_objhdr_parse(&out, b, 127, "seg/a.seg", &err), WS_ECORRUPT);

  /* The encoder refuses what the parser would refuse. */
  ws_enc *e = NULL;
  membuf m = {0};
  h = good_header(); h.page_size = 1000;
  CHECK_EQ(ws_enc_new(&e, &h, 6, mem_write, &m, &err), WS_EINVAL);
  h = good_header();
  CHECK_EQ(ws_enc_new(&e, &h, 10, mem_write, &m, &err), WS_EINVAL);
  CHECK(e == NULL);
  CHECK_EQ(m.n, 0);
}

/* Header + one block header (+ raw bytes) built by hand. */
static size_t hand_block(uint8_t *b, int enc, uint32_t raw_len,
                         uint32_t stored_len, uint32_t crc) {
  ws_objhdr h = good_header();
  ws_objhdr_encode(b, &h);
  uint8_t *k = b + WS_OBJHDR_SIZE;
  k[0] = 'B'; k[1] = (uint8_t)enc; k[2] = k[3] = 0;
  ws_put32(k + 4, raw_len);
  ws_put32(k + 8, stored_len);
  ws_put32(k + 12, crc);
  return WS_OBJHDR_SIZE + WS_BLOCK_HDR_SIZE;
}

/* The block header alone (no data fed) must already be refused. */
static int block_header_refused(int enc, uint32_t raw_len, uint32_t stored,
                                ws_err *err) {
  uint8_t b[WS_OBJHDR_SIZE + WS_BLOCK_HDR_SIZE];
  size_t n = hand_block(b, enc, raw_len, stored, 0);
  ws_dec *d = NULL;
  if (ws_dec_new(&d, NULL, "seg/x.seg", err)) return 0;
  int rc = ws_dec_feed(d, b, n, err);
  ws_dec_free(d);
  return rc == WS_ECORRUPT && strstr(err->msg, "block 0") != NULL;
}

static void test_absurd_block_length_refused(void) {
  ws_err err = WS_ERR_INIT;
  CHECK(block_header_refused(0, 0xffffffffu, 0xffffffffu, &err));
  CHECK(block_header_refused(1, 100, 0xffffffffu, &err));
  CHECK(block_header_refused(1, WS_BLOCK_MAX + 1, 100, &err));
  CHECK(block_header_refused(0, 0, 0, &err));
  CHECK(block_header_refused(0, 100, 101, &err));   /* raw: stored > raw */
  CHECK(block_header_refused(7, 100, 100, &err));   /* unknown encoding */

  /* A deflate "bomb": claims 100 raw bytes, inflates to 100000. */
  static uint8_t zeros[100000], b[4096];
  uLongf zl = sizeof(b) - 200;
  CHECK_EQ(compress2(b + 200, &zl, zeros, sizeof(zeros), 9), Z_OK);
  size_t n = hand_block(b, 1, 100, (uint32_t)zl, 0);
  memmove(b + n, b + 200, zl);
  ws_dec *d = NULL;
  CHECK_EQ(ws_dec_new(&d, NULL, "seg/x.seg", &err), WS_OK);
  int rc = ws_dec_feed(d, b, n + zl, &err);
  ws_dec_free(d);
  CHECK_EQ(rc, WS_ECORRUPT);
  CHECK(strstr(err.msg, "inflates past raw_len") != NULL);
}

/* Build an object around hand-written record bytes with valid crcs. */
static void hand_obj(membuf *m, const ws_objhdr *h, const uint8_t *rec,
                     size_t n, uint64_t dbsum) {
  uint8_t hb[WS_OBJHDR_SIZE], bh[WS_BLOCK_HDR_SIZE], tb[WS_OBJTRL_SIZE];
  ws_objhdr_encode(hb, h);
  mem_write(m, hb, sizeof(hb), NULL);
  bh[0] = 'B'; bh[1] = 0; bh[2] = bh[3] = 0;
  ws_put32(bh + 4, (uint32_t)n);
  ws_put32(bh + 8, (uint32_t)n);
  ws_put32(bh + 12, (uint32_t)crc32(0, rec, (uInt)n));
  mem_write(m, bh, sizeof(bh), NULL);
  mem_write(m, rec, n, NULL);
  ws_objtrl t = {h->ntxn, h->npages, n, dbsum,
                 (uint32_t)crc32(0, m->p, (uInt)m->n)};
  ws_objtrl_encode(tb, &t);
  mem_write(m, tb, sizeof(tb), NULL);
}

static size_t rec_t(uint8_t *p, uint64_t txid, uint32_t dbp, uint32_t np) {
  p[0] = 'T'; ws_put64(p + 1, txid); ws_put64(p + 9, 0);
  ws_put32(p + 17, dbp); ws_put32(p + 21, np);
  return 25;
}
static size_t rec_p(uint8_t *p, uint32_t pgno) {
  p[0] = 'P'; ws_put32(p + 1, pgno); memset(p + 5, 0xab, 512);
  return 517;
}
static size_t rec_e(uint8_t *p, uint8_t flags, uint64_t sum) {
  p[0] = 'E'; p[1] = flags; ws_put64(p + 2, sum);
  return 10;
}

/* One-transaction object (txid 5, db_pages 3) with two pages a, b. */
static int one_txn(int kind, uint64_t txid, uint32_t a, uint32_t b,
                   uint8_t flags, uint64_t esum, uint64_t tsum,
                   const char *want) {
  static uint8_t rec[4096];
  ws_objhdr h = good_header();
  h.kind = (uint32_t)kind;
  h.page_size = 512;
  h.txid_first = h.txid_last = 5;
  h.ntxn = 1;
  h.db_pages = 2;
  h.npages = 2;
  size_t n = rec_t(rec, txid, 2, 2);
  n += rec_p(rec + n, a);
  n += rec_p(rec + n, b);
  n += rec_e(rec + n, flags, esum);
  membuf m = {0};
  hand_obj(&m, &h, rec, n, tsum);
  trace got = {0};
  ws_err err = WS_ERR_INIT;
  int rc = decode(m.p, m.n, 0, &got, &err);
  free(m.p);
  if (!want) return rc == WS_OK;
  if (rc != WS_ECORRUPT || !strstr(err.msg, want)) {
    printf("  rc %d msg \"%s\", wanted \"%s\"\n", rc, err.msg, want);
    return 0;
  }
  return 1;
}

static void test_record_validation(void) {
  CHECK(one_txn(WS_KIND_SEGMENT, 5, 2, 1, 1, 9, 9, NULL));
  CHECK(one_txn(WS_KIND_SNAPSHOT, 5, 1, 2, 1, 9, 9, NULL));
  CHECK(one_txn(WS_KIND_SEGMENT, 6, 1, 2, 1, 9, 9, "transaction 6 where"));
  CHECK(one_txn(WS_KIND_SEGMENT, 5, 0, 2, 1, 9, 9, "page number 0"));
  CHECK(one_txn(WS_KIND_SEGMENT, 5, 1, 0x80000000u, 1, 9, 9, "page number"));
  CHECK(one_txn(WS_KIND_SNAPSHOT, 5, 2, 1, 1, 9, 9, "out of order"));
  CHECK(one_txn(WS_KIND_SEGMENT, 5, 1, 2, 1, 9, 8, "trailer dbsum"));
  CHECK(one_txn(WS_KIND_SEGMENT, 5, 1, 2, 0, 9, 8, NULL)); /* no sum */
  CHECK(one_txn(WS_KIND_SEGMENT, 5, 1, 2, 3, 9, 9, "unknown flags"));

  /* Page before any transaction; unknown record type; page-count lies. */
  static uint8_t rec[4096];
  ws_objhdr h = good_header();
  h.page_size = 512; h.txid_first = h.txid_last = 5; h.ntxn = 1;
  h.db_pages = 2; h.npages = 1;
  struct { size_t n; const char *want; } cases[4];
  uint8_t *bufs[4];
  for (int i = 0; i < 4; i++) bufs[i] = rec + i * 1024;
  cases[0].n = rec_p(bufs[0], 1);
  cases[0].n += rec_t(bufs[0] + cases[0].n, 5, 2, 1);
  cases[0].want = "outside a transaction";
  cases[1].n = rec_t(bufs[1], 5, 2, 1);
  bufs[1][cases[1].n++] = 'Q';
  cases[1].want = "unknown record type 0x51";
  cases[2].n = rec_t(bufs[2], 5, 2, 1);
  cases[2].n += rec_e(bufs[2] + cases[2].n, 0, 0);
  cases[2].want = "ends 1 pages short";
  cases[3].n = rec_t(bufs[3], 5, 2, 2);
  cases[3].want = "exceed the header's npages";
  for (int i = 0; i < 4; i++) {
    membuf m = {0};
    trace got = {0};
    ws_err err = WS_ERR_INIT;
    hand_obj(&m, &h, bufs[i], cases[i].n, 0);
    CHECK_EQ(decode(m.p, m.n, 0, &got, &err), WS_ECORRUPT);
    CHECK(strstr(err.msg, cases[i].want) != NULL);
    free(m.p);
  }
}

static void test_crc_checked_before_callbacks(void) {
  spec sp = {WS_KIND_SEGMENT, 512, 1, 1, 10, PG_RANDOM, 0};
  membuf m = {0};
  trace want = {0}, got = {0};
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(make_obj(&m, &sp, &want, &err), WS_OK);
  m.p[m.n - WS_OBJTRL_SIZE - 1] ^= 0x10;   /* last byte of the last page */
  CHECK_EQ(decode(m.p, m.n, 1, &got, &err), WS_ECORRUPT);
  CHECK(strstr(err.msg, "block 0: crc mismatch") != NULL);
  CHECK_EQ(got.headers, 1);
  CHECK_EQ(got.txns, 0);
  CHECK_EQ(got.pages, 0);
  free(m.p);
}

/* A raw block whose payload changed and whose block crc was fixed up to
** match: the block passes, the object crc (which takes a raw block's bytes
** from its block crc, not a second pass) must not. */
static void test_object_crc_covers_raw_blocks(void) {
  spec sp = {WS_KIND_SEGMENT, 512, 1, 1, 10, PG_RANDOM, 0};
  membuf m = {0};
  trace want = {0}, got = {0};
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(make_obj(&m, &sp, &want, &err), WS_OK);
  uint8_t *bh = m.p + WS_OBJHDR_SIZE;
  CHECK(bh[0] == 'B' && bh[1] == 0);       /* random pages: stored raw */
  uint32_t raw_len = ws_get32(bh + 4);
  CHECK_EQ(decode(m.p, m.n, 0, &got, &err), WS_OK);
  /* the object crc is still zlib's crc32 of every byte before the trailer
  ** (objects of older versions, and other readers, rely on it) */
  ws_objtrl t;
  CHECK_EQ(ws_objtrl_parse(&t, m.p + m.n - WS_OBJTRL_SIZE, WS_OBJTRL_SIZE, "t", &err), WS_OK);
  CHECK_EQ(t.crc, (uint32_t)crc32(0, m.p, (uInt)(m.n - WS_OBJTRL_SIZE)));
  bh[WS_BLOCK_HDR_SIZE + 100] ^= 0x01;
  ws_put32(bh + 12, (uint32_t)crc32(0, bh + WS_BLOCK_HDR_SIZE, raw_len));
  memset(&got, 0, sizeof(got));
  CHECK_EQ(decode(m.p, m.n, 0, &got, &err), WS_ECORRUPT);
  CHECK(strstr(err.msg, "object crc mismatch") != NULL);
  free(m.p);
}

static void test_callback_stop_propagates(void) {
  spec sp = {WS_KIND_SEGMENT, 512, 1, 3, 10, PG_TEXT, 6};
  membuf m = {0};
  trace want = {0}, got = {0};
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(make_obj(&m, &sp, &want, &err), WS_OK);
  got.stop_after_pages = 3;
  ws_dec_cb cb = {&got, cb_header, cb_begin, cb_page, cb_end, cb_trailer, NULL};
  ws_dec *d = NULL;
  CHECK_EQ(ws_dec_new(&d, &cb, "seg/s.seg", &err), WS_OK);
  int rc = ws_dec_feed(d, m.p, m.n, &err);
  CHECK_EQ(rc, WS_ESTOPPED);
  CHECK(strcmp(err.msg, "enough pages") == 0);
  CHECK_EQ(got.pages, 3);
  /* later calls repeat the stop and never call back again */
  ws_err err2 = WS_ERR_INIT;
  CHECK_EQ(ws_dec_feed(d, m.p, 1, &err2), WS_ESTOPPED);
  CHECK_EQ(ws_dec_finish(d, &err2), WS_ESTOPPED);
  CHECK(strcmp(err2.msg, "enough pages") == 0);
  CHECK_EQ(got.pages, 3);
  ws_dec_free(d);
  /* NULL callbacks are fine */
  d = NULL;
  CHECK_EQ(ws_dec_new(&d, NULL, NULL, &err), WS_OK);
  CHECK_EQ(ws_dec_feed(d, m.p, m.n, &err), WS_OK);
  CHECK_EQ(ws_dec_finish(d, &err), WS_OK);
  ws_dec_free(d);
  free(m.p);
}

static void test_encoder_refuses_misuse(void) {
  ws_objhdr h = good_header();
  h.page_size = 512; h.txid_first = 5; h.txid_last = 6; h.ntxn = 2;
  h.db_pages = 4; h.npages = 2;
  static uint8_t page[512];
  membuf m = {0};
  ws_err err = WS_ERR_INIT;
  ws_enc *e = NULL;
  CHECK_EQ(ws_enc_new(&e, &h, 1, mem_write, &m, &err), WS_OK);
  CHECK_EQ(m.n, WS_OBJHDR_SIZE);
  CHECK_EQ(ws_enc_txn_begin(e, 6, 0, 4, 1, &err), WS_EINVAL);   /* not 5 */
  CHECK_EQ(ws_enc_txn_begin(e, 5, 0, 4, 1, &err), WS_EINVAL);   /* dead */
  ws_enc_free(e);
  /* a count that does not match the header */
  CHECK_EQ(ws_enc_new(&e, &h, 1, mem_write, &m, &err), WS_OK);
  CHECK_EQ(ws_enc_txn_begin(e, 5, 0, 4, 1, &err), WS_OK);
  CHECK_EQ(ws_enc_page(e, 1, page, &err), WS_OK);
  CHECK_EQ(ws_enc_page(e, 2, page, &err), WS_EINVAL);           /* npages 1 */
  ws_enc_free(e);
  CHECK_EQ(ws_enc_new(&e, &h, 1, mem_write, &m, &err), WS_OK);
  CHECK_EQ(ws_enc_txn_begin(e, 5, 0, 4, 1, &err), WS_OK);
  CHECK_EQ(ws_enc_page(e, 1, page, &err), WS_OK);
  CHECK_EQ(ws_enc_txn_end(e, 0, 0, &err), WS_OK);
  CHECK_EQ(ws_enc_finish(e, 0, &err), WS_EINVAL);               /* 1 of 2 */
  ws_enc_free(e);
  /* the write error comes back unchanged */
  membuf f = {0};
  f.fail_at = 3;
  CHECK_EQ(ws_enc_new(&e, &h, 0, mem_write, &f, &err), WS_OK);
  CHECK_EQ(ws_enc_txn_begin(e, 5, 0, 3, 1, &err), WS_OK);
  CHECK_EQ(ws_enc_page(e, 1, page, &err), WS_OK);
  CHECK_EQ(ws_enc_txn_end(e, 1, 7, &err), WS_OK);
  CHECK_EQ(ws_enc_txn_begin(e, 6, 0, 4, 1, &err), WS_OK);
  CHECK_EQ(ws_enc_page(e, 4, page, &err), WS_OK);
  CHECK_EQ(ws_enc_txn_end(e, 1, 8, &err), WS_OK);
  CHECK_EQ(ws_enc_finish(e, 8, &err), WS_EIO);
  CHECK(strcmp(err.msg, "write test: injected failure") == 0);
  ws_enc_free(e);
  free(m.p);
  free(f.p);
}

/* ------------------------------------------- runs of incompressible blocks */
/* The encoder skips deflating a block a sample calls incompressible once the
** last block went raw (codec.c); these prove the skip loses no compression.
** Pages are 4 KiB and BLK of them (one transaction) fill a block. */

enum { PG_ZERO = PG_MIXED + 1, PG_HOLE, PG_TWIN, BLK = WS_BLOCK_TARGET / (5 + 4096) };
typedef struct run { uint32_t pages; int kind; } run;
typedef struct blk { int enc; uint32_t raw, stored; } blk;

static void fill_run_page(uint8_t *p, int kind) {
  if (kind == PG_TEXT) return fill_page(p, 4096, PG_TEXT);
  for (int i = 0; i < 4096; i += 8) { uint64_t v = rnd(); memcpy(p + i, &v, 8); }
  if (kind == PG_ZERO) memset(p, 0, 4096);
  if (kind == PG_HOLE) memset(p + rnd() % 3072, 0, 1024);  /* 1/4 free space */
  if (kind == PG_TWIN) memcpy(p + 2048, p, 2048);  /* deflate sees it, a sample not */
}

/* Encode the runs as one object on *e (new or restarted, level 1), check
** that it decodes to the same trace, and list its blocks in b; returns how
** many (-1 on failure). */
static int enc_runs(ws_enc **e, const run *r, int nr, blk *b, int max) {
  ws_objhdr h = good_header();
  membuf m = {0};
  trace want = {0}, got = {0};
  ws_err err = WS_ERR_INIT;
  static uint8_t page[4096];
  h.txid_first = h.txid_last = 2; h.ntxn = 1; h.db_pages = 100; h.npages = 0;
  for (int i = 0; i < nr; i++) h.npages += r[i].pages;
  int rc = *e ? ws_enc_restart(*e, &h, mem_write, &m, &err)
              : ws_enc_new(e, &h, 1, mem_write, &m, &err);
  if (!rc) rc = ws_enc_txn_begin(*e, 2, 0, 100, (uint32_t)h.npages, &err);
  if (!rc) tr_begin(&want, 2, 0, 100, (uint32_t)h.npages);
  for (int i = 0; i < nr; i++)
    for (uint32_t j = 0; j < r[i].pages && !rc; j++) {
      fill_run_page(page, r[i].kind);
      if (!(rc = ws_enc_page(*e, 1 + j % 100, page, &err)))
        tr_page(&want, 1 + j % 100, page, 4096);
    }
  if (!rc && !(rc = ws_enc_txn_end(*e, 0, 0, &err))) tr_end(&want, 2, 0, 0);
  if (!rc) rc = ws_enc_finish(*e, 0, &err);
  if (!rc) rc = decode(m.p, m.n, 0, &got, &err);
  int n = 0;
  for (size_t off = WS_OBJHDR_SIZE; !rc && m.p[off] == 'B' && n < max; n++) {
    b[n] = (blk){m.p[off + 1], ws_get32(m.p + off + 4), ws_get32(m.p + off + 8)};
    off += WS_BLOCK_HDR_SIZE + b[n].stored;
  }
  if (rc || got.crc != want.crc) printf("  rc %d: %s\n", rc, err.msg);
  free(m.p);
  return rc || got.crc != want.crc ? -1 : n;
}

static void test_random_run_stored_raw_roundtrips(void) {
  ws_enc *e = NULL;
  blk b[8];
  run r[] = {{4 * BLK, PG_RANDOM}};
  CHECK_EQ(enc_runs(&e, r, 1, b, 8), 4);
  for (int i = 0; i < 4; i++) {
    CHECK_EQ(b[i].enc, 0);
    CHECK_EQ(b[i].stored, b[i].raw);
  }
  ws_enc_free(e);
}

/* The skip must not stick: the first compressible block after random ones
** is deflated, in the same object and in the next one on the encoder. */
static void test_compressible_after_random_run_deflated(void) {
  ws_enc *e = NULL;
  blk b[8];
  run r[] = {{3 * BLK, PG_RANDOM}, {BLK, PG_TEXT}};
  CHECK_EQ(enc_runs(&e, r, 2, b, 8), 4);
  CHECK_EQ(b[2].enc, 0);
  CHECK_EQ(b[3].enc, 1);
  CHECK(b[3].stored < b[3].raw / 10);
  CHECK_EQ(enc_runs(&e, r, 1, b, 8), 3);
  CHECK_EQ(b[2].enc, 0);
  CHECK_EQ(enc_runs(&e, r + 1, 1, b, 8), 1);
  CHECK_EQ(b[0].enc, 1);
  ws_enc_free(e);
}

/* After random blocks: a block whose first half is random and second half
** zero pages, and one of pages with a quarter of free space each. */
static void test_mixed_block_after_random_run_deflated(void) {
  ws_enc *e = NULL;
  blk b[8];
  run r[] = {{2 * BLK, PG_RANDOM}, {BLK / 2, PG_RANDOM}, {BLK - BLK / 2, PG_ZERO},
             {BLK, PG_RANDOM}, {BLK, PG_HOLE}};
  CHECK_EQ(enc_runs(&e, r, 5, b, 8), 5);
  CHECK_EQ(b[2].enc, 1);
  CHECK(b[2].stored < b[2].raw * 6 / 10);
  CHECK_EQ(b[3].enc, 0);
  CHECK_EQ(b[4].enc, 1);
  CHECK(b[4].stored < b[4].raw * 8 / 10);
  ws_enc_free(e);
}

/* Redundancy no sample sees (2 KiB repeats) is found by the whole-block
** deflate a raw run still does every 32nd block, and kept from then on. */
static void test_sample_blind_redundancy_deflated_within_a_run(void) {
  ws_enc *e = NULL;
  blk b[40];
  run r[] = {{BLK, PG_RANDOM}, {36 * BLK, PG_TWIN}};
  CHECK_EQ(enc_runs(&e, r, 2, b, 40), 37);
  int first = 1;
  while (first < 37 && b[first].enc == 0) first++;
  CHECK(first <= 33);
  for (int i = first; i < 37; i++) {
    CHECK_EQ(b[i].enc, 1);
    CHECK(b[i].stored < b[i].raw * 6 / 10);
  }
  ws_enc_free(e);
}

int main(void) {
  RUN(test_segment_roundtrip_page_sizes);
  RUN(test_snapshot_roundtrip);
  RUN(test_feed_one_byte_matches_whole);
  RUN(test_random_pages_stored_raw);
  RUN(test_text_pages_deflated);
  RUN(test_random_run_stored_raw_roundtrips);
  RUN(test_compressible_after_random_run_deflated);
  RUN(test_mixed_block_after_random_run_deflated);
  RUN(test_sample_blind_redundancy_deflated_within_a_run);
  RUN(test_every_bit_flip_detected);
  RUN(test_truncation_detected);
  RUN(test_header_validation);
  RUN(test_absurd_block_length_refused);
  RUN(test_record_validation);
  RUN(test_crc_checked_before_callbacks);
  RUN(test_object_crc_covers_raw_blocks);
  RUN(test_callback_stop_propagates);
  RUN(test_encoder_refuses_misuse);
  T_EXIT();
}
