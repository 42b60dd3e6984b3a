/*
** Object codec: the one container format used by both snapshots and
** segments.  docs/FORMAT.md describes it byte by byte; the summary:
**
**   object  = header(128 bytes) block* trailer(64 bytes)
**   block   = 'B' enc(1) rsv(2) raw_len(4) stored_len(4) raw_crc32(4) bytes
**             enc 0 = raw, 1 = zlib (deflate stream with zlib wrapper)
**   records, concatenated across blocks (a record never spans two blocks):
**     'T' txid(8) time_ms(8) db_pages(4) npages(4)        transaction begins
**     'P' pgno(4) page(page_size)                         one page image
**     'D' pgno(4) len(4) runs(len)                        page as a delta (delta.h)
**     'E' flags(1) dbsum(8)                               transaction ends
**   trailer = 'Z' ...  totals, final dbsum, crc32 of every byte before it
**
** A snapshot is an object of kind SNAPSHOT holding exactly one transaction
** whose pages are 1..db_pages in order; a segment holds whole transactions
** with consecutive TXIDs.  Blocks are independently compressed, so a reader
** can inflate them in parallel; a block is verified (crc32 of its raw
** bytes) before any record in it is handed to the caller, so a restore never
** applies an unverified byte.  All integers are big-endian.
*/
#ifndef WS_CODEC_H
#define WS_CODEC_H

#include <stdint.h>
#include <stddef.h>
#include "walship/walship.h"

#define WS_OBJHDR_SIZE 128
#define WS_OBJTRL_SIZE 64
#define WS_BLOCK_HDR_SIZE 16
#define WS_BLOCK_TARGET (1u << 20)   /* encoder cuts blocks near 1 MiB raw */
#define WS_BLOCK_MAX (8u << 20)      /* decoder refuses larger blocks */
/* 2: 'D' (delta) records; version 1 objects are read unchanged. */
#define WS_FORMAT_VERSION 2

/* Position in the WAL just after the last frame an object contains. */
typedef struct ws_walpos {
  uint32_t salt1, salt2;   /* identify the WAL cycle */
  uint32_t frame;          /* frames of that cycle consumed (0 = none) */
  uint32_t ck1, ck2;       /* cumulative checksum after `frame` frames
                              (the WAL header checksum when frame == 0) */
} ws_walpos;

typedef struct ws_objhdr {
  uint32_t kind;           /* WS_KIND_SNAPSHOT or WS_KIND_SEGMENT */
  uint32_t page_size;      /* 512..65536, power of two */
  uint64_t txid_first;     /* snapshot: first == last == its TXID */
  uint64_t txid_last;
  uint32_t db_pages;       /* database size in pages after applying */
  uint32_t ntxn;           /* transactions in the object (snapshot: 1) */
  uint64_t npages;         /* page records in the object */
  int64_t time_first_ms;   /* capture time of the first transaction */
  int64_t time_last_ms;    /* capture time of the last transaction */
  uint64_t lineage;        /* random id of this database's history */
  uint64_t dbsum_before;   /* segment: state checksum it applies onto;
                              snapshot: 0 */
  ws_walpos pos;           /* WAL position after the object */
} ws_objhdr;

typedef struct ws_objtrl {
  uint64_t ntxn, npages;   /* as counted while encoding */
  uint64_t raw_bytes;      /* sum of raw block lengths */
  uint64_t dbsum;          /* state checksum after applying the object */
  uint32_t crc;            /* crc32 of every byte before the trailer */
} ws_objtrl;

/* Encode / decode the fixed-size pieces.  Parse validates every field
** (magic, version, kind, page size, ranges, its own crc) and names obj in
** errors. */
void ws_objhdr_encode(uint8_t out[WS_OBJHDR_SIZE], const ws_objhdr *h);
int ws_objhdr_parse(ws_objhdr *out, const uint8_t *buf, size_t len,
                    const char *obj, ws_err *err);
void ws_objtrl_encode(uint8_t out[WS_OBJTRL_SIZE], const ws_objtrl *t);
int ws_objtrl_parse(ws_objtrl *out, const uint8_t *buf, size_t len,
                    const char *obj, ws_err *err);

/* ------------------------------------------------------------- encoder */
typedef int (*ws_write_fn)(void *ud, const void *buf, size_t len, ws_err *err);

typedef struct ws_enc ws_enc;

/*
** Start an object: writes the header through write().  level is the zlib
** level (0 = store every block raw).  A block is also stored raw when
** deflate does not make it at least 1/32 smaller (incompressible pages
** cost nothing to inflate), and, right after a block stored raw, when a
** deflated 8 KiB sample of it does not save 1/64 (codec.c; the whole block
** is then not deflated at all).  Memory is bounded by two block buffers.
*/
int ws_enc_new(ws_enc **out, const ws_objhdr *h, int level, ws_write_fn write,
               void *ud, ws_err *err);
/* Start the next object on an encoder whose previous object finished or
** failed, keeping its buffers and compressor (same level): a sidecar that
** ships an object per commit would otherwise allocate ~2.3 MiB per object.
** It also keeps whether the last block went raw, so random blobs shipped
** commit by commit are judged by a sample, not deflated whole each time. */
int ws_enc_restart(ws_enc *e, const ws_objhdr *h, ws_write_fn write, void *ud,
                   ws_err *err);
int ws_enc_txn_begin(ws_enc *e, uint64_t txid, int64_t time_ms,
                     uint32_t db_pages, uint32_t npages, ws_err *err);
int ws_enc_page(ws_enc *e, uint32_t pgno, const void *data, ws_err *err);
/* Page pgno as the delta runs[0..len) (delta.h) onto its content in the
** state the object applies to; segments only.  Counts as a page record. */
int ws_enc_delta(ws_enc *e, uint32_t pgno, const void *runs, size_t len,
                 ws_err *err);
/* has_sum: dbsum is the state checksum after this transaction. */
int ws_enc_txn_end(ws_enc *e, int has_sum, uint64_t dbsum, ws_err *err);
/* Flush the last block and write the trailer.  Checks that the txn and page
** counts match the header (WS_EINVAL otherwise). */
int ws_enc_finish(ws_enc *e, uint64_t dbsum, ws_err *err);
uint64_t ws_enc_bytes_out(const ws_enc *e); /* bytes written so far */
void ws_enc_free(ws_enc *e);

/* ------------------------------------------------------------- decoder */
/* Callbacks; any may be NULL.  A non-zero return stops decoding and is
** returned unchanged from ws_dec_feed (use WS_ESTOPPED for "enough"). */
typedef struct ws_dec_cb {
  void *ud;
  int (*on_header)(void *ud, const ws_objhdr *h, ws_err *err);
  int (*on_txn_begin)(void *ud, uint64_t txid, int64_t time_ms,
                      uint32_t db_pages, uint32_t npages, ws_err *err);
  int (*on_page)(void *ud, uint32_t pgno, const uint8_t *data, ws_err *err);
  int (*on_txn_end)(void *ud, uint64_t txid, int has_sum, uint64_t dbsum,
                    ws_err *err);
  int (*on_trailer)(void *ud, const ws_objtrl *t, ws_err *err);
  /* A 'D' record (checked with ws_delta_check).  NULL: such a record stops
  ** the decoder with WS_EINVAL (a reader that ignored it would be wrong). */
  int (*on_delta)(void *ud, uint32_t pgno, const uint8_t *runs, size_t len,
                  ws_err *err);
} ws_dec_cb;

typedef struct ws_dec ws_dec;

/* obj names the object in every error ("seg/00..01-00..09: block 3: crc
** mismatch").  Push-style: feed any split of the bytes; memory bounded by
** WS_BLOCK_MAX.  Records are checked against the header (TXIDs consecutive
** from txid_first, page numbers in 1..2^31, page counts match). */
int ws_dec_new(ws_dec **out, const ws_dec_cb *cb, const char *obj, ws_err *err);
int ws_dec_feed(ws_dec *d, const void *buf, size_t len, ws_err *err);
/* WS_ECORRUPT if the object ended early or had bytes after the trailer. */
int ws_dec_finish(ws_dec *d, ws_err *err);
void ws_dec_free(ws_dec *d);

#endif
