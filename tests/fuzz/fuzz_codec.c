/*
** libFuzzer target: the object decoder (src/codec.c) — segments and
** snapshots as restore reads them.
**
** Input: two control bytes, then an object.  Byte 0, bit 0: recompute the
** header crc, every block's crc32 of its raw (for zlib blocks: inflated)
** bytes, and the trailer's object and own crc, so that the fuzzer gets past
** the checksums to the record parser.  Byte 1: the size of the pieces the
** object is fed in (push decoder; 0 = all at once).  The decoder must never
** crash, over-read or allocate past WS_BLOCK_MAX, and the records it hands
** out must be consistent with the header it handed out first.
*/
#include "codec.h"
#include "delta.h"
#include "common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct st {
  ws_objhdr h;
  int have_h, in_txn, done;
  uint64_t ntxn, npages;
} st;

static int on_header(void *ud, const ws_objhdr *h, ws_err *err) {
  st *s = ud;
  if (s->have_h) abort();
  s->h = *h;
  s->have_h = 1;
  return 0;
}
static int on_begin(void *ud, uint64_t txid, int64_t t, uint32_t dbp, uint32_t np, ws_err *err) {
  st *s = ud;
  if (!s->have_h || s->in_txn || txid != s->h.txid_first + s->ntxn || txid > s->h.txid_last)
    abort();
  s->in_txn = 1;
  return 0;
}
static int on_page(void *ud, uint32_t pgno, const uint8_t *p, ws_err *err) {
  st *s = ud;
  if (!s->in_txn || pgno == 0) abort();
  volatile uint8_t x = p[0] ^ p[s->h.page_size - 1];
  (void)x;
  s->npages++;
  return 0;
}
static int on_delta(void *ud, uint32_t pgno, const uint8_t *r, size_t len, ws_err *err) {
  st *s = ud;
  if (!s->in_txn || pgno == 0 || len > 2 * (size_t)s->h.page_size) abort();
  uint8_t *page = calloc(1, s->h.page_size);   /* the decoder checked the runs */
  if (!page) abort();
  ws_delta_apply(page, r, len);
  free(page);
  s->npages++;
  return 0;
}
static int on_end(void *ud, uint64_t txid, int has_sum, uint64_t sum, ws_err *err) {
  st *s = ud;
  if (!s->in_txn) abort();
  s->in_txn = 0;
  s->ntxn++;
  return 0;
}
static int on_trailer(void *ud, const ws_objtrl *t, ws_err *err) {
  st *s = ud;
  if (s->in_txn || s->ntxn != s->h.ntxn || s->npages != s->h.npages) abort();
  s->done = 1;
  return 0;
}

/* Make the checksums of b[0..n) agree with its bytes (see the header). */
static void fixup(uint8_t *b, size_t n) {
  if (n < WS_OBJHDR_SIZE) return;
  ws_put32(b + 124, (uint32_t)crc32(0L, b, 124));
  uint32_t objcrc = (uint32_t)crc32(0L, b, WS_OBJHDR_SIZE);
  size_t off = WS_OBJHDR_SIZE;
  static uint8_t raw[WS_BLOCK_MAX];
  while (off + WS_BLOCK_HDR_SIZE <= n && b[off] == 'B') {
    uint8_t *bh = b + off;
    uint32_t rl = ws_get32(bh + 4), sl = ws_get32(bh + 8);
    if (sl > n - off - WS_BLOCK_HDR_SIZE) break;
    const uint8_t *sd = bh + WS_BLOCK_HDR_SIZE;
    if (bh[1] == 0 && rl == sl) {
      ws_put32(bh + 12, (uint32_t)crc32(0L, sd, sl));
    } else if (bh[1] == 1 && rl <= WS_BLOCK_MAX) {
      uLongf out = rl;
      if (uncompress(raw, &out, sd, sl) == Z_OK && out == rl)
        ws_put32(bh + 12, (uint32_t)crc32(0L, raw, rl));
    }
    objcrc = (uint32_t)crc32(objcrc, bh, WS_BLOCK_HDR_SIZE + sl);
    off += WS_BLOCK_HDR_SIZE + sl;
  }
  if (off + WS_OBJTRL_SIZE <= n && b[off] == 'Z') {
    ws_put32(b + off + 40, objcrc);
    ws_put32(b + off + 60, (uint32_t)crc32(0L, b + off, 60));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2 || size > (16u << 20)) return 0;
  uint8_t flags = data[0];
  size_t piece = data[1] ? (size_t)data[1] * 7 : (size_t)-1;
  size_t n = size - 2;
  uint8_t *b = malloc(n ? n : 1);
  if (!b) return 0;
  memcpy(b, data + 2, n);
  if (flags & 1) fixup(b, n);

  st s;
  memset(&s, 0, sizeof(s));
  ws_dec_cb cb = {&s, on_header, on_begin, on_page, on_end, on_trailer, on_delta};
  ws_dec *d = NULL;
  ws_err err = WS_ERR_INIT;
  if (ws_dec_new(&d, &cb, "fuzz", &err)) abort();
  int rc = WS_OK;
  for (size_t off = 0; off < n && rc == WS_OK;) {
    size_t k = n - off < piece ? n - off : piece;
    rc = ws_dec_feed(d, b + off, k, &err);
    off += k;
  }
  int frc = ws_dec_finish(d, &err);
  /* Success means a whole, consistent object; a failure has a message. */
  if (rc == WS_OK && frc == WS_OK && !s.done) abort();
  if ((rc != WS_OK || frc != WS_OK) && !err.msg[0]) abort();
  ws_dec_free(d);
  free(b);
  return 0;
}
