/*
** Unit tests for src/delta.c (XOR-run page deltas) and the codec's 'D'
** records: roundtrips on random edits, the size cap, malformed runs refused,
** a reader without on_delta refused, snapshots refuse deltas.
*/
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#include "t.h"
#include "codec.h"
#include "common.h"
#include "delta.h"

static uint64_t rng = 7;
static uint64_t rnd(void) {
  uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void test_roundtrip_random_edits(void) {
  static uint8_t base[65536], page[65536], out[2 * 65536], got[65536];
  uint32_t sizes[] = {512, 1024, 4096, 65536};
  for (int s = 0; s < 4; s++) {
    uint32_t ps = sizes[s];
    for (int trial = 0; trial < 300; trial++) {
      for (uint32_t i = 0; i < ps; i++) base[i] = (uint8_t)rnd();
      memcpy(page, base, ps);
      int edits = (int)(rnd() % 12);
      if (trial % 50 == 49) edits = (int)ps;            /* a rewritten page */
      for (int e = 0; e < edits; e++) {
        uint32_t off = (uint32_t)(rnd() % ps), n = 1 + (uint32_t)(rnd() % 200);
        for (uint32_t k = off; k < off + n && k < ps; k++) page[k] = (uint8_t)rnd();
      }
      if (trial % 7 == 0) page[ps - 1] ^= 0x80;        /* the last byte */
      if (trial % 11 == 0) page[0] ^= 1;               /* the first */
      size_t len = 0;
      CHECK(ws_delta_make(out, ws_delta_max(ps), &len, base, page, ps));
      CHECK(len <= ws_delta_max(ps));
      CHECK_EQ(ws_delta_check(out, len, ps), 0);
      memcpy(got, base, ps);
      ws_delta_apply(got, out, len);
      CHECK(memcmp(got, page, ps) == 0);
      /* the sidecar's cap: a delta that does not fit is refused, not cut */
      size_t len2 = 0;
      int fits = ws_delta_make(out, ws_delta_worth(ps), &len2, base, page, ps);
      CHECK_EQ(fits, len <= ws_delta_worth(ps));
      if (fits) CHECK_EQ(len2, len);
    }
  }
}

static void test_identical_and_one_byte(void) {
  uint8_t a[4096], b[4096], out[8192];
  size_t len = 99;
  memset(a, 0x5a, sizeof(a));
  memcpy(b, a, sizeof(b));
  CHECK(ws_delta_make(out, sizeof(out), &len, a, b, 4096));
  CHECK_EQ(len, 0);
  b[1000] ^= 0xff;
  CHECK(ws_delta_make(out, sizeof(out), &len, a, b, 4096));
  CHECK_EQ(len, 5);                         /* one run: 4 + 1 byte */
  CHECK_EQ(ws_get16(out), 1000);
  CHECK_EQ(ws_get16(out + 2), 0);
  CHECK_EQ(out[4], 0xff);
  /* two changes closer than the gap are one run, farther apart two */
  b[1000 + WS_DELTA_GAP] ^= 1;
  CHECK(ws_delta_make(out, sizeof(out), &len, a, b, 4096));
  CHECK_EQ(len, 4 + WS_DELTA_GAP + 1);
  b[1000 + WS_DELTA_GAP] ^= 1;
  b[1000 + WS_DELTA_GAP + 1] ^= 1;
  CHECK(ws_delta_make(out, sizeof(out), &len, a, b, 4096));
  CHECK_EQ(len, 10);
}

static void test_malformed_refused(void) {
  uint8_t r[32];
  memset(r, 0, sizeof(r));
  ws_put16(r, 510); ws_put16(r + 2, 1);          /* 510..511 of 512: fine */
  CHECK_EQ(ws_delta_check(r, 6, 512), 0);
  ws_put16(r, 511);                               /* past the page */
  CHECK_EQ(ws_delta_check(r, 6, 512), -1);
  ws_put16(r, 10); ws_put16(r + 2, 3);            /* 10..13 */
  ws_put16(r + 8, 12); ws_put16(r + 10, 0);       /* 12: overlaps */
  CHECK_EQ(ws_delta_check(r, 13, 512), -1);
  ws_put16(r + 8, 14);                            /* 14: follows: fine */
  CHECK_EQ(ws_delta_check(r, 13, 512), 0);
  ws_put16(r + 8, 5);                             /* out of order */
  CHECK_EQ(ws_delta_check(r, 13, 512), -1);
  CHECK_EQ(ws_delta_check(r, 3, 512), -1);        /* a torn run header */
  ws_put16(r, 0); ws_put16(r + 2, 9);             /* run longer than the data */
  CHECK_EQ(ws_delta_check(r, 8, 512), -1);
  CHECK_EQ(ws_delta_check(r, 2 * 512 + 1, 512), -1);   /* past the cap */
}

/* ------------------------------------------------ 'D' records in objects */

typedef struct membuf { uint8_t *p; size_t n, cap; } membuf;
static int mem_write(void *ud, const void *buf, size_t len, ws_err *err) {
  membuf *m = ud;
  if (m->n + len > m->cap) {
    size_t c = (m->n + len) * 2;
    uint8_t *q = realloc(m->p, c);
    if (!q) return ws_fail(err, WS_ENOMEM, "oom");
    m->p = q;
    m->cap = c;
  }
  memcpy(m->p + m->n, buf, len);
  m->n += len;
  return WS_OK;
}

typedef struct st { uint8_t pages[4][512]; int deltas, pages_n; } st;
static int on_page(void *ud, uint32_t pgno, const uint8_t *d, ws_err *err) {
  (void)err;
  st *s = ud;
  memcpy(s->pages[pgno], d, 512);
  s->pages_n++;
  return 0;
}
static int on_delta(void *ud, uint32_t pgno, const uint8_t *r, size_t len, ws_err *err) {
  (void)err;
  st *s = ud;
  ws_delta_apply(s->pages[pgno], r, len);
  s->deltas++;
  return 0;
}

static void test_codec_delta_records(void) {
  ws_objhdr h = {0};
  h.kind = WS_KIND_SEGMENT; h.page_size = 512; h.txid_first = 5; h.txid_last = 6;
  h.db_pages = 3; h.ntxn = 2; h.npages = 3; h.lineage = 1;
  uint8_t p1[512], p2[512], runs[1024];
  for (int i = 0; i < 512; i++) p1[i] = (uint8_t)rnd();
  memcpy(p2, p1, 512);
  p2[100] ^= 0x42; p2[300] = 7;
  size_t len;
  CHECK(ws_delta_make(runs, sizeof(runs), &len, p1, p2, 512));
  membuf m = {0};
  ws_err err = WS_ERR_INIT;
  ws_enc *e = NULL;
  CHECK_EQ(ws_enc_new(&e, &h, 6, mem_write, &m, &err), WS_OK);
  CHECK_EQ(ws_enc_txn_begin(e, 5, 1, 3, 1, &err), WS_OK);
  CHECK_EQ(ws_enc_page(e, 2, p1, &err), WS_OK);
  CHECK_EQ(ws_enc_txn_end(e, 0, 0, &err), WS_OK);
  CHECK_EQ(ws_enc_txn_begin(e, 6, 2, 3, 2, &err), WS_OK);
  CHECK_EQ(ws_enc_delta(e, 2, runs, len, &err), WS_OK);
  CHECK_EQ(ws_enc_delta(e, 3, runs, 0, &err), WS_OK);   /* unchanged page */
  CHECK_EQ(ws_enc_txn_end(e, 0, 0, &err), WS_OK);
  CHECK_EQ(ws_enc_finish(e, 0, &err), WS_OK);
  ws_enc_free(e);
  CHECK_EQ(ws_get16(m.p + 8), WS_FORMAT_VERSION);

  st s;
  memset(&s, 0, sizeof(s));
  ws_dec_cb cb = {&s, NULL, NULL, on_page, NULL, NULL, on_delta};
  ws_dec *d = NULL;
  CHECK_EQ(ws_dec_new(&d, &cb, "seg/d.seg", &err), WS_OK);
  for (size_t off = 0; off < m.n; off += 7)       /* any split */
    CHECK_EQ(ws_dec_feed(d, m.p + off, m.n - off < 7 ? m.n - off : 7, &err), WS_OK);
  CHECK_EQ(ws_dec_finish(d, &err), WS_OK);
  ws_dec_free(d);
  CHECK_EQ(s.deltas, 2);
  CHECK_EQ(s.pages_n, 1);
  CHECK(memcmp(s.pages[2], p2, 512) == 0);

  /* a reader that cannot apply deltas must not skip them */
  cb.on_delta = NULL;
  CHECK_EQ(ws_dec_new(&d, &cb, "seg/d.seg", &err), WS_OK);
  int rc = ws_dec_feed(d, m.p, m.n, &err);
  ws_dec_free(d);
  CHECK_EQ(rc, WS_EINVAL);
  CHECK(strstr(err.msg, "is a delta") != NULL);
  free(m.p);

  /* the encoder refuses a malformed delta and deltas in snapshots */
  m = (membuf){0};
  uint8_t bad[6] = {0x01, 0xff, 0, 1, 0, 0};         /* offset 511 + 2 bytes */
  CHECK_EQ(ws_enc_new(&e, &h, 6, mem_write, &m, &err), WS_OK);
  CHECK_EQ(ws_enc_txn_begin(e, 5, 1, 3, 1, &err), WS_OK);
  CHECK_EQ(ws_enc_delta(e, 2, bad, sizeof(bad), &err), WS_EINVAL);
  ws_enc_free(e);
  ws_objhdr sh = h;
  sh.kind = WS_KIND_SNAPSHOT; sh.txid_first = sh.txid_last = 4; sh.ntxn = 1;
  sh.npages = sh.db_pages = 1;
  CHECK_EQ(ws_enc_new(&e, &sh, 6, mem_write, &m, &err), WS_OK);
  CHECK_EQ(ws_enc_txn_begin(e, 4, 1, 1, 1, &err), WS_OK);
  CHECK_EQ(ws_enc_delta(e, 1, runs, len, &err), WS_EINVAL);
  ws_enc_free(e);
  free(m.p);
}

int main(void) {
  RUN(test_roundtrip_random_edits);
  RUN(test_identical_and_one_byte);
  RUN(test_malformed_refused);
  RUN(test_codec_delta_records);
  T_EXIT();
}
