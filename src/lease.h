/*
** Single-writer fencing (lease.c): the sidecar holds a lease object in the
** store prefix while it ships, so two sidecars never interleave histories
** in one store.  docs/SECURITY.md states what is guaranteed per store.
*/
#ifndef WS_LEASE_H
#define WS_LEASE_H

#include "walship/store.h"

#define WS_LEASE_NAME "lease/writer"   /* outside snap/ and seg/: never cataloged */
#define WS_LEASE_TTL_MS 30000          /* default; $WALSHIP_LEASE_TTL_MS overrides */

typedef struct ws_lease ws_lease;

/* Take the lease on st for db_path: refused (WS_ELOCKED, naming the owner
** and when its lease expires) while another live owner holds it; taken
** over, with the epoch bumped, once it expired or its process is gone. */
WS_MUST_CHECK int ws_lease_acquire(ws_lease **out, ws_store *st, const char *db_path,
                                   ws_err *err);
/* Renew when a third of the lease has passed; call before every upload.
** WS_ELOCKED once another owner holds it (then stop shipping). */
WS_MUST_CHECK int ws_lease_tick(ws_lease *l, ws_err *err);
/* Give the lease up (delete the record) if still ours; frees l. */
void ws_lease_release(ws_lease *l);

/* WS_OK if this process holds a live lease on st (WS_ELOCKED naming the
** holder otherwise): a sidecar's maintenance passes need it. */
WS_MUST_CHECK int ws_lease_check(ws_store *st, ws_err *err);

/* The lease record, parsed (for tests and `ls`). */
typedef struct ws_lease_rec {
  char owner[128];       /* host:pid:random */
  char host[64];
  long pid;
  char db[256];
  uint64_t epoch;
  int64_t renewed_ms, expires_ms;  /* wall clock, unix ms */
} ws_lease_rec;
/* *found = 1 and *r if st holds a lease record, *found = 0 if not. */
WS_MUST_CHECK int ws_lease_read(int *found, ws_lease_rec *r, ws_store *st, ws_err *err);

#endif
