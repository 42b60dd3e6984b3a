/*
** Retention: delete what no restore inside the window needs.
**
** The invariant (docs/DESIGN.md, "Retention"): after a pass, a restore to
** the latest state, to w0 (the last transaction captured before the window
** began) and to every transaction captured inside the window still plans
** and applies exactly as before.  How:
**
**   1. w0 comes from the capture times in object headers (names.c,
**      ws_catalog_txid_at).  Header times never overstate how old a
**      transaction is (a snapshot's time is when it was taken, after its
**      TXID committed), so errors in w0 are towards keeping more.
**   2. Everything whose last TXID is > w0 is kept.
**   3. Of the objects ending at or before w0, a plan to any target >= w0
**      can only use the newest snapshot S0 <= w0 and, from it, the chain
**      that always takes the farthest object ending <= w0 (the planner's
**      own greedy rule, restricted): at each position the planner either
**      makes that same choice or leaves for an object ending after w0,
**      which step 2 keeps.  S0 and that chain are kept; the rest of the
**      objects ending <= w0 (older snapshots, segments compacted into
**      merged ones, superseded histories) are deleted.
**   4. Before deleting, the plans for w0, w0+1, the latest state and a
**      sample of in-window targets are rebuilt on the catalog without the
**      doomed objects and compared with the full catalog's; any difference
**      aborts the pass with nothing deleted.  This is the invariant checked
**      at run time, so a planner change can never turn retention into
**      data loss.
** With no snapshot at or before w0, nothing is deleted.
*/
#include "compact.h"
#include "common.h"
#include "s3xml.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_first_farthest(const void *pa, const void *pb) {
  const ws_catent *a = *(const ws_catent *const *)pa;
  const ws_catent *b = *(const ws_catent *const *)pb;
  if (a->first != b->first) return a->first < b->first ? -1 : 1;
  if (a->last != b->last) return a->last > b->last ? -1 : 1;
  if (a->level != b->level) return a->level > b->level ? -1 : 1;
  return strcmp(a->name, b->name);
}

/* Does the plan for target on cat match its plan on the full catalog?
** A target the full catalog cannot reach needs nothing. */
static int same_plan(const ws_catalog *full, const ws_catalog *kept,
                     uint64_t target, ws_err *err) {
  ws_plan a = {NULL, 0, 0}, b = {NULL, 0, 0};
  ws_err e1 = WS_ERR_INIT, e2 = WS_ERR_INIT;
  int ok;
  if (ws_plan_build(&a, full, target, &e1) != WS_OK) return 1;
  if (ws_plan_build(&b, kept, target, &e2) != WS_OK) {
    ws_fail(err, WS_ERROR, "retention would break the restore of txid %" PRIu64
            ": %s; nothing deleted (please report this)", target, e2.msg);
    ws_plan_free(&a);
    return 0;
  }
  ok = a.txid == b.txid;
  if (!ok)
    ws_fail(err, WS_ERROR, "retention would change the restore of txid %" PRIu64
            " (reaches %" PRIu64 " instead of %" PRIu64 "); nothing deleted "
            "(please report this)", target, b.txid, a.txid);
  ws_plan_free(&a);
  ws_plan_free(&b);
  return ok;
}

static int delete_all(ws_store *st, const char **names, size_t n,
                      volatile int *stop, ws_err *err) {
  if (strcmp(st->m->scheme, "s3") == 0)   /* 1000 per request */
    return ws_s3_delete_many(st, names, n, err);
  for (size_t i = 0; i < n; i++) {
    if (stop && *stop) return ws_fail(err, WS_ESTOPPED, "retention interrupted");
    int rc = st->m->del(st, names[i], err);
    if (rc) return rc;
  }
  return WS_OK;
}

int ws_retain(ws_store *st, const ws_catalog *cat, int64_t retention_ms,
              int64_t now_ms, int dry_run, ws_retain_stats *stats,
              volatile int *stop, ws_err *err) {
  uint64_t w0 = 0, maxt = 0;
  ws_err terr = WS_ERR_INIT;
  int rc;
  memset(stats, 0, sizeof(*stats));
  if (retention_ms <= 0 || cat->n == 0) return WS_OK;
  for (size_t i = 0; i < cat->n; i++)
    if (cat->v[i].last > maxt) maxt = cat->v[i].last;

  rc = ws_catalog_txid_at(&w0, st, cat, now_ms - retention_ms, &terr);
  if (rc == WS_EGAP) {         /* all of history is inside the window */
    stats->window_txid = cat->v[0].first;
    return WS_OK;
  }
  if (rc) {
    *err = terr;
    return rc;
  }
  stats->window_txid = w0 + 1;

  /* S0: the newest snapshot at or before w0. */
  const ws_catent *s0 = NULL;
  for (size_t i = 0; i < cat->n; i++)
    if (cat->v[i].kind == WS_KIND_SNAPSHOT && cat->v[i].last <= w0 &&
        (!s0 || cat->v[i].last > s0->last))
      s0 = &cat->v[i];
  if (!s0) return WS_OK;

  char *keep = ws_calloc(cat->n + 1, 1, err);
  const ws_catent **seg = ws_calloc(cat->n + 1, sizeof(*seg), err);
  const char **doomed = ws_calloc(cat->n + 1, sizeof(*doomed), err);
  ws_catalog kept = {ws_calloc(cat->n + 1, sizeof(ws_catent), err), 0};
  size_t nseg = 0, ndoomed = 0;
  if (!keep || !seg || !doomed || !kept.v) {
    rc = WS_ENOMEM;
    goto out;
  }
  keep[s0 - cat->v] = 1;
  for (size_t i = 0; i < cat->n; i++) {
    if (cat->v[i].last > w0) keep[i] = 1;
    else if (cat->v[i].kind != WS_KIND_SNAPSHOT && cat->v[i].first > s0->last)
      seg[nseg++] = &cat->v[i];
  }
  qsort(seg, nseg, sizeof(*seg), by_first_farthest);
  /* the restricted greedy chain from S0 (all candidates end <= w0) */
  uint64_t cur = s0->last;
  for (size_t i = 0; i < nseg && cur < w0;) {
    while (i < nseg && seg[i]->first <= cur) i++;
    if (i == nseg || seg[i]->first != cur + 1) break;
    keep[seg[i] - cat->v] = 1;   /* sorted farthest first at each start */
    cur = seg[i]->last;
  }

  for (size_t i = 0; i < cat->n; i++) {
    if (keep[i]) {
      kept.v[kept.n++] = cat->v[i];
      stats->kept++;
    } else {
      doomed[ndoomed++] = cat->v[i].name;
      stats->deleted++;
      stats->deleted_bytes += cat->v[i].size;
    }
  }
  if (!ndoomed) goto out;

  /* The run-time proof (4. above): w0, w0+1, latest, and up to 64 window
  ** targets spread over the objects that start inside the window. */
  uint64_t fixed[3] = {w0, w0 + 1 <= maxt ? w0 + 1 : maxt, maxt};
  for (int k = 0; k < 3; k++)
    if (!same_plan(cat, &kept, fixed[k], err)) { rc = err->code; goto out; }
  size_t nwin = 0;
  for (size_t i = 0; i < cat->n; i++)
    if (cat->v[i].kind == WS_KIND_SEGMENT && cat->v[i].first > w0) nwin++;
  size_t step = nwin > 64 ? nwin / 64 : 1, seen = 0;
  for (size_t i = 0; i < cat->n; i++) {
    if (cat->v[i].kind != WS_KIND_SEGMENT || cat->v[i].first <= w0) continue;
    if (seen++ % step) continue;
    if (!same_plan(cat, &kept, cat->v[i].first, err)) { rc = err->code; goto out; }
  }

  ws_log(WS_LOG_INFO, "retain", "%s objects=%" PRIu64 " bytes=%" PRIu64
         " kept=%" PRIu64 " window_from_txid=%" PRIu64 " base=%s",
         dry_run ? "would delete" : "deleting", stats->deleted,
         stats->deleted_bytes, stats->kept, w0 + 1, s0->name);
  if (!dry_run) rc = delete_all(st, doomed, ndoomed, stop, err);
out:
  free(keep);
  free(seg);
  free(doomed);
  free(kept.v);
  return rc;
}
