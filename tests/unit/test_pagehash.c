/*
** Unit tests for src/pagehash.c: the page hash definition and the
** incremental database-state checksum, checked against a from-scratch
** recomputation after every operation of a random sequence.
*/
/* t.h's RUN puts two statements after an else on one line, which gcc 12
** flags under -Wall; the harness is shared, so silence it here. */
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#include "t.h"
#include "pagehash.h"
#include "common.h"

#include <zlib.h>

static uint64_t rng_state = 0x1234567887654321ull;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* The format defines the hash with zlib's functions; the code computes it
** with libdeflate's: they must agree on every page size and on the
** contents that stress Adler-32's modular sums (all 0xff at 64 KiB). */
static void test_content_hash_is_crc32_and_adler32(void) {
  static uint8_t page[65536];
  for (uint32_t ps = 512; ps <= 65536; ps *= 2) {
    for (int kind = 0; kind < 3; kind++) {
      for (size_t i = 0; i < ps; i++)
        page[i] = kind == 0 ? (uint8_t)rnd() : kind == 1 ? 0xff : 0;
      uint64_t want = ((uint64_t)crc32(0, page, ps) << 32) |
                      (uint64_t)adler32(1, page, ps);
      CHECK(ws_content_hash(page, ps) == want);
      page[ps / 3] ^= 1;
      CHECK(ws_content_hash(page, ps) != want);
    }
  }
}

static void test_page_hash_depends_on_pgno(void) {
  static uint8_t page[512];
  uint64_t c = ws_content_hash(page, sizeof(page));
  CHECK(ws_page_hash(1, page, sizeof(page)) == ws_page_hash_mix(c, 1));
  /* Equal contents at different places must not cancel under XOR. */
  for (uint32_t p = 1; p < 1000; p++)
    CHECK(ws_page_hash_mix(c, p) != ws_page_hash_mix(c, p + 1));
  CHECK(ws_page_hash_mix(0, 1) != 0);
  CHECK(ws_page_hash_mix(1, 1) != ws_page_hash_mix(0, 1));
}

static void test_dbstate_init_zero_hash(void) {
  static uint8_t zeros[65536];
  for (uint32_t ps = 512; ps <= 65536; ps *= 2) {
    ws_dbstate s;
    ws_err err = WS_ERR_INIT;
    CHECK_EQ(ws_dbstate_init(&s, ps, &err), WS_OK);
    CHECK(s.zero == ws_content_hash(zeros, ps));
    CHECK_EQ(s.npages, 0);
    CHECK(s.sum == 0);
    ws_dbstate_free(&s);
  }
  ws_dbstate s;
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(ws_dbstate_init(&s, 1000, &err), WS_EINVAL);
  CHECK_EQ(ws_dbstate_init(&s, 256, &err), WS_EINVAL);
  CHECK_EQ(ws_dbstate_init(&s, 131072, &err), WS_EINVAL);
}

static void test_dbstate_rejects_bad_pgno(void) {
  ws_dbstate s;
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(ws_dbstate_init(&s, 4096, &err), WS_OK);
  CHECK_EQ(ws_dbstate_set(&s, 3, 42, &err), WS_OK);
  uint64_t sum = s.sum;
  CHECK_EQ(ws_dbstate_set(&s, 0, 1, &err), WS_EINVAL);
  CHECK_EQ(ws_dbstate_set(&s, 0x80000000u, 1, &err), WS_EINVAL);
  CHECK_EQ(ws_dbstate_resize(&s, 0x80000000u, &err), WS_EINVAL);
  CHECK(strstr(err.msg, "2147483648") != NULL);
  CHECK(s.sum == sum);
  CHECK_EQ(s.npages, 3);
  ws_dbstate_free(&s);
  ws_dbstate_free(NULL);
}

static void test_dbstate_shrink_then_grow_gives_zero_pages(void) {
  ws_dbstate s;
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(ws_dbstate_init(&s, 1024, &err), WS_OK);
  CHECK_EQ(ws_dbstate_set(&s, 5, 0xabcdef, &err), WS_OK);
  CHECK_EQ(s.npages, 5);
  CHECK_EQ(ws_dbstate_resize(&s, 3, &err), WS_OK);
  CHECK_EQ(ws_dbstate_resize(&s, 6, &err), WS_OK);
  CHECK(s.h[4] == ws_page_hash_mix(s.zero, 5));
  uint64_t want = 0;
  for (uint32_t p = 1; p <= 6; p++) want ^= ws_page_hash_mix(s.zero, p);
  CHECK(s.sum == want);
  CHECK_EQ(ws_dbstate_resize(&s, 0, &err), WS_OK);
  CHECK(s.sum == 0);
  ws_dbstate_free(&s);
}

/* The incremental sum must equal a recomputation under the model of
** pagehash.h (grow = zero pages, shrink = drop) after every operation. */
static void test_dbstate_matches_recompute(void) {
  enum { MAXP = 3000 };
  static uint64_t model[MAXP + 1]; /* content hash of page p */
  uint32_t n = 0;
  ws_dbstate s;
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(ws_dbstate_init(&s, 4096, &err), WS_OK);
  for (int op = 0; op < 4000; op++) {
    uint64_t r = rnd();
    if (r % 10 == 0) {
      uint32_t m = (uint32_t)(rnd() % MAXP);
      CHECK_EQ(ws_dbstate_resize(&s, m, &err), WS_OK);
      for (uint32_t p = n + 1; p <= m; p++) model[p] = s.zero;
      n = m;
    } else {
      uint32_t lim = n + 20 < MAXP ? n + 20 : MAXP;
      uint32_t p = 1 + (uint32_t)(rnd() % lim);
      uint64_t c = rnd();
      CHECK_EQ(ws_dbstate_set(&s, p, ws_page_hash_mix(c, p), &err), WS_OK);
      for (uint32_t q = n + 1; q < p; q++) model[q] = s.zero;
      if (p > n) n = p;
      model[p] = c;
    }
    uint64_t want = 0;
    for (uint32_t p = 1; p <= n; p++) want ^= ws_page_hash_mix(model[p], p);
    CHECK_EQ(s.npages, n);
    CHECK(s.npages <= s.cap);
    CHECK(s.sum == want);
  }
  ws_dbstate_free(&s);
}

int main(void) {
  RUN(test_content_hash_is_crc32_and_adler32);
  RUN(test_page_hash_depends_on_pgno);
  RUN(test_dbstate_init_zero_hash);
  RUN(test_dbstate_rejects_bad_pgno);
  RUN(test_dbstate_shrink_then_grow_gives_zero_pages);
  RUN(test_dbstate_matches_recompute);
  T_EXIT();
}
