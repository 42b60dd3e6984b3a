/*
** Private to the codec (codec.c: header, trailer, encoder; codec_dec.c:
** decoder): record sizes and the helpers both sides use.
*/
#ifndef WS_CODEC_INT_H
#define WS_CODEC_INT_H

#include "codec.h"
#include <libdeflate.h>
#include <zlib.h>

#define PGNO_MAX 0x7fffffffu
#define REC_T_SIZE 25u        /* 'T' txid(8) time(8) db_pages(4) npages(4) */
#define REC_P_HDR 5u          /* 'P' pgno(4), then page_size bytes */
#define REC_E_SIZE 10u        /* 'E' flags(1) dbsum(8) */
#define REC_D_HDR 9u          /* 'D' pgno(4) len(4), then len bytes (delta.h) */
#define E_HAS_SUM 0x01u

/* libdeflate's CRC-32 is the same function as zlib's (same polynomial,
** same running-value convention) and several times faster (carry-less
** multiply): it was a fifth of the sidecar's instructions (docs/benchmarks.md). */
static inline uint32_t crc_up(uint32_t crc, const void *p, size_t n) {
  return libdeflate_crc32(crc, p, n);
}

static inline uint32_t crc_of(const uint8_t *p, size_t n) { return crc_up(0, p, n); }

/* The crc32 of A then B from crc(A), crc(B) and B's length (zlib's
** crc32_combine, O(log n)).  A raw block's stored bytes are its raw bytes,
** whose crc the block header carries: the object's running crc takes them
** this way instead of a second pass (14 % of a snapshot restore's CPU). */
static inline uint32_t crc_cat(uint32_t crc_a, uint32_t crc_b, size_t len_b) {
  return (uint32_t)crc32_combine(crc_a, crc_b, (z_off_t)len_b);
}

/* TXID of record number i: consecutive from txid_first, except a merged
** segment's single record, which stands for the whole range and carries its
** last TXID. */
static inline uint64_t next_txid(const ws_objhdr *h, uint64_t i) {
  return h->kind == WS_KIND_MERGED ? h->txid_last : h->txid_first + i;
}

#endif
