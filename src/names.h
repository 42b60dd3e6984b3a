/*
** Object names and the catalog of a store.
**
** Names sort by position so that a listing alone gives the restore plan:
**   snap/<txid:016x>.snap                 snapshot of the state after txid
**   seg/<first:016x>-<last:016x>.seg      transactions first..last
**   seg/<first:016x>-<last:016x>.L<n>.seg the same range merged by
**                                         compaction level n (1..3)
** Hex digits are lower case and fixed width, so byte order == TXID order.
** Anything else under the store root is "foreign": listed by ls as such,
** ignored by plans, never deleted.
*/
#ifndef WS_NAMES_H
#define WS_NAMES_H

#include <stdint.h>
#include <stddef.h>
#include "walship/store.h"

#define WS_NAME_MAX 64

void ws_name_snapshot(char out[WS_NAME_MAX], uint64_t txid);
void ws_name_segment(char out[WS_NAME_MAX], uint64_t first, uint64_t last);
/* A merged segment of compaction level 1..WS_LEVEL_MAX. */
#define WS_LEVEL_MAX 3
void ws_name_merged(char out[WS_NAME_MAX], int level, uint64_t first, uint64_t last);
/* Returns WS_KIND_SNAPSHOT / WS_KIND_SEGMENT and fills the range, or 0 for a
** name that is not ours. */
int ws_name_parse(const char *name, uint64_t *first, uint64_t *last);
/* Same, also returning the compaction level (0 for snapshots and segments). */
int ws_name_parse_level(const char *name, uint64_t *first, uint64_t *last,
                        int *level);

typedef struct ws_catent {
  int kind;
  int level;                /* 0, or 1..WS_LEVEL_MAX for merged segments */
  uint64_t first, last;
  uint64_t size;
  int64_t mtime_ms;         /* as listed by the store (0 if unknown) */
  char name[WS_NAME_MAX];
} ws_catent;

/* Our objects in a store, sorted by (last, kind: snapshots after segments
** ending at the same txid), foreign names dropped. */
typedef struct ws_catalog {
  ws_catent *v;
  size_t n;
} ws_catalog;

int ws_catalog_load(ws_catalog *out, ws_store *st, ws_err *err);
void ws_catalog_free(ws_catalog *c);

/*
** The last TXID captured at or before time t (unix ms): binary search over
** the capture times in the catalog's object headers (O(log n) ranged GETs of
** one header each).  WS_EGAP naming where history starts when t precedes it.
*/
int ws_catalog_txid_at(uint64_t *txid, ws_store *st, const ws_catalog *cat,
                       int64_t t, ws_err *err);
/* Header of one catalog entry (one ranged GET of the header bytes). */
struct ws_objhdr;
int ws_catent_header(struct ws_objhdr *h, ws_store *st, const ws_catent *e,
                     ws_err *err);

/*
** Restore plan for target (0 = latest): the newest snapshot with txid <=
** target, then segments that continue it contiguously up to target.
** Fails with WS_EEMPTY (no snapshot at all), or WS_EGAP naming the missing
** TXID range when the chain to target is broken.  plan->v points into cat.
*/
typedef struct ws_plan {
  const ws_catent **v;
  size_t n;
  uint64_t txid;            /* state the plan reaches */
} ws_plan;

int ws_plan_build(ws_plan *out, const ws_catalog *cat, uint64_t target,
                  ws_err *err);
/* Same, naming store_url (may be NULL) in its messages. */
int ws_plan_build_for(ws_plan *out, const ws_catalog *cat,
                      const char *store_url, uint64_t target, ws_err *err);
void ws_plan_free(ws_plan *p);

#endif
