/*
** Database state scanner: file + WAL overlay.  See dbscan.h.
**
** Pages that have no frame in the WAL are read from the file in runs of up
** to 1 MiB (one pread per run, not per page).  A page beyond the end of the
** file reads as zeros, which is what SQLite would see after extending it.
*/
#include "dbscan.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RUN_BYTES (1u << 20)

typedef struct fmap_ent {
  uint32_t pgno;       /* 0 = empty slot */
  uint32_t idx;        /* newest frame of pgno <= end_frame */
  uint32_t ck1, ck2;   /* chain value before that frame */
} fmap_ent;

typedef struct fmap {
  fmap_ent *v;
  uint32_t mask;
  /* chain value before the frame being visited */
  uint32_t prev1, prev2;
  const ws_dbscan_src *src;
} fmap;

static uint32_t slot_of(const fmap *m, uint32_t pgno) {
  uint32_t i = (pgno * 2654435761u) & m->mask;
  while (m->v[i].pgno && m->v[i].pgno != pgno) i = (i + 1) & m->mask;
  return i;
}

static int map_frame(void *ud, const ws_frame *f, ws_err *err) {
  fmap *m = ud;
  fmap_ent *e = &m->v[slot_of(m, f->pgno)];
  e->pgno = f->pgno;
  e->idx = f->idx;
  e->ck1 = m->prev1;
  e->ck2 = m->prev2;
  m->prev1 = f->after.ck1;
  m->prev2 = f->after.ck2;
  if (m->src->on_frame) m->src->on_frame(m->src->frame_ud, f->pgno, f->idx);
  return WS_OK;
}

int ws_db_page_size(uint32_t *out, int fd, const char *path, ws_err *err) {
  uint8_t b[100];
  ssize_t n = ws_pread_full(fd, b, sizeof(b), 0, path, err);
  if (n < 0) return WS_EIO;
  if (n < (ssize_t)sizeof(b) || memcmp(b, "SQLite format 3", 16) != 0)
    return ws_corrupt(err, "%s: not a SQLite database (bad header)", path);
  uint32_t ps = ws_get16(b + 16);
  if (ps == 1) ps = 65536;
  if (ps < 512 || ps > 65536 || (ps & (ps - 1)))
    return ws_corrupt(err, "%s: invalid page size %u in header", path, ps);
  *out = ps;
  return WS_OK;
}

/* Records every frame's commit field, so after the walk it holds end_frame's
** own: 0 unless end_frame is a commit frame (an earlier commit's size must
** not stand in for it). */
static int commit_size(void *ud, const ws_frame *f, ws_err *err) {
  *(uint32_t *)ud = f->commit;
  return WS_OK;
}

int ws_dbscan_npages(uint32_t *out, const ws_dbscan_src *s, ws_err *err) {
  if (s->wal && s->h && s->end_frame > 0) {
    /* the commit size is in the frame header of end_frame itself; iterating
    ** only the last frame would need its chain value, so walk to it. */
    uint32_t n = 0;
    ws_walpos start = ws_walpos_start(s->h), end;
    int rc = ws_wal_iter(s->wal, s->h, &start, s->end_frame, commit_size, &n, &end, err);
    if (rc) return rc;
    if (end.frame != s->end_frame || n == 0)
      return ws_corrupt(err, "%s-wal: frame %u is not a valid commit", s->dbpath,
                        s->end_frame);
    *out = n;
    return WS_OK;
  }
  struct stat st;
  if (fstat(s->dbfd, &st) != 0)
    return ws_fail(err, WS_EIO, "stat %s: failed", s->dbpath);
  *out = (uint32_t)((uint64_t)st.st_size / s->page_size);
  return WS_OK;
}

int ws_dbscan(const ws_dbscan_src *s, uint32_t npages, ws_page_fn cb, void *ud,
              ws_err *err) {
  int rc = WS_OK;
  fmap m = {0};
  m.src = s;
  uint8_t *run = NULL, *page = NULL;
  uint32_t ps = s->page_size;
  uint32_t run_pages = RUN_BYTES / ps;

  if (s->wal && s->h && s->end_frame > 0) {
    uint64_t cap = 16;
    while (cap < (uint64_t)s->end_frame * 2) cap <<= 1;
    if (!(m.v = ws_calloc(cap, sizeof(fmap_ent), err))) return WS_ENOMEM;
    m.mask = (uint32_t)(cap - 1);
    ws_walpos start = ws_walpos_start(s->h), end;
    m.prev1 = start.ck1;
    m.prev2 = start.ck2;
    if ((rc = ws_wal_iter(s->wal, s->h, &start, s->end_frame, map_frame, &m, &end, err)))
      goto out;
    if (end.frame != s->end_frame) {
      rc = ws_corrupt(err, "%s-wal: frame %u changed while being read", s->dbpath,
                      end.frame + 1);
      goto out;
    }
  }
  if (!(run = ws_malloc((size_t)run_pages * ps, err)) || !(page = ws_malloc(ps, err))) {
    rc = WS_ENOMEM;
    goto out;
  }
  for (uint32_t p = 1; p <= npages;) {
    if (m.v) {
      fmap_ent *e = &m.v[slot_of(&m, p)];
      if (e->pgno == p) {
        if ((rc = ws_wal_read_frame(s->wal, s->h, e->idx, e->ck1, e->ck2, page, err)))
          goto out;
        if ((rc = cb(ud, p, page, err))) goto out;
        p++;
        continue;
      }
    }
    /* a run of pages from the file, up to the next page the WAL holds */
    uint32_t n = 1;
    while (n < run_pages && p + n <= npages &&
           !(m.v && m.v[slot_of(&m, p + n)].pgno == p + n))
      n++;
    off_t off = (off_t)(p - 1) * ps;
    ssize_t got = ws_pread_full(s->dbfd, run, (size_t)n * ps, off, s->dbpath, err);
    if (got < 0) {
      rc = WS_EIO;
      goto out;
    }
    if ((size_t)got < (size_t)n * ps) memset(run + got, 0, (size_t)n * ps - (size_t)got);
    for (uint32_t i = 0; i < n; i++)
      if ((rc = cb(ud, p + i, run + (size_t)i * ps, err))) goto out;
    p += n;
  }
out:
  free(m.v);
  free(run);
  free(page);
  return rc;
}
