/*
** Compaction: merge runs of contiguous segments into one merged segment
** (kind MERGED, docs/FORMAT.md) holding only the latest image of each page
** the run changed, so that a restore of a long history reads a handful of
** objects instead of one per sync.
**
** Levels.  Level-0 objects are the sidecar's own segments (one per sync,
** one record per transaction: what point-in-time restore needs).  Level k
** merges the objects of level < k whose store mtime falls in the same
** completed window of ws_level_window_ms(k) (1 minute, 1 hour, 1 day).  The
** windows only decide what is grouped: correctness rests on contiguity
** (each object starts at the previous one's last + 1), on the state
** checksums chaining (each object's dbsum_before equals the previous one's
** final checksum, checked while merging), and on never merging across a
** snapshot position (where a new history may begin).  Sources are never
** deleted here; retention (retain.c) removes what no restore needs.
**
** Memory.  Pages are staged in an unlinked scratch file indexed by page
** number, with one bit per page in memory saying which pages the run wrote:
** O(database pages / 8) bytes of RAM, whatever the history length.  A
** database that shrinks inside the run and grows back reads zeros in the
** regrown pages (SQLite's and our state model), so those are emitted as
** explicit zero pages; pages past the final size are dropped.
**
** Deltas.  A 'D' record is the XOR of a page with its content in the state
** before it.  XORs compose, so the run needs no base: a page whose first
** record in the run is a delta keeps the XOR of all its deltas in the
** scratch file (a second bit per page says so) and is emitted as one delta
** onto the state before the run; a full image, or a delta onto a page a
** shrink inside the run had zeroed, makes it a full page from there on.
*/
#include "compact.h"
#include "codec.h"
#include "common.h"
#include "delta.h"
#include "names.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int64_t ws_level_window_ms(int level) {
  static const int64_t w[WS_LEVEL_MAX + 1] = {0, 60000, 3600000, 86400000};
  if (level < 1 || level > WS_LEVEL_MAX) return 0;
  /* tests shrink the windows (level 1 = this many ms, the others scaled) */
  const char *v = getenv("WALSHIP_COMPACT_WINDOW_MS");
  long long l1 = v ? atoll(v) : 0;
  return l1 > 0 ? w[level] / 60000 * l1 : w[level];
}

/* ----------------------------------------------------------- merging */

typedef struct mctx {
  int fd;                  /* scratch: page p at (p-1)*page_size */
  uint8_t *bits;           /* page written since the last shrink below it */
  uint8_t *dbits;          /* ... and the scratch holds a delta, not a page */
  uint8_t *pbuf, *dbuf;    /* a page; a delta's encoding */
  uint32_t nbits;          /* capacity of bits, in pages */
  uint32_t page_size;
  uint32_t db_pages;       /* size after the last transaction so far */
  uint32_t min_pages;      /* smallest size seen inside the run */
  uint32_t txn_pages;      /* db_pages of the transaction in progress */
  uint32_t hi;             /* highest page number with its bit set */
  int have_hdr;
  ws_objhdr first;         /* header of the run's first object */
  ws_objhdr last;          /* header of the object being read */
  uint64_t sum;            /* final checksum of the last object read */
  const ws_catent *obj;
  ws_dec *dec;
  volatile int *stop;
} mctx;

static int m_header(void *ud, const ws_objhdr *h, ws_err *err) {
  mctx *m = ud;
  if (h->kind == WS_KIND_SNAPSHOT || h->txid_first != m->obj->first ||
      h->txid_last != m->obj->last)
    return ws_corrupt(err, "%s: header does not match its name", m->obj->name);
  if (m->have_hdr) {
    if (h->page_size != m->page_size || h->lineage != m->first.lineage)
      return ws_fail(err, WS_EVERIFY, "%s: page size or lineage differs from "
                     "the run it follows; not merged", m->obj->name);
    if (h->dbsum_before != m->sum)
      return ws_fail(err, WS_EVERIFY, "%s: applies onto checksum %016" PRIx64
                     " but the run left %016" PRIx64 "; not merged",
                     m->obj->name, h->dbsum_before, m->sum);
  } else {
    m->first = *h;
    m->page_size = h->page_size;
    m->have_hdr = 1;
    m->min_pages = UINT32_MAX;
  }
  m->last = *h;
  return WS_OK;
}

static int m_txn_begin(void *ud, uint64_t txid, int64_t time_ms,
                       uint32_t db_pages, uint32_t npages, ws_err *err) {
  mctx *m = ud;
  m->txn_pages = db_pages;
  return WS_OK;
}

static int bit_get(const uint8_t *b, uint32_t nbits, uint32_t p) {
  return p <= nbits && (b[(p - 1) / 8] >> ((p - 1) % 8)) & 1;
}

static void bit_put(uint8_t *b, uint32_t p, int on) {
  if (on) b[(p - 1) / 8] |= (uint8_t)(1u << ((p - 1) % 8));
  else b[(p - 1) / 8] &= (uint8_t)~(1u << ((p - 1) % 8));
}

/* Make room for page pgno in both bitmaps. */
static int m_grow(mctx *m, uint32_t pgno, ws_err *err) {
  /* A page past the transaction's final size is legal (spilled before an
  ** autovacuum truncation); the end of the transaction forgets it.  Memory
  ** stays two bits per page number, at most 512 MiB for a hostile 2^31. */
  if (pgno > m->hi) m->hi = pgno;
  if (pgno <= m->nbits) return WS_OK;
  uint32_t n = m->nbits ? m->nbits : 1024;
  while (n < pgno) n = n > UINT32_MAX / 2 ? UINT32_MAX : n * 2;
  size_t old = m->nbits ? m->nbits / 8 + 1 : 0, want = n / 8 + 1;
  uint8_t *b = ws_realloc(m->bits, want, err);
  if (!b) return WS_ENOMEM;
  m->bits = b;
  uint8_t *d = ws_realloc(m->dbits, want, err);
  if (!d) return WS_ENOMEM;
  m->dbits = d;
  memset(b + old, 0, want - old);
  memset(d + old, 0, want - old);
  m->nbits = n;
  return WS_OK;
}

static int m_stage(mctx *m, uint32_t pgno, const uint8_t *data, int delta,
                   ws_err *err) {
  bit_put(m->bits, pgno, 1);
  bit_put(m->dbits, pgno, delta);
  return ws_pwrite_full(m->fd, data, m->page_size,
                        (off_t)(pgno - 1) * m->page_size, "compaction scratch", err);
}

static int m_page(void *ud, uint32_t pgno, const uint8_t *data, ws_err *err) {
  mctx *m = ud;
  int rc = m_grow(m, pgno, err);
  return rc ? rc : m_stage(m, pgno, data, 0, err);
}

static int m_delta(void *ud, uint32_t pgno, const uint8_t *runs, size_t len,
                   ws_err *err) {
  mctx *m = ud;
  int rc = m_grow(m, pgno, err);
  if (rc) return rc;
  if (!m->pbuf && !(m->pbuf = ws_malloc(m->page_size, err))) return WS_ENOMEM;
  int delta = 0;
  if (bit_get(m->bits, m->nbits, pgno)) {
    /* onto what the run staged: a page stays a page, a delta a delta */
    ssize_t n = ws_pread_full(m->fd, m->pbuf, m->page_size,
                              (off_t)(pgno - 1) * m->page_size, "compaction scratch", err);
    if (n < 0) return err->code;
    if ((size_t)n != m->page_size)
      return ws_fail(err, WS_EIO, "compaction scratch: short read at page %" PRIu32, pgno);
    delta = bit_get(m->dbits, m->nbits, pgno);
  } else {
    /* untouched in the run so far: onto the state before the run, unless a
    ** shrink inside the run zeroed the page (then it is a page from zeros) */
    memset(m->pbuf, 0, m->page_size);
    delta = pgno <= m->min_pages;
  }
  ws_delta_apply(m->pbuf, runs, len);
  return m_stage(m, pgno, m->pbuf, delta, err);
}

static int m_txn_end(void *ud, uint64_t txid, int has_sum, uint64_t dbsum,
                     ws_err *err) {
  mctx *m = ud;
  if (m->txn_pages < m->min_pages) m->min_pages = m->txn_pages;
  /* a shrink forgets pages past the new end: if they come back they are
  ** zeros unless written again */
  for (uint32_t p = m->txn_pages + 1; p <= m->hi && p <= m->nbits; p++) {
    bit_put(m->bits, p, 0);
    bit_put(m->dbits, p, 0);
  }
  if (m->hi > m->txn_pages) m->hi = m->txn_pages;
  m->db_pages = m->txn_pages;
  return WS_OK;
}

static int m_trailer(void *ud, const ws_objtrl *t, ws_err *err) {
  ((mctx *)ud)->sum = t->dbsum;
  return WS_OK;
}

static int m_sink(void *ud, const void *buf, size_t len, ws_err *err) {
  mctx *m = ud;
  if (m->stop && *m->stop)
    return ws_fail(err, WS_ESTOPPED, "compaction interrupted");
  return ws_dec_feed(m->dec, buf, len, err);
}

static int has_bit(const mctx *m, uint32_t p) { return bit_get(m->bits, m->nbits, p); }

/* Pages the merged record carries: written ones, and zero pages for those
** regrown past the run's smallest size without being written. */
static int emits(const mctx *m, uint32_t p) {
  return has_bit(m, p) || p > m->min_pages;
}

static int up_write(void *ud, const void *buf, size_t len, ws_err *err) {
  ws_upload *up = ud;
  return up->store->m->put_write(up, buf, len, err);
}

/* Encode the staged run as one merged object and upload it. */
static int m_write(mctx *m, ws_store *st, int level, int zlevel,
                   uint64_t *bytes, ws_err *err) {
  ws_objhdr h = m->last;
  uint64_t npages = 0;
  for (uint32_t p = 1; p <= m->db_pages; p++) npages += (uint64_t)emits(m, p);
  h.kind = WS_KIND_MERGED;
  h.txid_first = m->first.txid_first;
  h.ntxn = 1;
  h.npages = npages;
  h.db_pages = m->db_pages;
  h.time_first_ms = m->first.time_first_ms;
  h.dbsum_before = m->first.dbsum_before;
  char name[WS_NAME_MAX];
  ws_name_merged(name, level, h.txid_first, h.txid_last);

  ws_upload *up = NULL;
  ws_enc *enc = NULL;
  uint8_t *page = NULL;
  int rc = st->m->put_begin(&up, st, name, err);
  if (rc) return rc;
  if (!(page = ws_malloc(m->page_size, err)) ||
      (!m->pbuf && !(m->pbuf = ws_malloc(m->page_size, err))) ||
      !(m->dbuf = ws_malloc(ws_delta_max(m->page_size), err))) {
    rc = WS_ENOMEM;
    goto fail;
  }
  if ((rc = ws_enc_new(&enc, &h, zlevel, up_write, up, err)) ||
      (rc = ws_enc_txn_begin(enc, h.txid_last, h.time_last_ms, h.db_pages,
                             (uint32_t)npages, err)))
    goto fail;
  for (uint32_t p = 1; p <= m->db_pages; p++) {
    if (!emits(m, p)) continue;
    if (has_bit(m, p)) {
      ssize_t n = ws_pread_full(m->fd, page, m->page_size,
                                (off_t)(p - 1) * m->page_size, "compaction scratch", err);
      if (n < 0) { rc = err->code; goto fail; }
      if ((size_t)n != m->page_size) {
        rc = ws_fail(err, WS_EIO, "compaction scratch: short read at page %" PRIu32, p);
        goto fail;
      }
    } else {
      memset(page, 0, m->page_size);
    }
    if (has_bit(m, p) && bit_get(m->dbits, m->nbits, p)) {
      /* the XOR of the run's deltas, onto the state before the run */
      size_t dl = 0;
      memset(m->pbuf, 0, m->page_size);
      if (!ws_delta_make(m->dbuf, ws_delta_max(m->page_size), &dl, m->pbuf, page,
                         m->page_size)) {
        rc = ws_fail(err, WS_EINVAL, "compaction: delta of page %" PRIu32 " too large", p);
        goto fail;
      }
      rc = ws_enc_delta(enc, p, m->dbuf, dl, err);
    } else {
      rc = ws_enc_page(enc, p, page, err);
    }
    if (rc) goto fail;
  }
  if ((rc = ws_enc_txn_end(enc, 1, m->sum, err)) ||
      (rc = ws_enc_finish(enc, m->sum, err)))
    goto fail;
  *bytes = ws_enc_bytes_out(enc);
  ws_enc_free(enc);
  free(page);
  return st->m->put_commit(up, err);
fail:
  ws_enc_free(enc);
  free(page);
  st->m->put_abort(up);
  return rc;
}

int ws_merge_run(ws_store *st, const ws_catent *const *run, size_t n, int level,
                 int zlevel, uint64_t *bytes_out, volatile int *stop, ws_err *err) {
  static const ws_dec_cb cb0 = {NULL, m_header, m_txn_begin, m_page, m_txn_end,
                                m_trailer, m_delta};
  mctx m;
  memset(&m, 0, sizeof(m));
  m.stop = stop;
  const char *dir = getenv("TMPDIR");
  char *path = ws_asprintf(err, "%s/walship-compact-XXXXXX",
                           dir && *dir ? dir : "/tmp");
  if (!path) return WS_ENOMEM;
  m.fd = mkstemp(path);
  if (m.fd < 0) {
    int rc = ws_fail(err, WS_EIO, "create compaction scratch %s: %s", path,
                     strerror(errno));
    free(path);
    return rc;
  }
  unlink(path);   /* gone with the descriptor, whatever happens */
  free(path);
  int rc = WS_OK;
  for (size_t i = 0; i < n && rc == WS_OK; i++) {
    ws_dec_cb cb = cb0;
    cb.ud = &m;
    m.obj = run[i];
    if ((rc = ws_dec_new(&m.dec, &cb, run[i]->name, err))) break;
    rc = st->m->get(st, run[i]->name, 0, run[i]->size, m_sink, &m, err);
    if (rc == WS_OK) rc = ws_dec_finish(m.dec, err);
    ws_dec_free(m.dec);
    m.dec = NULL;
  }
  if (rc == WS_OK) rc = m_write(&m, st, level, zlevel, bytes_out, err);
  close(m.fd);
  free(m.bits);
  free(m.dbits);
  free(m.pbuf);
  free(m.dbuf);
  return rc;
}

/* ------------------------------------------------------------ planning */

/* Is there a snapshot at txid t (a point where a new history may start)? */
static int snapshot_at(const ws_catalog *cat, uint64_t t) {
  size_t lo = 0, hi = cat->n;   /* catalog is sorted by last */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cat->v[mid].last < t) lo = mid + 1;
    else hi = mid;
  }
  for (; lo < cat->n && cat->v[lo].last == t; lo++)
    if (cat->v[lo].kind == WS_KIND_SNAPSHOT) return 1;
  return 0;
}

static int by_first_level_desc(const void *pa, const void *pb) {
  const ws_catent *a = *(const ws_catent *const *)pa;
  const ws_catent *b = *(const ws_catent *const *)pb;
  if (a->first != b->first) return a->first < b->first ? -1 : 1;
  if (a->level != b->level) return a->level > b->level ? -1 : 1;
  if (a->last != b->last) return a->last > b->last ? -1 : 1;
  return strcmp(a->name, b->name);
}

int ws_compact_level(ws_store *st, const ws_catalog *cat, int level,
                     int64_t now_ms, int zlevel, int dry_run,
                     ws_compact_stats *stats, volatile int *stop, ws_err *err) {
  int64_t win = ws_level_window_ms(level), grace = win / 6;
  const ws_catent **src = NULL, **run = NULL;
  size_t nsrc = 0, nrun = 0;
  uint64_t covered = 0;   /* sources up to here are inside a level-k object */
  int rc = WS_OK;
  if (!win) return ws_fail(err, WS_EINVAL, "no compaction level %d", level);
  if (!(src = ws_calloc(cat->n + 1, sizeof(*src), err)) ||
      !(run = ws_calloc(cat->n + 1, sizeof(*run), err))) {
    free(src);
    return WS_ENOMEM;
  }
  for (size_t i = 0; i < cat->n; i++)
    if (cat->v[i].kind != WS_KIND_SNAPSHOT) src[nsrc++] = &cat->v[i];
  qsort(src, nsrc, sizeof(*src), by_first_level_desc);

  /* Walk the chain of highest-level objects below `level`, cutting runs at
  ** holes, snapshots, window changes and existing level-k coverage. */
  uint64_t pos = 0;          /* last TXID of the chain walked so far */
  int64_t run_win = -1;
  for (size_t i = 0; i <= nsrc && rc == WS_OK; i++) {
    const ws_catent *e = i < nsrc ? src[i] : NULL;
    if (e && e->level >= level) {
      if (e->last > covered) covered = e->last;
      continue;
    }
    if (e && pos && e->first <= pos) continue;   /* overlapped: not the chain */
    int64_t w = e && e->mtime_ms > 0 ? e->mtime_ms / win : -1;
    int joins = e && nrun && e->first == run[nrun - 1]->last + 1 &&
                w == run_win && !snapshot_at(cat, e->first - 1) &&
                e->first > covered;
    if (!joins && nrun) {
      if (nrun >= 2 && (run_win + 1) * win + grace <= now_ms) {
        uint64_t bytes = 0;
        if (!dry_run)
          rc = ws_merge_run(st, run, nrun, level, zlevel, &bytes, stop, err);
        if (rc == WS_OK) {
          ws_log(WS_LOG_INFO, "compact", "%s level=%d txids=%" PRIu64 "-%" PRIu64
                 " inputs=%zu bytes=%" PRIu64, dry_run ? "would merge" : "merged",
                 level, run[0]->first, run[nrun - 1]->last, nrun, bytes);
          stats->merged++;
          stats->inputs += nrun;
          stats->bytes += bytes;
        } else if (rc == WS_EVERIFY) {
          /* a chain that does not verify is left as it is (restore will
          ** name it); compaction goes on with the rest */
          ws_log(WS_LOG_WARN, "compact", "skipped: %s", err->msg);
          stats->skipped++;
          rc = WS_OK;
        }
      }
      nrun = 0;
    }
    if (!e) break;
    pos = e->last;
    if (e->first <= covered || w < 0) continue;  /* already merged / no time */
    if (!nrun) run_win = w;
    run[nrun++] = e;
  }
  free(src);
  free(run);
  return rc;
}
