/*
** libFuzzer target: the WAL reader (src/wal.c) on an arbitrary file.
**
** Input: one flags byte, then the bytes of a WAL file.  Random bytes almost
** never pass the header and frame checksums, so the flags let the fuzzer
** reach the code behind them: bit 0 recomputes the header checksum, bit 1
** recomputes the checksum of every frame (the chain, in the header's byte
** order) so mutated page numbers, commit sizes and salts get through.
** The reader must never crash, over-read, allocate from a size in the file
** or hand out a frame that is not in the valid prefix.
*/
#include "wal.h"
#include "common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[256];

typedef struct seen {
  uint32_t frames, last_idx, page_size;
} seen;

static int on_frame(void *ud, const ws_frame *f, ws_err *err) {
  seen *s = ud;
  /* Frames come in order, one at a time, within the file's valid prefix. */
  if (f->idx != s->last_idx + 1 || f->pgno == 0) abort();
  s->last_idx = f->idx;
  s->frames++;
  volatile uint8_t x = f->page[0] ^ f->page[s->page_size - 1];
  (void)x;
  (void)err;
  return 0;
}

static void fixup(uint8_t *b, size_t n, int fix_frames) {
  uint32_t s1 = 0, s2 = 0;
  int be = ws_get32(b) & 1;
  ws_wal_cksum(be, b, 24, &s1, &s2);
  ws_put32(b + 24, s1);
  ws_put32(b + 28, s2);
  uint32_t ps = ws_get32(b + 8);
  if (!fix_frames || ps < 512 || ps > 65536 || (ps & (ps - 1))) return;
  size_t fs = WS_WAL_FRAME_HDR + ps;
  for (size_t off = WS_WAL_HDR_SIZE; off + fs <= n; off += fs) {
    ws_wal_cksum(be, b + off, 8, &s1, &s2);
    ws_wal_cksum(be, b + off + WS_WAL_FRAME_HDR, ps, &s1, &s2);
    ws_put32(b + off + 16, s1);
    ws_put32(b + off + 20, s2);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > (4u << 20)) return 0;
  if (!path[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/ws-fuzz-wal.%ld", t && *t ? t : "/tmp", (long)getpid());
  }
  uint8_t flags = data[0];
  size_t n = size - 1;
  uint8_t *b = malloc(n ? n : 1);
  if (!b) return 0;
  memcpy(b, data + 1, n);
  if ((flags & 1) && n >= WS_WAL_HDR_SIZE) fixup(b, n, flags & 2);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) abort();
  free(b);

  ws_err err = WS_ERR_INIT;
  ws_wal *w = NULL;
  ws_walhdr h;
  if (ws_wal_open(&w, path, &err)) abort();
  if (ws_wal_header(w, &h, &err) == WS_OK) {
    seen s = {0, 0, h.page_size};
    ws_walpos start = ws_walpos_start(&h), end;
    int rc = ws_wal_iter(w, &h, &start, 0, on_frame, &s, &end, &err);
    if (rc != WS_OK || end.frame != s.frames) abort();
    /* Again with a frame limit, then random access along the chain. */
    ws_walpos end2;
    rc = ws_wal_iter(w, &h, &start, flags >> 4, NULL, NULL, &end2, &err);
    if (rc != WS_OK || end2.frame > end.frame) abort();
    uint8_t *page = malloc(h.page_size);
    if (page && end2.frame > 0) {
      ws_walpos p0 = start;
      /* frame 1, verified from the header's chain value, is the one the
      ** iterator handed out */
      if (ws_wal_read_frame(w, &h, 1, p0.ck1, p0.ck2, page, &err) != WS_OK) abort();
    }
    free(page);
  }
  ws_wal_close(w);
  return 0;
}
