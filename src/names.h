/*
** Object names and the catalog of a store.
**
** Names sort by position so that a listing alone gives the restore plan:
**   snap/<txid:016x>.snap                 snapshot of the state after txid
**   seg/<first:016x>-<last:016x>.seg      transactions first..last
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
/* Returns WS_KIND_SNAPSHOT / WS_KIND_SEGMENT and fills the range, or 0 for a
** name that is not ours. */
int ws_name_parse(const char *name, uint64_t *first, uint64_t *last);

typedef struct ws_catent {
  int kind;
  uint64_t first, last;
  uint64_t size;
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
