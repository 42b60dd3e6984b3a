/*
** Several destinations for one database: ws_replicate_opts.dests.
**
** The sidecar ships every object to every destination through one "fan-out"
** store (src/store_fanout.c) that behaves as a single ws_store:
**   - put streams to every member and commits only when every member has
**     committed, so "durable" means durable in every destination;
**   - list returns the objects every member holds (the intersection), so the
**     sidecar resumes from the newest position durable everywhere, and a
**     new, empty destination makes it start a fresh history (a snapshot)
**     that every destination receives;
**   - get reads from the first member that answers;
**   - del deletes from every member.
** Per-destination work (retention, metrics) reaches the member stores
** through ws_store_fanout_members(), in the order of the dests array, and
** each destination's puts are reported to its observe hook.
**
** One capture loop feeds every destination, so they share the database's
** sync interval: a destination cannot be synced more or less often than
** the others (docs/config.md).
*/
#ifndef WALSHIP_DEST_H
#define WALSHIP_DEST_H

#include "walship.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the fan-out reports about one destination's part of a put
** (ws_dest.observe): for metrics, per destination. */
typedef struct ws_dest_put {
  size_t index;                      /* into the dests array */
  const char *name;                  /* the object's name */
  uint64_t bytes;                    /* written to this destination */
  int64_t ms;                        /* time spent in its put calls */
  const ws_err *err;                 /* NULL: committed; else why it failed */
} ws_dest_put;
typedef void (*ws_dest_observe_fn)(void *ud, const ws_dest_put *p);

typedef struct ws_dest {
  unsigned version;                  /* WS_DEST_VERSION */
  const char *name;                  /* label for logs and metrics; NULL = url */
  const char *url;                   /* store URL, as for ws_store_open_ex */
  const struct ws_store_opts *store; /* NULL = defaults */
  int64_t retention_ms;              /* this destination's retention window;
                                        -1 = ws_replicate_opts.retention_ms,
                                        0 = never delete */
  ws_dest_observe_fn observe;        /* NULL = none; called by the fan-out
                                        (n > 1) after each put to this
                                        destination committed or failed, on
                                        the sidecar's thread: keep it quick */
  void *observe_ud;
} ws_dest;

#define WS_DEST_VERSION 1
#define WS_DEST_INIT {WS_DEST_VERSION, NULL, NULL, NULL, -1, NULL, NULL}

/* Open every destination and combine them (see above).  n == 1 opens the
** plain store.  The fan-out's url is the members' urls joined by " + ". */
WS_MUST_CHECK int ws_store_fanout_open(ws_store **out, const ws_dest *dests,
                                       size_t n, ws_err *err);

/* The member stores of a fan-out, in dests order (borrowed: they live until
** the fan-out is closed).  A plain store has none (*n = 0): it is its own
** single destination. */
void ws_store_fanout_members(ws_store *st, ws_store *const **members, size_t *n);

#ifdef __cplusplus
}
#endif
#endif /* WALSHIP_DEST_H */
