/*
** The sidecar's page deltas (delta.h): a shipped page goes out as the XOR
** with its previous content when that is much smaller than the page.
**
** The base is the page's content in the state the segment applies onto,
** which the sidecar does not keep in memory.  It is read back from where
** that content still is: the latest earlier frame of the page in the
** current WAL cycle (remembered here: page -> frame, for the frames this
** process shipped), else the database file.  Neither read is trusted: the
** base is used only if its page hash equals the one s->ds holds for that
** page (the hash of what was shipped).  Anything unexpected (a frame of an
** old cycle, a page a checkpoint is writing, a page shipped by an earlier
** process) fails that check and the page ships whole.  Restore recomputes
** the state checksum after every transaction, so even a wrong base that
** passed would be refused there, never applied silently.
**
** The map also learns the frames a state scan (a snapshot, a start) read
** from the WAL, so pages still in the WAL then have their base too.
**
** Before either read, a small direct-mapped cache of the pages this process
** last shipped (content and page hash, RECENT_BYTES in all) is asked: most
** commits change the same few pages (a hot leaf, page 1, an index leaf),
** whose base is the frame shipped just before.  An entry is used only if
** its hash is the one s->ds holds, the same proof as for a read, so a stale
** entry (a rescan, a snapshot, another page in the slot) is never a base.
** At 1000 tx/s this saved the base's pread and its page hash on nearly
** every frame (docs/benchmarks.md, S6).
**
** Memory: 8 bytes per distinct page of the WAL cycle (bounded by the WAL,
** capped at MAP_MAX entries), a frame, a zero page and a delta buffer,
** RECENT_BYTES.
*/
#include "ship.h"
#include "common.h"
#include "delta.h"

#include <stdlib.h>
#include <string.h>

#define MAP_MAX (1u << 20)
#define RECENT_BYTES (256u << 10) /* the recent-page cache: 64 pages of 4 KiB */
#define RECENT_MAX 64             /* entries, a power of two (and >= 4) */

struct ship_delta {
  uint32_t salt1, salt2;   /* cycle the map describes */
  uint32_t *key, *val;     /* open addressing: page -> frame index */
  size_t cap, n;
  uint8_t *frame;          /* one WAL frame (header + page), 64 bytes over:
                              reads land as ws_wal_frame_align says */
  uint8_t *out;            /* a delta */
  uint8_t *zero;           /* a page of zeros: the base of a page the state
                           ** does not hold yet (apply.c's on_delta, compact.c) */
  uint32_t nrecent;        /* recent-page cache: entries, a power of two */
  uint32_t *rpg;           /* page number per entry, 0 = empty */
  uint64_t *rhash;         /* page hash of rdata's entry */
  uint8_t *rdata;          /* nrecent pages */
  uint32_t page_size;
  int off;                 /* WALSHIP_NO_DELTA=1 (benchmarks: side by side) */
};

static size_t slot(const ship_delta *d, uint32_t pgno) {
  size_t i = (size_t)(pgno * 0x9E3779B1u) & (d->cap - 1);
  while (d->key[i] && d->key[i] != pgno) i = (i + 1) & (d->cap - 1);
  return i;
}

static void remember(ship_delta *d, uint32_t pgno, uint32_t idx) {
  if (d->n * 2 >= d->cap) {
    size_t ncap = d->cap ? d->cap * 2 : 4096;
    if (ncap > 2 * (size_t)MAP_MAX) return;        /* full: no delta for new pages */
    uint32_t *k = calloc(ncap, sizeof(*k)), *v = calloc(ncap, sizeof(*v));
    if (!k || !v) { free(k); free(v); return; }   /* deltas are an optimisation */
    uint32_t *ok = d->key, *ov = d->val;
    size_t ocap = d->cap;
    d->key = k;
    d->val = v;
    d->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
      if (ok[i]) {
        size_t j = slot(d, ok[i]);
        d->key[j] = ok[i];
        d->val[j] = ov[i];
      }
    free(ok);
    free(ov);
  }
  size_t i = slot(d, pgno);
  if (!d->key[i]) d->n++;
  d->key[i] = pgno;
  d->val[i] = idx;
}

/* The page's content before frame f, if it can be found and proven by the
** hash s->ds holds; NULL otherwise. */
static const uint8_t *base_of(ship *s, ship_delta *d, const ws_walhdr *h,
                              const ws_frame *f) {
  uint32_t ps = s->page_size, fs = WS_WAL_FRAME_HDR + ps;
  const uint8_t *page = NULL;
  ws_err ignore = WS_ERR_INIT;
  uint32_t r = f->pgno & (d->nrecent - 1);
  if (d->nrecent && d->rpg[r] == f->pgno && d->rhash[r] == s->ds.h[f->pgno - 1])
    return d->rdata + (size_t)r * ps;
  size_t i = d->cap ? slot(d, f->pgno) : 0;
  if (d->cap && d->key[i] && d->val[i] < f->idx) {
    uint8_t *fb = d->frame + ws_wal_frame_align(d->val[i], fs);
    if (ws_wal_read_raw(s->wal, d->val[i], fb, fs, &ignore) == WS_OK &&
        ws_get32(fb) == f->pgno && ws_get32(fb + 8) == h->salt1 &&
        ws_get32(fb + 12) == h->salt2)
      page = fb + WS_WAL_FRAME_HDR;
  } else {
    ssize_t n = ws_pread_full(s->dbfd, d->frame, ps, (off_t)(f->pgno - 1) * ps, "db",
                              &ignore);
    if (n == (ssize_t)ps) page = d->frame;
  }
  if (page && ws_page_hash(f->pgno, page, ps) == s->ds.h[f->pgno - 1]) return page;
  return NULL;
}

/* The delta state for h's cycle and the current page size, made or reset
** as needed; NULL only when out of memory. */
static ship_delta *dl_for(ship *s, const ws_walhdr *h, ws_err *err) {
  ship_delta *d = s->delta;
  uint32_t ps = s->page_size;
  if (!d) {
    if (!(d = s->delta = ws_calloc(1, sizeof(*d), err))) return NULL;
    const char *v = getenv("WALSHIP_NO_DELTA");
    d->off = v && *v && strcmp(v, "0") != 0;
  }
  int reset = d->salt1 != h->salt1 || d->salt2 != h->salt2;   /* a new cycle */
  if (d->page_size != ps) {
    free(d->frame);
    free(d->out);
    free(d->zero);
    d->zero = NULL;
    free(d->rpg);
    free(d->rhash);
    free(d->rdata);
    d->frame = d->out = d->rdata = NULL;
    d->rpg = NULL;
    d->rhash = NULL;
    d->page_size = 0;
    uint32_t nr = RECENT_BYTES / ps;
    nr = nr > RECENT_MAX ? RECENT_MAX : nr < 4 ? 4 : nr;
    if (!(d->frame = ws_malloc(WS_WAL_FRAME_HDR + (size_t)ps + 64, err)) ||
        !(d->out = ws_malloc(ws_delta_worth(ps), err)) ||
        !(d->zero = ws_calloc(1, ps, err)))
      return NULL;
    /* the cache is an optimisation: without memory for it, none */
    d->nrecent = 0;
    d->rpg = calloc(nr, sizeof(*d->rpg));
    d->rhash = calloc(nr, sizeof(*d->rhash));
    d->rdata = malloc((size_t)nr * ps);
    if (d->rpg && d->rhash && d->rdata) d->nrecent = nr;
    d->page_size = ps;
    reset = 1;
  }
  if (reset) {
    d->salt1 = h->salt1;
    d->salt2 = h->salt2;
    d->n = 0;
    if (d->cap) memset(d->key, 0, d->cap * sizeof(*d->key));
  }
  return d;
}

void ship_delta_seen(void *ud, uint32_t pgno, uint32_t idx) {
  ship_seen *v = ud;
  ws_err ignore = WS_ERR_INIT;
  ship_delta *d = dl_for(v->s, v->h, &ignore);
  if (d && !d->off) remember(d, pgno, idx);
}

int ship_put_page(ship *s, const ws_walhdr *h, const ws_frame *f, ws_enc *enc,
                  int allow, uint64_t hash, ws_err *err) {
  ship_delta *d = dl_for(s, h, err);
  uint32_t ps = s->page_size;
  if (!d) return WS_ENOMEM;
  int rc = -1;
  if (allow && !d->off) {
    /* A page past the state's end (the database grows: a new leaf, an
    ** overflow page) is zeros in the state model, and restore, follow and
    ** compaction apply a delta there onto zeros: a new leaf holding one row
    ** ships as a few dozen bytes, not a page (at 1000 inserts a second, 3 %
    ** of the records were such pages, and half of the bytes to deflate). */
    const uint8_t *base = f->pgno <= s->ds.npages ? base_of(s, d, h, f) : d->zero;
    size_t len;
    if (base && ws_delta_make(d->out, ws_delta_worth(ps), &len, base, f->page, ps))
      rc = ws_enc_delta(enc, f->pgno, d->out, len, err);
  }
  if (rc < 0) rc = ws_enc_page(enc, f->pgno, f->page, err);
  if (rc == WS_OK && !d->off) {
    remember(d, f->pgno, f->idx);
    if (allow && d->nrecent) {
      uint32_t r = f->pgno & (d->nrecent - 1);
      memcpy(d->rdata + (size_t)r * ps, f->page, ps);
      d->rpg[r] = f->pgno;
      d->rhash[r] = hash;
    }
  }
  return rc;
}

void ship_delta_free(ship_delta *d) {
  if (!d) return;
  free(d->key);
  free(d->val);
  free(d->frame);
  free(d->out);
  free(d->zero);
  free(d->rpg);
  free(d->rhash);
  free(d->rdata);
  free(d);
}
