/*
** Object codec, the push-style decoder (codec.h; the format is
** docs/FORMAT.md).  Memory: at most one raw block (checked against
** WS_BLOCK_MAX before allocating) and its stored bytes; records reach the
** callbacks only after their whole block passed its crc32, and the first
** error is replayed to every later call.
*/
#include "codec.h"
#include "codec_int.h"
#include "common.h"
#include "delta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* -------------------------------------------------------------- decoder */

enum { S_HDR, S_TAG, S_BLKHDR, S_TRL, S_DATA, S_DONE, S_FAIL };

struct ws_dec {
  ws_dec_cb cb;
  char *obj;                /* object name for messages */
  int state;                /* S_* */
  int rc;                   /* S_FAIL: the code of the first failure */
  ws_err first_err;         /* S_FAIL: its message, replayed on later calls */
  uint8_t fix[WS_OBJHDR_SIZE]; /* header, block header or trailer so far */
  uint32_t fix_have, fix_need;
  ws_objhdr h;              /* parsed header */
  uint64_t off;             /* bytes consumed */
  uint32_t crc;             /* crc32 of the bytes before the trailer */
  /* the block being read */
  uint64_t blk;             /* its index, 0-based */
  int enc;                  /* 0 raw, 1 zlib */
  uint32_t raw_len, stored_len, raw_crc;
  uint32_t stored_have, raw_have;
  int zend;                 /* inflate reached the end of the stream */
  uint8_t *raw;             /* raw bytes of the block, raw_cap <= BLOCK_MAX */
  size_t raw_cap;
  z_stream z;
  int zinit;
  /* record state, across blocks */
  uint64_t ntxn, npages, raw_total;
  int in_txn;
  uint64_t txid;            /* of the open or last transaction */
  uint32_t txn_left;        /* pages the open transaction still owes */
  uint32_t snap_next;       /* snapshot: next page number expected */
  int last_has_sum;
  uint64_t last_sum;
};

int ws_dec_new(ws_dec **out, const ws_dec_cb *cb, const char *obj,
               ws_err *err) {
  ws_dec *d = ws_calloc(1, sizeof(*d), err);
  if (!d) return WS_ENOMEM;
  if (!(d->obj = ws_strdup(obj ? obj : "object", err))) {
    free(d);
    return WS_ENOMEM;
  }
  if (cb) d->cb = *cb;
  d->state = S_HDR;
  d->fix_need = WS_OBJHDR_SIZE;
  d->snap_next = 1;
  *out = d;
  return WS_OK;
}

void ws_dec_free(ws_dec *d) {
  if (!d) return;
  if (d->zinit) inflateEnd(&d->z);
  free(d->raw);
  free(d->obj);
  free(d);
}

#define CALL(fn, ...) do { if (d->cb.fn) { \
    int r_ = d->cb.fn(d->cb.ud, __VA_ARGS__); if (r_) return r_; } } while (0)
#define BAD(...) ws_corrupt(err, __VA_ARGS__)
#define ULL(x) ((unsigned long long)(x))

static int block_header(ws_dec *d, ws_err *err) {
  const uint8_t *b = d->fix;
  const char *o = d->obj;
  d->enc = b[1];
  d->raw_len = ws_get32(b + 4);
  d->stored_len = ws_get32(b + 8);
  d->raw_crc = ws_get32(b + 12);
  if (b[2] || b[3])
    return BAD("%s: block %llu: reserved bytes are not zero", o, ULL(d->blk));
  if (d->enc > 1)
    return BAD("%s: block %llu: unknown encoding %d", o, ULL(d->blk), d->enc);
  if (d->raw_len == 0 || d->raw_len > WS_BLOCK_MAX ||
      d->stored_len > WS_BLOCK_MAX || d->stored_len == 0)
    return BAD("%s: block %llu: length raw %u stored %u outside 1..%u", o,
               ULL(d->blk), d->raw_len, d->stored_len, WS_BLOCK_MAX);
  if (d->enc == 0 && d->stored_len != d->raw_len)
    return BAD("%s: block %llu: raw block with stored_len %u != raw_len %u",
               o, ULL(d->blk), d->stored_len, d->raw_len);
  if (d->raw_cap < d->raw_len) {
    /* raw_len is checked above, so this is at most WS_BLOCK_MAX. */
    size_t cap = d->raw_cap ? d->raw_cap : 64u << 10;
    while (cap < d->raw_len) cap *= 2;
    if (cap > WS_BLOCK_MAX) cap = WS_BLOCK_MAX;
    uint8_t *r = ws_realloc(d->raw, cap, err);
    if (!r) return WS_ENOMEM;
    d->raw = r;
    d->raw_cap = cap;
  }
  if (d->enc == 1) {
    int zr = d->zinit ? inflateReset(&d->z) : inflateInit(&d->z);
    if (zr != Z_OK)
      return ws_fail(err, zr == Z_MEM_ERROR ? WS_ENOMEM : WS_ERROR,
                     "%s: inflate init: %s", o, zError(zr));
    d->zinit = 1;
  }
  d->stored_have = d->raw_have = 0;
  d->zend = 0;
  d->state = S_DATA;
  return WS_OK;
}

/* One record at b[0..n) of a verified block; *used gets its size. */
static int one_record(ws_dec *d, const uint8_t *b, size_t n, size_t *used,
                      ws_err *err) {
  const char *o = d->obj;
  unsigned long long blk = ULL(d->blk);
  size_t need = b[0] == 'T' ? REC_T_SIZE : b[0] == 'E' ? REC_E_SIZE
              : b[0] == 'P' ? REC_P_HDR + (size_t)d->h.page_size
              : b[0] == 'D' ? REC_D_HDR : 0;
  if (need == 0)
    return BAD("%s: block %llu: unknown record type 0x%02x", o, blk, b[0]);
  if (b[0] == 'D' && n >= REC_D_HDR) {
    uint32_t dl = ws_get32(b + 5);
    if (dl > ws_delta_max(d->h.page_size))
      return BAD("%s: block %llu: page %u: delta of %u bytes exceeds %zu", o,
                 blk, ws_get32(b + 1), dl, ws_delta_max(d->h.page_size));
    need += dl;
  }
  if (n < need)
    return BAD("%s: block %llu: record '%c' runs past the end of the block",
               o, blk, b[0]);
  *used = need;
  if (b[0] == 'T') {
    uint64_t txid = ws_get64(b + 1);
    int64_t time_ms = (int64_t)ws_get64(b + 9);
    uint32_t dbp = ws_get32(b + 17), np = ws_get32(b + 21);
    if (d->in_txn)
      return BAD("%s: block %llu: transaction %llu begins before %llu ended",
                 o, blk, ULL(txid), ULL(d->txid));
    if (d->ntxn >= d->h.ntxn || txid != next_txid(&d->h, d->ntxn))
      return BAD("%s: block %llu: transaction %llu where %llu..%llu expected"
                 " %llu", o, blk, ULL(txid), ULL(d->h.txid_first),
                 ULL(d->h.txid_last), ULL(d->h.txid_first + d->ntxn));
    if (dbp > PGNO_MAX)
      return BAD("%s: block %llu: transaction %llu: db_pages %u exceeds %u",
                 o, blk, ULL(txid), dbp, PGNO_MAX);
    if (np > d->h.npages - d->npages)
      return BAD("%s: block %llu: transaction %llu: %u pages exceed the "
                 "header's npages %llu", o, blk, ULL(txid), np,
                 ULL(d->h.npages));
    if (d->ntxn + 1 == d->h.ntxn && dbp != d->h.db_pages)
      return BAD("%s: block %llu: last transaction has db_pages %u, header %u",
                 o, blk, dbp, d->h.db_pages);
    if (d->h.kind == WS_KIND_SNAPSHOT && np != dbp)
      return BAD("%s: block %llu: snapshot of %u pages carries %u", o, blk,
                 dbp, np);
    d->in_txn = 1;
    d->txid = txid;
    d->txn_left = np;
    CALL(on_txn_begin, txid, time_ms, dbp, np, err);
  } else if (b[0] == 'P' || b[0] == 'D') {
    uint32_t pgno = ws_get32(b + 1);
    if (!d->in_txn || d->txn_left == 0)
      return BAD("%s: block %llu: page %u %s", o, blk, pgno,
                 d->in_txn ? "beyond the transaction's npages"
                           : "outside a transaction");
    if (pgno == 0 || pgno > PGNO_MAX)
      return BAD("%s: block %llu: page number %u outside 1..%u", o, blk, pgno,
                 PGNO_MAX);
    if (d->h.kind == WS_KIND_SNAPSHOT && pgno != d->snap_next)
      return BAD("%s: block %llu: snapshot page %u out of order (expected %u)",
                 o, blk, pgno, d->snap_next);
    if (b[0] == 'D') {
      size_t dl = need - REC_D_HDR;
      if (d->h.kind == WS_KIND_SNAPSHOT)
        return BAD("%s: block %llu: snapshot page %u stored as a delta", o, blk,
                   pgno);
      if (ws_delta_check(b + REC_D_HDR, dl, d->h.page_size) != 0)
        return BAD("%s: block %llu: page %u: malformed delta", o, blk, pgno);
      if (!d->cb.on_delta)
        return ws_fail(err, WS_EINVAL, "%s: page %u is a delta, which this reader "
                       "cannot apply", o, pgno);
      d->txn_left--;
      d->npages++;
      CALL(on_delta, pgno, b + REC_D_HDR, dl, err);
      return WS_OK;
    }
    d->txn_left--;
    d->npages++;
    d->snap_next++;
    CALL(on_page, pgno, b + REC_P_HDR, err);
  } else {
    if (!d->in_txn)
      return BAD("%s: block %llu: transaction end outside a transaction", o,
                 blk);
    if (d->txn_left != 0)
      return BAD("%s: block %llu: transaction %llu ends %u pages short", o,
                 blk, ULL(d->txid), d->txn_left);
    if (b[1] & ~E_HAS_SUM)
      return BAD("%s: block %llu: transaction %llu: unknown flags 0x%02x", o,
                 blk, ULL(d->txid), b[1]);
    d->in_txn = 0;
    d->ntxn++;
    d->last_has_sum = b[1] & E_HAS_SUM;
    d->last_sum = ws_get64(b + 2);
    CALL(on_txn_end, d->txid, d->last_has_sum, d->last_sum, err);
  }
  return WS_OK;
}

/* The whole block has arrived: check it, then hand out its records. */
static int block_done(ws_dec *d, ws_err *err) {
  const char *o = d->obj;
  if (d->enc == 1 && !d->zend) {
    /* zlib may still hold the end of the stream in its bit buffer. */
    d->z.next_in = d->raw;
    d->z.avail_in = 0;
    d->z.next_out = d->raw + d->raw_have;
    d->z.avail_out = d->raw_len - d->raw_have;
    if (inflate(&d->z, Z_FINISH) != Z_STREAM_END)
      return BAD("%s: block %llu: deflate stream is truncated", o,
                 ULL(d->blk));
    d->raw_have = d->raw_len - d->z.avail_out;
  }
  if (d->raw_have != d->raw_len)
    return BAD("%s: block %llu: inflated to %u bytes, expected %u", o,
               ULL(d->blk), d->raw_have, d->raw_len);
  if (crc_of(d->raw, d->raw_len) != d->raw_crc)
    return BAD("%s: block %llu: crc mismatch", o, ULL(d->blk));
  if (d->enc == 0) /* its stored bytes, skipped by block_data */
    d->crc = crc_cat(d->crc, d->raw_crc, d->raw_len);
  for (size_t i = 0, used = 0; i < d->raw_len; i += used) {
    int rc = one_record(d, d->raw + i, d->raw_len - i, &used, err);
    if (rc) return rc;
  }
  d->raw_total += d->raw_len;
  d->blk++;
  d->state = S_TAG;
  d->fix_have = 0;
  d->fix_need = 1;
  return WS_OK;
}

/* Take up to *len stored bytes of the current block from *p. */
static int block_data(ws_dec *d, const uint8_t **p, size_t *len, ws_err *err) {
  const char *o = d->obj;
  size_t take = d->stored_len - d->stored_have;
  if (take > *len) take = *len;
  if (d->enc != 0) d->crc = crc_up(d->crc, *p, take); /* raw: at block_done */
  if (d->enc == 0) {
    memcpy(d->raw + d->stored_have, *p, take);
    d->raw_have += (uint32_t)take;
  } else {
    d->z.next_in = (Bytef *)(uintptr_t)*p;
    d->z.avail_in = (uInt)take;
    /* Each turn either makes progress or stops the loop. */
    while (d->z.avail_in > 0) {
      if (d->zend)
        return BAD("%s: block %llu: bytes after the end of the deflate stream",
                   o, ULL(d->blk));
      d->z.next_out = d->raw + d->raw_have;
      d->z.avail_out = d->raw_len - d->raw_have;
      int zr = inflate(&d->z, Z_NO_FLUSH);
      d->raw_have = d->raw_len - d->z.avail_out;
      if (zr == Z_STREAM_END)
        d->zend = 1;
      else if (zr == Z_BUF_ERROR && d->z.avail_out == 0)
        return BAD("%s: block %llu: inflates past raw_len %u", o, ULL(d->blk),
                   d->raw_len);
      else if (zr != Z_OK)
        return BAD("%s: block %llu: inflate: %s", o, ULL(d->blk),
                   d->z.msg ? d->z.msg : zError(zr));
    }
  }
  d->stored_have += (uint32_t)take;
  d->off += take;
  *p += take;
  *len -= take;
  return d->stored_have == d->stored_len ? block_done(d, err) : WS_OK;
}

static int trailer(ws_dec *d, ws_err *err) {
  const char *o = d->obj;
  ws_objtrl t;
  int rc = ws_objtrl_parse(&t, d->fix, WS_OBJTRL_SIZE, o, err);
  if (rc) return rc;
  if (d->in_txn)
    return BAD("%s: trailer inside transaction %llu", o, ULL(d->txid));
  if (t.crc != d->crc)
    return BAD("%s: object crc mismatch", o);
  if (t.ntxn != d->h.ntxn || d->ntxn != d->h.ntxn)
    return BAD("%s: %llu transactions found, trailer says %llu, header %u", o,
               ULL(d->ntxn), ULL(t.ntxn), d->h.ntxn);
  if (t.npages != d->h.npages || d->npages != d->h.npages)
    return BAD("%s: %llu pages found, trailer says %llu, header %llu", o,
               ULL(d->npages), ULL(t.npages), ULL(d->h.npages));
  if (t.raw_bytes != d->raw_total)
    return BAD("%s: %llu raw bytes found, trailer says %llu", o,
               ULL(d->raw_total), ULL(t.raw_bytes));
  if (d->last_has_sum && t.dbsum != d->last_sum)
    return BAD("%s: trailer dbsum %016llx differs from the last "
               "transaction's %016llx", o, ULL(t.dbsum), ULL(d->last_sum));
  d->state = S_DONE;
  CALL(on_trailer, &t, err);
  return WS_OK;
}

/* A fixed-size piece (header, tag byte, block header, trailer) is whole. */
static int fixed_done(ws_dec *d, ws_err *err) {
  switch (d->state) {
  case S_HDR: {
    int rc = ws_objhdr_parse(&d->h, d->fix, WS_OBJHDR_SIZE, d->obj, err);
    if (rc) return rc;
    d->crc = crc_of(d->fix, WS_OBJHDR_SIZE);
    d->state = S_TAG;
    d->fix_have = 0;
    d->fix_need = 1;
    CALL(on_header, &d->h, err);
    return WS_OK;
  }
  case S_TAG:
    if (d->fix[0] == 'B') {
      d->state = S_BLKHDR;
      d->fix_need = WS_BLOCK_HDR_SIZE;
    } else if (d->fix[0] == 'Z') {
      d->state = S_TRL;
      d->fix_need = WS_OBJTRL_SIZE;
    } else {
      return BAD("%s: unknown tag 0x%02x at offset %llu (block %llu)", d->obj,
                 d->fix[0], ULL(d->off - 1), ULL(d->blk));
    }
    return WS_OK;
  case S_BLKHDR:
    d->crc = crc_up(d->crc, d->fix, WS_BLOCK_HDR_SIZE);
    return block_header(d, err);
  default:
    return trailer(d, err);
  }
}

static int dec_fail(ws_dec *d, int rc, ws_err *err) {
  d->state = S_FAIL;
  d->rc = rc;
  if (err) d->first_err = *err;
  return rc;
}

static int dec_replay(ws_dec *d, ws_err *err) {
  if (err) *err = d->first_err;
  return d->rc;
}

int ws_dec_feed(ws_dec *d, const void *buf, size_t len, ws_err *err) {
  const uint8_t *p = buf;
  int rc = WS_OK;
  if (d->state == S_FAIL) return dec_replay(d, err);
  while (len > 0 && rc == WS_OK) {
    if (d->state == S_DONE) {
      rc = BAD("%s: %zu bytes after the trailer", d->obj, len);
    } else if (d->state == S_DATA) {
      rc = block_data(d, &p, &len, err);
    } else {
      size_t take = d->fix_need - d->fix_have;
      if (take > len) take = len;
      memcpy(d->fix + d->fix_have, p, take);
      d->fix_have += (uint32_t)take;
      d->off += take;
      p += take;
      len -= take;
      if (d->fix_have == d->fix_need) rc = fixed_done(d, err);
    }
  }
  return rc ? dec_fail(d, rc, err) : WS_OK;
}

int ws_dec_finish(ws_dec *d, ws_err *err) {
  if (d->state == S_FAIL) return dec_replay(d, err);
  if (d->state != S_DONE)
    return dec_fail(d, BAD("%s: truncated (no trailer) after %llu bytes",
                           d->obj, ULL(d->off)), err);
  return WS_OK;
}
