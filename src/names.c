/*
** Object names, the catalog of a store, and the restore plan.
**
** Names are parsed strictly (exactly 16 lower-case hex digits, the right
** directory and extension, 1 <= first <= last): the listing is the only
** index we have, so anything that is not exactly ours is foreign and
** ignored rather than half-understood.
**
** Plan rules (see ws_plan_build): start at the newest snapshot <= target,
** extend with segments that start exactly at current+1 (a segment is a
** whole-object delta and cannot be applied from its middle), preferring
** among equal starts the one that reaches farthest without passing target.
** A chain that stops short of its goal is a gap, reported with the exact
** missing TXID range: we never silently restore an older state than the
** caller asked for or, for "latest", than the store holds.
*/
#include "names.h"
#include "common.h"
#include "codec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ws_name_snapshot(char out[WS_NAME_MAX], uint64_t txid) {
  snprintf(out, WS_NAME_MAX, "snap/%016" PRIx64 ".snap", txid);
}

void ws_name_segment(char out[WS_NAME_MAX], uint64_t first, uint64_t last) {
  snprintf(out, WS_NAME_MAX, "seg/%016" PRIx64 "-%016" PRIx64 ".seg", first, last);
}

/* Exactly 16 lower-case hex digits at p. */
static int hex16(const char *p, uint64_t *v) {
  uint64_t x = 0;
  for (int i = 0; i < 16; i++) {
    char c = p[i];
    if (c >= '0' && c <= '9') x = (x << 4) | (uint64_t)(c - '0');
    else if (c >= 'a' && c <= 'f') x = (x << 4) | (uint64_t)(c - 'a' + 10);
    else return 0;
  }
  *v = x;
  return 1;
}

void ws_name_merged(char out[WS_NAME_MAX], int level, uint64_t first, uint64_t last) {
  snprintf(out, WS_NAME_MAX, "seg/%016" PRIx64 "-%016" PRIx64 ".L%d.seg", first,
           last, level);
}

int ws_name_parse(const char *name, uint64_t *first, uint64_t *last) {
  int level;
  return ws_name_parse_level(name, first, last, &level);
}

int ws_name_parse_level(const char *name, uint64_t *first, uint64_t *last,
                        int *level) {
  uint64_t a, b;
  size_t n = strlen(name);
  *level = 0;
  if (n == 26 && memcmp(name, "snap/", 5) == 0 && hex16(name + 5, &a) &&
      strcmp(name + 21, ".snap") == 0 && a >= 1) {
    *first = *last = a;
    return WS_KIND_SNAPSHOT;
  }
  if (n == 41 && memcmp(name, "seg/", 4) == 0 && hex16(name + 4, &a) &&
      name[20] == '-' && hex16(name + 21, &b) && strcmp(name + 37, ".seg") == 0 &&
      a >= 1 && a <= b) {
    *first = a;
    *last = b;
    return WS_KIND_SEGMENT;
  }
  if (n == 44 && memcmp(name, "seg/", 4) == 0 && hex16(name + 4, &a) &&
      name[20] == '-' && hex16(name + 21, &b) && name[37] == '.' &&
      name[38] == 'L' && name[39] >= '1' && name[39] <= '0' + WS_LEVEL_MAX &&
      strcmp(name + 40, ".seg") == 0 && a >= 1 && a <= b) {
    *first = a;
    *last = b;
    *level = name[39] - '0';
    return WS_KIND_MERGED;
  }
  return 0;
}

/* Position order: by last txid, segments before a snapshot ending at the
** same txid, then longer segments first, then name (total order). */
static int catent_cmp(const void *pa, const void *pb) {
  const ws_catent *a = pa, *b = pb;
  if (a->last != b->last) return a->last < b->last ? -1 : 1;
  if ((a->kind == WS_KIND_SNAPSHOT) != (b->kind == WS_KIND_SNAPSHOT))
    return a->kind == WS_KIND_SNAPSHOT ? 1 : -1;
  if (a->first != b->first) return a->first < b->first ? -1 : 1;
  return strcmp(a->name, b->name);
}

int ws_catalog_load(ws_catalog *out, ws_store *st, ws_err *err) {
  static const char *const prefixes[] = {"snap/", "seg/"};
  ws_catalog c = {NULL, 0};
  size_t cap = 0;
  int rc = WS_OK;
  for (size_t p = 0; p < 2; p++) {
    ws_store_list l = {NULL, 0, 0};
    if ((rc = st->m->list(&l, st, prefixes[p], err))) goto fail;
    for (size_t i = 0; i < l.n; i++) {
      uint64_t first, last;
      int level;
      int kind = ws_name_parse_level(l.v[i].name, &first, &last, &level);
      if (!kind) continue;    /* foreign: not ours to interpret */
      if (c.n == cap) {
        size_t ncap = cap ? cap * 2 : 64;
        ws_catent *v = ws_realloc(c.v, ncap * sizeof(*v), err);
        if (!v) { rc = WS_ENOMEM; ws_store_list_free(&l); goto fail; }
        c.v = v;
        cap = ncap;
      }
      ws_catent *e = &c.v[c.n++];
      e->kind = kind;
      e->level = level;
      e->first = first;
      e->last = last;
      e->size = l.v[i].size;
      e->mtime_ms = l.v[i].mtime_ms;
      snprintf(e->name, sizeof(e->name), "%s", l.v[i].name);
    }
    ws_store_list_free(&l);
  }
  if (c.n) qsort(c.v, c.n, sizeof(*c.v), catent_cmp);
  *out = c;
  return WS_OK;
fail:
  free(c.v);
  return rc;
}

void ws_catalog_free(ws_catalog *c) {
  if (!c) return;
  free(c->v);
  c->v = NULL;
  c->n = 0;
}

/* Header of one catalog entry (one ranged GET of WS_OBJHDR_SIZE bytes). */
int ws_catent_header(ws_objhdr *h, ws_store *st, const ws_catent *e, ws_err *err) {
  void *buf = NULL;
  size_t len = 0;
  int rc = ws_store_get_buf(&buf, &len, st, e->name, 0, WS_OBJHDR_SIZE,
                            WS_OBJHDR_SIZE, err);
  if (rc == WS_OK) rc = ws_objhdr_parse(h, buf, len, e->name, err);
  free(buf);
  return rc;
}

/*
** The last TXID captured at or before t: binary search over the catalog by
** the capture time in each object's header (O(log n) header reads; capture
** times grow with TXIDs).  Every transaction of one of our segments shares
** the segment's capture time, so the answer is an object boundary.
*/
int ws_catalog_txid_at(uint64_t *txid, ws_store *st, const ws_catalog *cat,
                       int64_t t, ws_err *err) {
  size_t lo = 0, hi = cat->n; /* answer index in [lo, hi): time_last <= t */
  int64_t first_time = 0;
  ws_objhdr h;
  int rc;
  if (cat->n == 0) return ws_fail(err, WS_EEMPTY, "store holds no replica");
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if ((rc = ws_catent_header(&h, st, &cat->v[mid], err))) return rc;
    if (mid == 0) first_time = h.time_last_ms;
    if (h.time_last_ms <= t) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) {
    if (!first_time) {
      if ((rc = ws_catent_header(&h, st, &cat->v[0], err))) return rc;
      first_time = h.time_last_ms;
    }
    time_t sec = (time_t)(first_time / 1000);
    struct tm tm;
    char buf[32];
    gmtime_r(&sec, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return ws_fail(err, WS_EGAP, "no transaction captured at or before the requested "
                   "time; the store's history starts at %s (txid %" PRIu64 ")", buf,
                   cat->v[0].last);
  }
  *txid = cat->v[lo - 1].last;
  return WS_OK;
}

/* ----------------------------------------------------------------- plan */

/* Segments sorted by (first, last) so the candidates for "starts at t" are
** one contiguous run found by binary search. */
static int seg_cmp(const void *pa, const void *pb) {
  const ws_catent *a = *(const ws_catent *const *)pa;
  const ws_catent *b = *(const ws_catent *const *)pb;
  if (a->first != b->first) return a->first < b->first ? -1 : 1;
  if (a->last != b->last) return a->last < b->last ? -1 : 1;
  if (a->level != b->level) return a->level < b->level ? -1 : 1;
  return strcmp(a->name, b->name);
}

static int snap_newest_first(const void *pa, const void *pb) {
  const ws_catent *a = *(const ws_catent *const *)pa;
  const ws_catent *b = *(const ws_catent *const *)pb;
  if (a->last != b->last) return a->last > b->last ? -1 : 1;
  return strcmp(a->name, b->name);
}

/* Index of the first segment with first >= t. */
static size_t seg_lower(const ws_catent *const *seg, size_t n, uint64_t t) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (seg[mid]->first < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/*
** Greedy chain from snapshot snap towards goal (a TXID).  Fills chain
** (snapshot first; room for nseg+1 entries) and returns its length; *reach
** is the TXID the chain reaches, capped at goal (the last segment may run
** past it: restore stops inside it).
*/
static size_t chain_from(const ws_catent **chain, const ws_catent *snap,
                         const ws_catent *const *seg, size_t nseg, uint64_t goal,
                         uint64_t *reach) {
  size_t n = 0;
  uint64_t cur = snap->last;
  chain[n++] = snap;
  while (cur < goal) {
    size_t i = seg_lower(seg, nseg, cur + 1);
    const ws_catent *best = NULL;
    /* Candidates run in ascending last: the farthest not past goal is the
    ** last one <= goal; if all overshoot, the shortest one. */
    for (; i < nseg && seg[i]->first == cur + 1; i++) {
      /* a merged segment holds no state between its ends: never cut it */
      if (seg[i]->kind == WS_KIND_MERGED && seg[i]->last > goal) continue;
      if (seg[i]->last <= goal || !best) best = seg[i];
    }
    if (!best) break;
    chain[n++] = best;
    cur = best->last < goal ? best->last : goal;
  }
  *reach = cur;
  return n;
}

/* The WS_EGAP message for a chain that stopped at cur before goal. */
static int gap_error(const ws_catent *after, uint64_t cur, uint64_t goal,
                     const ws_catent *const *seg, size_t nseg, int latest,
                     ws_err *err) {
  size_t i = seg_lower(seg, nseg, cur + 2);
  if (i < nseg)
    return ws_fail(err, WS_EGAP, "history is not contiguous: missing TXIDs "
                   "%" PRIu64 "..%" PRIu64 " (after %s)", cur + 1,
                   seg[i]->first - 1, after->name);
  /* Nothing starts later: either nothing follows at all, or only segments
  ** that began before cur+1 (a compaction boundary we cannot cut into). */
  for (i = 0; i < nseg; i++)
    if (seg[i]->last > cur)
      return ws_fail(err, WS_EGAP, "history is not contiguous: no object "
                     "starts at txid %" PRIu64 " (after %s); %s overlaps it and "
                     "cannot be applied partially", cur + 1, after->name,
                     seg[i]->name);
  if (latest)  /* unreachable: goal is the store's own maximum */
    return ws_fail(err, WS_EGAP, "history is not contiguous: no object after "
                   "txid %" PRIu64 " (after %s)", cur, after->name);
  return ws_fail(err, WS_EGAP, "history is not contiguous: no object after txid "
                 "%" PRIu64 " (%s); target txid %" PRIu64 " is not reachable",
                 cur, after->name, goal);
}

int ws_plan_build(ws_plan *out, const ws_catalog *cat, uint64_t target,
                  ws_err *err) {
  return ws_plan_build_for(out, cat, NULL, target, err);
}

int ws_plan_build_for(ws_plan *out, const ws_catalog *cat, const char *store_url,
                      uint64_t target, ws_err *err) {
  /* " in store X" / "store X " when the caller named the store. */
  const char *in = store_url ? " in store " : "", *url = store_url ? store_url : "";
  const ws_catent **seg = NULL, **chain = NULL, **best = NULL, **snap = NULL;
  size_t nseg = 0, nbest = 0;
  uint64_t goal = target, best_reach = 0;
  int rc = WS_OK;

  const ws_catent *first_snap = NULL;
  for (size_t i = 0; i < cat->n; i++) {
    const ws_catent *e = &cat->v[i];
    if (e->kind != WS_KIND_SNAPSHOT) nseg++;
    else if (!first_snap || e->last < first_snap->last) first_snap = e;
    if (!target && e->last > goal) goal = e->last;   /* latest: all of it */
  }
  if (!first_snap)
    return ws_fail(err, WS_EEMPTY, "store%s%s holds no snapshot",
                   store_url ? " " : "", url);
  if (target && first_snap->last > target)
    return ws_fail(err, WS_EGAP, "no snapshot at or before txid %" PRIu64
                   "%s%s: the earliest is %s", target, in, url, first_snap->name);

  if (!(seg = ws_calloc(nseg + 1, sizeof(*seg), err)) ||
      !(chain = ws_calloc(nseg + 1, sizeof(*chain), err)) ||
      !(best = ws_calloc(nseg + 1, sizeof(*best), err)) ||
      !(snap = ws_calloc(cat->n, sizeof(*snap), err))) {
    rc = WS_ENOMEM;
    goto out;
  }
  nseg = 0;
  for (size_t i = 0; i < cat->n; i++)
    if (cat->v[i].kind != WS_KIND_SNAPSHOT) seg[nseg++] = &cat->v[i];
  qsort(seg, nseg, sizeof(*seg), seg_cmp);

  /* Newest usable snapshot first; an older one is used only if its chain
  ** reaches the goal when the newer one's does not (it may get through on a
  ** compacted segment that straddles the newer snapshot). */
  size_t nsnap = 0;
  for (size_t i = 0; i < cat->n; i++)
    if (cat->v[i].kind == WS_KIND_SNAPSHOT && cat->v[i].last <= goal)
      snap[nsnap++] = &cat->v[i];
  qsort(snap, nsnap, sizeof(*snap), snap_newest_first);
  const ws_catent *newest = snap[0];
  uint64_t newest_reach = 0;
  for (size_t k = 0; k < nsnap; k++) {
    uint64_t reach;
    size_t n = chain_from(chain, snap[k], seg, nseg, goal, &reach);
    if (k == 0 || reach > best_reach) {
      memcpy(best, chain, n * sizeof(*chain));
      nbest = n;
      best_reach = reach;
    }
    if (reach == goal) break;
  }
  if (best_reach < goal) {
    /* Report the hole as seen from the newest snapshot's chain: that is the
    ** history the user would expect to be restored. */
    size_t n = chain_from(chain, newest, seg, nseg, goal, &newest_reach);
    rc = gap_error(chain[n - 1], newest_reach, goal, seg, nseg, target == 0, err);
    goto out;
  }
  out->v = best;
  out->n = nbest;
  out->txid = best_reach;
  best = NULL;
out:
  free(snap);
  free(seg);
  free(chain);
  free(best);
  return rc;
}

void ws_plan_free(ws_plan *p) {
  if (!p) return;
  free((void *)p->v);
  p->v = NULL;
  p->n = 0;
}
