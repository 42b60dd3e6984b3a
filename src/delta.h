/*
** Page deltas: a page image stored as the XOR of the new content with the
** page's content in the state it applies onto, as runs of non-zero bytes.
** A small UPDATE rewrites a 4 KiB page to change ~100 bytes; storing that
** page whole made the store grow by a page per commit (3.4x the database
** after 10,000 updates, docs/benchmarks.md), and compressing it was most of
** the sidecar's CPU.
**
** Encoding (docs/FORMAT.md section 4, the 'D' record's payload):
**   run*   run = off(2) len-1(2) bytes(len)     big-endian, off + len <= page
** Runs are in increasing order and do not overlap; runs closer than
** WS_DELTA_GAP bytes are joined (a run header costs 4 bytes).
**
** XOR, not "replace these bytes": deltas of one page compose by XOR without
** knowing the page, which is what lets compaction merge a run of segments
** into one object without the state they apply onto (src/compact.c).
*/
#ifndef WS_DELTA_H
#define WS_DELTA_H

#include <stddef.h>
#include <stdint.h>

#define WS_DELTA_GAP 8

/* The largest payload a reader accepts for a page size: enough for any
** delta (runs hold at most page_size bytes, and joined runs are at least
** WS_DELTA_GAP + 1 bytes apart, so there are fewer than page_size / 8). */
static inline size_t ws_delta_max(uint32_t page_size) { return 2 * (size_t)page_size; }

/* What the sidecar ships as a delta: at most half a page, else the page is
** cheaper whole (no base to read when applying). */
static inline size_t ws_delta_worth(uint32_t page_size) { return page_size / 2; }

/* Encode page XOR base into out, at most cap bytes (out has room for cap).
** Returns 1 and sets *len (0: identical pages), or 0 when it would not fit. */
int ws_delta_make(uint8_t *out, size_t cap, size_t *len, const uint8_t *base,
                  const uint8_t *page, uint32_t page_size);

/* 0 if runs[0..len) is a well-formed delta for page_size, else -1. */
int ws_delta_check(const uint8_t *runs, size_t len, uint32_t page_size);

/* XOR a checked delta into page. */
void ws_delta_apply(uint8_t *page, const uint8_t *runs, size_t len);

#endif
