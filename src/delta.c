/*
** Page deltas as XOR runs (see delta.h for the format and why XOR).
*/
#include "delta.h"
#include "common.h"

#include <string.h>

static uint64_t load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

int ws_delta_make(uint8_t *out, size_t cap, size_t *len, const uint8_t *base,
                  const uint8_t *page, uint32_t page_size) {
  size_t o = 0, i = 0, n = page_size;
  while (i < n) {
    /* skip equal bytes, 32 then 8 at a time: most of a page is unchanged,
    ** and one test per 32 bytes halved the time of a typical page */
    while (i + 32 <= n && !((load64(base + i) ^ load64(page + i)) |
                            (load64(base + i + 8) ^ load64(page + i + 8)) |
                            (load64(base + i + 16) ^ load64(page + i + 16)) |
                            (load64(base + i + 24) ^ load64(page + i + 24))))
      i += 32;
    while (i + 8 <= n && load64(base + i) == load64(page + i)) i += 8;
    while (i < n && base[i] == page[i]) i++;
    if (i >= n) break;
    size_t start = i, end = i + 1;
    for (size_t j = i + 1; j < n && j < end + WS_DELTA_GAP; j++)
      if (base[j] != page[j]) end = j + 1;
    size_t rl = end - start;
    if (o + 4 + rl > cap) return 0;
    ws_put16(out + o, (uint16_t)start);
    ws_put16(out + o + 2, (uint16_t)(rl - 1));
    for (size_t k = 0; k < rl; k++) out[o + 4 + k] = base[start + k] ^ page[start + k];
    o += 4 + rl;
    i = end;
  }
  *len = o;
  return 1;
}

int ws_delta_check(const uint8_t *runs, size_t len, uint32_t page_size) {
  size_t o = 0, next = 0;   /* next: the first byte a run may start at */
  if (len > ws_delta_max(page_size)) return -1;
  while (o < len) {
    if (len - o < 4) return -1;
    size_t off = ws_get16(runs + o), rl = (size_t)ws_get16(runs + o + 2) + 1;
    if (off < next || off + rl > page_size || len - o - 4 < rl) return -1;
    next = off + rl;
    o += 4 + rl;
  }
  return 0;
}

void ws_delta_apply(uint8_t *page, const uint8_t *runs, size_t len) {
  for (size_t o = 0; o < len;) {
    size_t off = ws_get16(runs + o), rl = (size_t)ws_get16(runs + o + 2) + 1;
    const uint8_t *x = runs + o + 4;
    for (size_t k = 0; k < rl; k++) page[off + k] ^= x[k];
    o += 4 + rl;
  }
}
