/*
** walship follow replicas: keep a local database current from a store.
**
** ws_follow applies new snapshots and segments to REPLICA as they appear,
** each object inside one ordinary SQLite write transaction on the replica
** (WAL mode), so other processes may read REPLICA with plain SQLite at any
** moment and see only committed states of the source.  The replica's
** position (TXID, lineage, state checksum) lives in "REPLICA-walship-follow"
** next to it; a restart resumes from there after proving, by checksum, which
** state the replica holds.  docs/DESIGN.md, "Follow replicas", has the why.
*/
#ifndef WALSHIP_FOLLOW_H
#define WALSHIP_FOLLOW_H

#include "walship/walship.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ws_follow_opts {
  unsigned version;          /* WS_FOLLOW_OPTS_VERSION */
  const char *store_url;
  const char *replica_path;  /* database kept current; created if missing */
  int64_t poll_ms;           /* list the store this often (default 1000) */
  volatile int *stop;        /* *stop != 0: finish the object being applied
                                (or roll it back), return WS_OK */
  const struct ws_store_opts *store; /* remote store options; NULL = defaults */
  int force;                 /* replace a REPLICA that is not a follow replica
                                (no state file) instead of refusing */
  int once;                  /* catch up with the store once, then return */
} ws_follow_opts;

#define WS_FOLLOW_OPTS_VERSION 1
#define WS_FOLLOW_OPTS_INIT {WS_FOLLOW_OPTS_VERSION, NULL, NULL, 1000, NULL, NULL, 0, 0}

/* Run until *stop (or once).  Fails on a verification error (the replica is
** left at its last committed, verified state), on a replica changed by
** another writer, or on a page size change of the source. Store errors are
** retried with backoff. */
WS_MUST_CHECK int ws_follow(const ws_follow_opts *opts, ws_err *err);

#ifdef __cplusplus
}
#endif
#endif /* WALSHIP_FOLLOW_H */
