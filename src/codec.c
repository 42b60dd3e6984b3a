/*
** Object codec: encoder and push-style decoder for the container that holds
** both snapshots and segments.  docs/FORMAT.md is the byte-level reference;
** the layout in brief (all integers big-endian):
**
**   header  128 bytes  "WALSHIP\0" version(2) kind(2) page_size(4)
**                      txid_first(8) txid_last(8) db_pages(4) ntxn(4)
**                      npages(8) time_first_ms(8) time_last_ms(8)
**                      lineage(8) dbsum_before(8) salt1 salt2 frame ck1
**                      ck2 (4 each) zero(24) crc32(bytes 0..123)(4)
**   block   16 bytes   'B' enc(1) 0(2) raw_len(4) stored_len(4)
**                      crc32(raw bytes)(4), then stored_len bytes
**   trailer 64 bytes   "ZWSTRLR\0" ntxn(8) npages(8) raw_bytes(8)
**                      dbsum(8) objcrc(4) zero(16) crc32(bytes 0..59)(4)
**
** Invariants:
**   - the encoder never holds more than one raw block (<= WS_BLOCK_TARGET
**     bytes, since a block is cut before a record would overflow it and a
**     record is at most 9 + 2 * 65536 bytes, a delta) plus its compressed copy
**     and an 8 KiB sample of it;
**   - the decoder allocates only after a length has been checked against
**     WS_BLOCK_MAX, holds at most one raw block, and hands records to the
**     callbacks only after the whole block passed its crc32;
**   - after any failure both sides refuse further work (the decoder replays
**     its first error), so a half-applied object can never be continued.
*/
#include "codec.h"
#include "codec_int.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include <zlib.h>
#include "delta.h"


static const uint8_t hdr_magic[8] = {'W', 'A', 'L', 'S', 'H', 'I', 'P', 0};
static const uint8_t trl_magic[8] = {'Z', 'W', 'S', 'T', 'R', 'L', 'R', 0};

/* Header field offsets (docs/FORMAT.md, "Header"). */
enum {
  H_MAGIC = 0, H_VERSION = 8, H_KIND = 10, H_PAGE_SIZE = 12,
  H_TXID_FIRST = 16, H_TXID_LAST = 24, H_DB_PAGES = 32, H_NTXN = 36,
  H_NPAGES = 40, H_TIME_FIRST = 48, H_TIME_LAST = 56, H_LINEAGE = 64,
  H_DBSUM_BEFORE = 72, H_SALT1 = 80, H_SALT2 = 84, H_FRAME = 88,
  H_CK1 = 92, H_CK2 = 96, H_RESERVED = 100, H_CRC = 124
};
/* Trailer field offsets. */
enum {
  T_MAGIC = 0, T_NTXN = 8, T_NPAGES = 16, T_RAW_BYTES = 24, T_DBSUM = 32,
  T_OBJCRC = 40, T_RESERVED = 44, T_CRC = 60
};

static int all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

/* ------------------------------------------------------ header, trailer */


/* Semantic checks shared by the parser (corrupt input) and the encoder
** (caller bug): fills why and returns non-zero when h is not valid. */
static int hdr_invalid(const ws_objhdr *h, char *why, size_t n) {
  uint32_t ps = h->page_size;
  if (h->kind != WS_KIND_SNAPSHOT && h->kind != WS_KIND_SEGMENT &&
      h->kind != WS_KIND_MERGED)
    snprintf(why, n, "unknown object kind %u", h->kind);
  else if (ps < 512 || ps > 65536 || (ps & (ps - 1)) != 0)
    snprintf(why, n, "page size %u is not a power of two in 512..65536", ps);
  else if (h->txid_first < 1)
    snprintf(why, n, "txid_first is 0 (TXIDs start at 1)");
  else if (h->txid_first > h->txid_last)
    snprintf(why, n, "txid_first %llu > txid_last %llu",
             (unsigned long long)h->txid_first,
             (unsigned long long)h->txid_last);
  else if (h->kind == WS_KIND_MERGED ? h->ntxn != 1
           : (uint64_t)h->ntxn != h->txid_last - h->txid_first + 1)
    snprintf(why, n, "ntxn %u does not match TXIDs %llu..%llu", h->ntxn,
             (unsigned long long)h->txid_first,
             (unsigned long long)h->txid_last);
  else if (h->db_pages > PGNO_MAX)
    snprintf(why, n, "db_pages %u exceeds %u", h->db_pages, PGNO_MAX);
  else if (h->kind == WS_KIND_SNAPSHOT && h->ntxn != 1)
    snprintf(why, n, "snapshot holds %u transactions, not 1", h->ntxn);
  else if (h->kind == WS_KIND_SNAPSHOT && h->npages != h->db_pages)
    snprintf(why, n, "snapshot npages %llu != db_pages %u",
             (unsigned long long)h->npages, h->db_pages);
  else if (h->kind == WS_KIND_SNAPSHOT && h->dbsum_before != 0)
    snprintf(why, n, "snapshot dbsum_before is not 0");
  else
    return 0;
  return 1;
}

void ws_objhdr_encode(uint8_t out[WS_OBJHDR_SIZE], const ws_objhdr *h) {
  memset(out, 0, WS_OBJHDR_SIZE);
  memcpy(out + H_MAGIC, hdr_magic, sizeof(hdr_magic));
  ws_put16(out + H_VERSION, WS_FORMAT_VERSION);
  ws_put16(out + H_KIND, (uint16_t)h->kind);
  ws_put32(out + H_PAGE_SIZE, h->page_size);
  ws_put64(out + H_TXID_FIRST, h->txid_first);
  ws_put64(out + H_TXID_LAST, h->txid_last);
  ws_put32(out + H_DB_PAGES, h->db_pages);
  ws_put32(out + H_NTXN, h->ntxn);
  ws_put64(out + H_NPAGES, h->npages);
  ws_put64(out + H_TIME_FIRST, (uint64_t)h->time_first_ms);
  ws_put64(out + H_TIME_LAST, (uint64_t)h->time_last_ms);
  ws_put64(out + H_LINEAGE, h->lineage);
  ws_put64(out + H_DBSUM_BEFORE, h->dbsum_before);
  ws_put32(out + H_SALT1, h->pos.salt1);
  ws_put32(out + H_SALT2, h->pos.salt2);
  ws_put32(out + H_FRAME, h->pos.frame);
  ws_put32(out + H_CK1, h->pos.ck1);
  ws_put32(out + H_CK2, h->pos.ck2);
  ws_put32(out + H_CRC, crc_of(out, H_CRC));
}

int ws_objhdr_parse(ws_objhdr *out, const uint8_t *buf, size_t len,
                    const char *obj, ws_err *err) {
  ws_objhdr h;
  char why[160];
  if (len < WS_OBJHDR_SIZE)
    return ws_corrupt(err, "%s: truncated header (%zu of %d bytes)", obj, len,
                      WS_OBJHDR_SIZE);
  if (memcmp(buf + H_MAGIC, "WSE1", 4) == 0) {
    /* the encrypting store's envelope (store_crypt.c) read without a key */
    char id[17] = "";
    for (int i = 0; i < 16 && buf[24 + i] > ' ' && buf[24 + i] < 0x7f; i++) {
      id[i] = (char)buf[24 + i];
      id[i + 1] = 0;
    }
    return ws_fail(err, WS_EVERIFY, "%s is encrypted (key id '%s'), but no encryption "
                   "key is configured (--encryption-key-file or $WALSHIP_ENCRYPTION_KEY)",
                   obj, id);
  }
  if (memcmp(buf + H_MAGIC, hdr_magic, sizeof(hdr_magic)) != 0)
    return ws_corrupt(err, "%s: not a walship object (bad magic)", obj);
  /* crc before version: every version keeps magic, version and this crc in
  ** place, so a newer object passes the crc and gets the clear message. */
  if (ws_get32(buf + H_CRC) != crc_of(buf, H_CRC))
    return ws_corrupt(err, "%s: header crc mismatch", obj);
  uint16_t version = ws_get16(buf + H_VERSION);
  if (version > WS_FORMAT_VERSION)
    return ws_corrupt(err,
                      "%s: format version %u is newer than this walship "
                      "supports (%d); upgrade walship", obj, version,
                      WS_FORMAT_VERSION);
  if (version == 0)
    return ws_corrupt(err, "%s: invalid format version 0", obj);
  if (!all_zero(buf + H_RESERVED, H_CRC - H_RESERVED))
    return ws_corrupt(err, "%s: header reserved bytes are not zero", obj);
  memset(&h, 0, sizeof(h));
  h.kind = ws_get16(buf + H_KIND);
  h.page_size = ws_get32(buf + H_PAGE_SIZE);
  h.txid_first = ws_get64(buf + H_TXID_FIRST);
  h.txid_last = ws_get64(buf + H_TXID_LAST);
  h.db_pages = ws_get32(buf + H_DB_PAGES);
  h.ntxn = ws_get32(buf + H_NTXN);
  h.npages = ws_get64(buf + H_NPAGES);
  h.time_first_ms = (int64_t)ws_get64(buf + H_TIME_FIRST);
  h.time_last_ms = (int64_t)ws_get64(buf + H_TIME_LAST);
  h.lineage = ws_get64(buf + H_LINEAGE);
  h.dbsum_before = ws_get64(buf + H_DBSUM_BEFORE);
  h.pos.salt1 = ws_get32(buf + H_SALT1);
  h.pos.salt2 = ws_get32(buf + H_SALT2);
  h.pos.frame = ws_get32(buf + H_FRAME);
  h.pos.ck1 = ws_get32(buf + H_CK1);
  h.pos.ck2 = ws_get32(buf + H_CK2);
  if (hdr_invalid(&h, why, sizeof(why)))
    return ws_corrupt(err, "%s: header: %s", obj, why);
  *out = h;
  return WS_OK;
}

void ws_objtrl_encode(uint8_t out[WS_OBJTRL_SIZE], const ws_objtrl *t) {
  memset(out, 0, WS_OBJTRL_SIZE);
  memcpy(out + T_MAGIC, trl_magic, sizeof(trl_magic));
  ws_put64(out + T_NTXN, t->ntxn);
  ws_put64(out + T_NPAGES, t->npages);
  ws_put64(out + T_RAW_BYTES, t->raw_bytes);
  ws_put64(out + T_DBSUM, t->dbsum);
  ws_put32(out + T_OBJCRC, t->crc);
  ws_put32(out + T_CRC, crc_of(out, T_CRC));
}

int ws_objtrl_parse(ws_objtrl *out, const uint8_t *buf, size_t len,
                    const char *obj, ws_err *err) {
  if (len < WS_OBJTRL_SIZE)
    return ws_corrupt(err, "%s: truncated trailer (%zu of %d bytes)", obj, len,
                      WS_OBJTRL_SIZE);
  if (memcmp(buf + T_MAGIC, trl_magic, sizeof(trl_magic)) != 0)
    return ws_corrupt(err, "%s: bad trailer magic", obj);
  if (ws_get32(buf + T_CRC) != crc_of(buf, T_CRC))
    return ws_corrupt(err, "%s: trailer crc mismatch", obj);
  if (!all_zero(buf + T_RESERVED, T_CRC - T_RESERVED))
    return ws_corrupt(err, "%s: trailer reserved bytes are not zero", obj);
  out->ntxn = ws_get64(buf + T_NTXN);
  out->npages = ws_get64(buf + T_NPAGES);
  out->raw_bytes = ws_get64(buf + T_RAW_BYTES);
  out->dbsum = ws_get64(buf + T_DBSUM);
  out->crc = ws_get32(buf + T_OBJCRC);
  return WS_OK;
}

/* -------------------------------------------------------------- encoder */

/* Deflating a block of random pages (blobs, encrypted or already compressed
** payloads) costs as much as a compressible one, only to store it raw; such
** pages come in runs.  So once a block went raw, the next is first judged by
** deflating a sample of it: SAMPLE_SLICES slices spread over the whole block
** (SQLite pages mix compressible headers and free space with random
** payload; the first bytes alone would mislead).  Every block of a run gets
** its own sample, so the first compressible block after random ones is
** deflated.  Redundancy the slices cannot see (repeats farther apart than a
** slice) is caught by deflating every FULL_EVERY-th block of a run whole.
** Decisions depend only on the bytes encoded, never on time: an encoder fed
** the same objects in the same order writes the same bytes. */
enum {
  SAMPLE_SLICES = 32,       /* one slice from each 1/32 of the block */
  SAMPLE_SLICE = 256,
  SAMPLE_BYTES = SAMPLE_SLICES * SAMPLE_SLICE,
  SAMPLE_MIN_BLOCK = 2 * SAMPLE_BYTES, /* smaller: deflate it whole */
  FULL_EVERY = 32           /* ~3% of a raw run's blocks deflated whole */
};

struct ws_enc {
  ws_objhdr h;              /* header as written; the counts must match it */
  ws_write_fn write;        /* sink for every byte of the object */
  void *ud;
  int level;                /* zlib level; 0 = every block raw */
  /* libdeflate writes the same zlib streams as zlib's deflate (the decoder
  ** and older readers inflate them unchanged) at a fraction of the CPU; it
  ** compresses a whole buffer at once, which is what a block is. */
  struct libdeflate_compressor *zc; /* NULL when level == 0 */
  uint8_t *raw;             /* records of the open block, WS_BLOCK_TARGET */
  size_t raw_len;
  uint8_t *out;             /* block header + deflated block */
  /* Kept across objects (ws_enc_restart): a sidecar's blobs stay random from
  ** one commit to the next. */
  uint32_t raw_run;         /* blocks stored raw since the last deflated one */
  uint64_t probes;          /* samples taken; moves the next one's slices */
  uint32_t crc;             /* crc32 of every byte written so far */
  uint64_t bytes_out;       /* bytes accepted by write() */
  uint64_t raw_total;       /* sum of raw_len over flushed blocks */
  uint64_t ntxn, npages;    /* records emitted so far */
  int in_txn;               /* between 'T' and 'E' */
  uint32_t txn_left;        /* pages still owed by the open transaction */
  uint32_t snap_next;       /* snapshot: the next page number expected */
  int last_has_sum;         /* of the last 'E' */
  uint64_t last_sum;
  uint32_t last_db_pages;   /* of the last 'T' */
  int dead;                 /* failed or finished: refuse further calls */
  uint8_t sample[SAMPLE_BYTES]; /* slices of the open block, for a probe */
};

/* Write len bytes; known_crc: their crc32 is already known (a raw block's
** payload), else it is computed here. */
static int emit_crc(ws_enc *e, const void *buf, size_t len, int known, uint32_t known_crc,
                    ws_err *err) {
  int rc = e->write(e->ud, buf, len, err);
  if (rc) return rc;
  e->crc = known ? crc_cat(e->crc, known_crc, len) : crc_up(e->crc, buf, len);
  e->bytes_out += len;
  return WS_OK;
}

static int emit(ws_enc *e, const void *buf, size_t len, ws_err *err) {
  return emit_crc(e, buf, len, 0, 0, err);
}

/* Whether the sample predicts deflate would not pay on the open block.  A
** sample deflates worse than its block (fewer matches, the Huffman tables
** paid over fewer bytes), so it need only save 1/64 where the block must
** save 1/32.  The slice offsets inside their strata move with every probe:
** blocks of one big transaction all start on a page record, and fixed
** offsets would keep landing on the same bytes of the same pages. */
static int sample_says_raw(ws_enc *e) {
  size_t stratum = e->raw_len / SAMPLE_SLICES;
  uint64_t k = ++e->probes * SAMPLE_SLICES;
  for (size_t i = 0; i < SAMPLE_SLICES; i++) {
    uint64_t h = (k + i) * 0x9E3779B97F4A7C15ull;  /* Weyl sequence */
    size_t off = i * stratum + (size_t)((h >> 32) % (stratum - SAMPLE_SLICE + 1));
    memcpy(e->sample + i * SAMPLE_SLICE, e->raw + off, SAMPLE_SLICE);
  }
  /* out is free until the block is written */
  return libdeflate_zlib_compress(e->zc, e->sample, SAMPLE_BYTES,
                                  e->out + WS_BLOCK_HDR_SIZE,
                                  SAMPLE_BYTES - SAMPLE_BYTES / 64) == 0;
}

/* Write the open block, deflated when that saves at least 1/32. */
static int flush_block(ws_enc *e, ws_err *err) {
  uint32_t raw_len = (uint32_t)e->raw_len, stored = raw_len;
  uint8_t enc = 0;
  int rc;
  if (raw_len == 0) return WS_OK;
  if (e->zc) {
    int skip = e->raw_run > 0 && e->raw_run % FULL_EVERY != 0 &&
               raw_len >= SAMPLE_MIN_BLOCK && sample_says_raw(e);
    /* 0 = it did not fit: store raw.  The bound does not make deflate stop
    ** early on random bytes (it gets there after ~97% of the input). */
    size_t n = skip ? 0 : libdeflate_zlib_compress(e->zc, e->raw, raw_len,
                                                   e->out + WS_BLOCK_HDR_SIZE,
                                                   raw_len - raw_len / 32);
    if (n > 0) {
      enc = 1;
      stored = (uint32_t)n;
    }
    e->raw_run = enc ? 0 : e->raw_run + 1;
  }
  uint8_t *bh = e->out;
  bh[0] = 'B';
  bh[1] = enc;
  bh[2] = bh[3] = 0;
  ws_put32(bh + 4, raw_len);
  ws_put32(bh + 8, stored);
  uint32_t raw_crc = crc_of(e->raw, raw_len);
  ws_put32(bh + 12, raw_crc);
  if (enc)
    rc = emit(e, e->out, WS_BLOCK_HDR_SIZE + (size_t)stored, err);
  else if ((rc = emit(e, bh, WS_BLOCK_HDR_SIZE, err)) == WS_OK)
    rc = emit_crc(e, e->raw, raw_len, 1, raw_crc, err);
  if (rc) return rc;
  e->raw_total += raw_len;
  e->raw_len = 0;
  return WS_OK;
}

/* Room for an n-byte record in the open block, cutting it first if the
** record would push it past WS_BLOCK_TARGET. */
static int record(ws_enc *e, size_t n, uint8_t **p, ws_err *err) {
  if (e->raw_len > 0 && e->raw_len + n > WS_BLOCK_TARGET) {
    int rc = flush_block(e, err);
    if (rc) return rc;
  }
  *p = e->raw + e->raw_len;
  e->raw_len += n;
  return WS_OK;
}

#define ENC_ENTER(e, err) do { if ((e)->dead) return ws_fail((err), WS_EINVAL, \
    "encoder: called after a failure or after finish"); } while (0)
/* Every failure poisons the encoder: a partial object must not be continued. */
#define ENC_FAIL(e, rc) ((e)->dead = 1, (rc))

/* Begin object h on an encoder that is new or has finished (or failed) the
** previous one: only the per-object state is cleared. */
static int enc_start(ws_enc *e, const ws_objhdr *h, ws_write_fn write, void *ud,
                     ws_err *err) {
  uint8_t hb[WS_OBJHDR_SIZE];
  char why[160];
  if (hdr_invalid(h, why, sizeof(why)))
    return ws_fail(err, WS_EINVAL, "encoder: header: %s", why);
  if (!write) return ws_fail(err, WS_EINVAL, "encoder: no write function");
  e->h = *h;
  e->write = write;
  e->ud = ud;
  e->raw_len = 0;
  e->crc = 0;
  e->bytes_out = e->raw_total = e->ntxn = e->npages = 0;
  e->in_txn = 0;
  e->txn_left = 0;
  e->snap_next = 1;
  e->last_has_sum = 0;
  e->last_sum = 0;
  e->last_db_pages = 0;
  e->dead = 0;
  ws_objhdr_encode(hb, h);
  int rc = emit(e, hb, sizeof(hb), err);
  if (rc) e->dead = 1;
  return rc;
}

int ws_enc_new(ws_enc **out, const ws_objhdr *h, int level, ws_write_fn write,
               void *ud, ws_err *err) {
  ws_enc *e = NULL;
  int rc = WS_OK;
  if (level < 0 || level > 9)
    return ws_fail(err, WS_EINVAL, "encoder: compression level %d not in 0..9",
                   level);
  if (!(e = ws_calloc(1, sizeof(*e), err))) return WS_ENOMEM;
  e->level = level;
  if (!(e->raw = ws_malloc(WS_BLOCK_TARGET, err)) ||
      !(e->out = ws_malloc(WS_BLOCK_HDR_SIZE + WS_BLOCK_TARGET, err))) {
    rc = WS_ENOMEM;
    goto out;
  }
  if (level > 0 && !(e->zc = libdeflate_alloc_compressor(level))) {
    rc = ws_fail(err, WS_ENOMEM, "encoder: out of memory for the level %d compressor",
                 level);
    goto out;
  }
  rc = enc_start(e, h, write, ud, err);
out:
  if (rc) {
    ws_enc_free(e);
    return rc;
  }
  *out = e;
  return WS_OK;
}

int ws_enc_restart(ws_enc *e, const ws_objhdr *h, ws_write_fn write, void *ud,
                   ws_err *err) {
  if (!e) return ws_fail(err, WS_EINVAL, "encoder: restart of no encoder");
  return enc_start(e, h, write, ud, err);
}

int ws_enc_txn_begin(ws_enc *e, uint64_t txid, int64_t time_ms,
                     uint32_t db_pages, uint32_t npages, ws_err *err) {
  uint8_t *p;
  int rc;
  ENC_ENTER(e, err);
  if (e->in_txn)
    return ENC_FAIL(e, ws_fail(err, WS_EINVAL,
                    "encoder: transaction %llu begun before the last ended",
                    (unsigned long long)txid));
  if (e->ntxn >= e->h.ntxn || txid != next_txid(&e->h, e->ntxn))
    return ENC_FAIL(e, ws_fail(err, WS_EINVAL,
                    "encoder: transaction %llu is not the next of %llu..%llu",
                    (unsigned long long)txid,
                    (unsigned long long)e->h.txid_first,
                    (unsigned long long)e->h.txid_last));
  if (db_pages > PGNO_MAX || npages > e->h.npages - e->npages)
    return ENC_FAIL(e, ws_fail(err, WS_EINVAL,
                    "encoder: transaction %llu: db_pages %u or npages %u out "
                    "of range", (unsigned long long)txid, db_pages, npages));
  if (e->ntxn + 1 == e->h.ntxn && db_pages != e->h.db_pages)
    return ENC_FAIL(e, ws_fail(err, WS_EINVAL,
                    "encoder: last transaction has db_pages %u, header %u",
                    db_pages, e->h.db_pages));
  if (e->h.kind == WS_KIND_SNAPSHOT && npages != db_pages)
    return ENC_FAIL(e, ws_fail(err, WS_EINVAL,
                    "encoder: snapshot of %u pages carries %u", db_pages,
                    npages));
  if ((rc = record(e, REC_T_SIZE, &p, err))) return ENC_FAIL(e, rc);
  p[0] = 'T';
  ws_put64(p + 1, txid);
  ws_put64(p + 9, (uint64_t)time_ms);
  ws_put32(p + 17, db_pages);
  ws_put32(p + 21, npages);
  e->in_txn = 1;
  e->txn_left = npages;
  e->last_db_pages = db_pages;
  return WS_OK;
}

/* Checks shared by 'P' and 'D' records. */
static int enc_page_ok(ws_enc *e, uint32_t pgno, ws_err *err) {
  if (!e->in_txn || e->txn_left == 0)
    return ENC_FAIL(e, ws_fail(err, WS_EINVAL,
                    "encoder: page %u outside a transaction or beyond its "
                    "npages", pgno));
  if (pgno == 0 || pgno > PGNO_MAX ||
      (e->h.kind == WS_KIND_SNAPSHOT && pgno != e->snap_next))
    return ENC_FAIL(e, ws_fail(err, WS_EINVAL,
                    "encoder: page number %u invalid here", pgno));
  return WS_OK;
}

int ws_enc_page(ws_enc *e, uint32_t pgno, const void *data, ws_err *err) {
  uint8_t *p;
  int rc;
  ENC_ENTER(e, err);
  if ((rc = enc_page_ok(e, pgno, err))) return rc;
  if ((rc = record(e, REC_P_HDR + (size_t)e->h.page_size, &p, err)))
    return ENC_FAIL(e, rc);
  p[0] = 'P';
  ws_put32(p + 1, pgno);
  memcpy(p + REC_P_HDR, data, e->h.page_size);
  e->txn_left--;
  e->npages++;
  e->snap_next++;
  return WS_OK;
}

int ws_enc_delta(ws_enc *e, uint32_t pgno, const void *runs, size_t len,
                 ws_err *err) {
  uint8_t *p;
  int rc;
  ENC_ENTER(e, err);
  if ((rc = enc_page_ok(e, pgno, err))) return rc;
  if (e->h.kind == WS_KIND_SNAPSHOT ||
      ws_delta_check(runs, len, e->h.page_size) != 0)
    return ENC_FAIL(e, ws_fail(err, WS_EINVAL, "encoder: invalid delta for page %u",
                               pgno));
  if ((rc = record(e, REC_D_HDR + len, &p, err))) return ENC_FAIL(e, rc);
  p[0] = 'D';
  ws_put32(p + 1, pgno);
  ws_put32(p + 5, (uint32_t)len);
  if (len) memcpy(p + REC_D_HDR, runs, len);
  e->txn_left--;
  e->npages++;
  return WS_OK;
}

int ws_enc_txn_end(ws_enc *e, int has_sum, uint64_t dbsum, ws_err *err) {
  uint8_t *p;
  int rc;
  ENC_ENTER(e, err);
  if (!e->in_txn || e->txn_left != 0)
    return ENC_FAIL(e, ws_fail(err, WS_EINVAL,
                    "encoder: transaction end with %u pages still owed or no "
                    "transaction open", e->txn_left));
  if ((rc = record(e, REC_E_SIZE, &p, err))) return ENC_FAIL(e, rc);
  p[0] = 'E';
  p[1] = has_sum ? E_HAS_SUM : 0;
  ws_put64(p + 2, has_sum ? dbsum : 0);
  e->in_txn = 0;
  e->ntxn++;
  e->last_has_sum = has_sum != 0;
  e->last_sum = dbsum;
  return WS_OK;
}

int ws_enc_finish(ws_enc *e, uint64_t dbsum, ws_err *err) {
  uint8_t tb[WS_OBJTRL_SIZE];
  ws_objtrl t;
  int rc;
  ENC_ENTER(e, err);
  if (e->in_txn || e->ntxn != e->h.ntxn || e->npages != e->h.npages)
    return ENC_FAIL(e, ws_fail(err, WS_EINVAL,
                    "encoder: finished with %llu transactions and %llu pages, "
                    "header promises %u and %llu%s",
                    (unsigned long long)e->ntxn, (unsigned long long)e->npages,
                    e->h.ntxn, (unsigned long long)e->h.npages,
                    e->in_txn ? " (a transaction is open)" : ""));
  if (e->last_has_sum && dbsum != e->last_sum)
    return ENC_FAIL(e, ws_fail(err, WS_EINVAL,
                    "encoder: final dbsum %016llx differs from the last "
                    "transaction's %016llx", (unsigned long long)dbsum,
                    (unsigned long long)e->last_sum));
  if ((rc = flush_block(e, err))) return ENC_FAIL(e, rc);
  t.ntxn = e->ntxn;
  t.npages = e->npages;
  t.raw_bytes = e->raw_total;
  t.dbsum = dbsum;
  t.crc = e->crc;
  ws_objtrl_encode(tb, &t);
  rc = emit(e, tb, sizeof(tb), err);
  e->dead = 1;
  return rc;
}

uint64_t ws_enc_bytes_out(const ws_enc *e) { return e ? e->bytes_out : 0; }

void ws_enc_free(ws_enc *e) {
  if (!e) return;
  if (e->zc) libdeflate_free_compressor(e->zc);
  free(e->raw);
  free(e->out);
  free(e);
}
