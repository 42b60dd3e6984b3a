/*
** walship public API.
**
** walship ships the committed frames of a SQLite WAL-mode database to an
** object store and rebuilds the database from that store.  This header is
** the whole contract between libwalship and its callers (the `walship` CLI
** is one of them).  Conventions, borrowed from libgit2 and curl:
**   - every fallible call returns an int from ws_code (WS_OK == 0);
**   - the one-line reason is written into a caller-supplied ws_err, set once
**     where the failure is detected and passed up unchanged;
**   - option structs carry a version field and have an _INIT macro;
**   - output parameters come first, are written only on success, and are
**     owned by the caller afterwards (free with the matching _free, which
**     accepts NULL);
**   - the library never prints: it reports through the log hook.
*/
#ifndef WALSHIP_H
#define WALSHIP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WALSHIP_VERSION "0.1.0"

#if defined(__GNUC__)
#define WS_MUST_CHECK __attribute__((warn_unused_result))
#else
#define WS_MUST_CHECK
#endif

struct ws_store_opts; /* remote store options, include/walship/store.h */
struct ws_dest;       /* one of several destinations, include/walship/dest.h */

/* Return codes.  Append only: the numbers are part of the ABI. */
typedef enum ws_code {
  WS_OK = 0,
  WS_ERROR = 1,     /* unclassified failure */
  WS_EINVAL = 2,    /* invalid argument or option value */
  WS_ENOMEM = 3,    /* allocation failed or a hard cap was hit */
  WS_EIO = 4,       /* a local system call failed (disk full, permissions...) */
  WS_ECORRUPT = 5,  /* corrupt or truncated input: WAL, segment, snapshot */
  WS_ENOTFOUND = 6, /* a file, object or store does not exist */
  WS_EEXIST = 7,    /* output exists and overwriting was not requested */
  WS_ENOTWAL = 8,   /* the database is not in WAL mode */
  WS_EGAP = 9,      /* history in the store is not contiguous */
  WS_EVERIFY = 10,  /* rebuilt state does not match its recorded checksum */
  WS_ESQLITE = 11,  /* a SQLite API call failed */
  WS_ESTORE = 12,   /* a store request failed */
  WS_ELOCKED = 13,  /* another process holds a lock we need */
  WS_ESTOPPED = 14, /* stopped on request (signal) */
  WS_EEMPTY = 15    /* the store holds no replica */
} ws_code;

/* Static description of a code ("corrupt input"). Never NULL. */
const char *ws_strerror(int code);

/* The one-line detail of the last failure on a call chain. */
typedef struct ws_err {
  int code;            /* ws_code of the failure, WS_OK if none */
  char msg[512];       /* "fsync /data/app.db-wal: No space left on device" */
  const char *src_file;/* where in walship it was detected (for bug reports) */
  int src_line;
} ws_err;

#define WS_ERR_INIT {0, {0}, 0, 0}

/* ---------------------------------------------------------------- logging */
enum { WS_LOG_ERROR = 0, WS_LOG_WARN = 1, WS_LOG_INFO = 2, WS_LOG_DEBUG = 3 };

/*
** msg is one line of "text key=value key=value"; component names the
** subsystem ("ship", "restore", "store").  The hook may be called from any
** walship thread; it must not call back into walship.
*/
typedef void (*ws_log_fn)(void *ud, int level, const char *component,
                          const char *msg);
void ws_set_log(ws_log_fn fn, void *ud, int max_level);

/* -------------------------------------------------------------- replicate */
typedef struct ws_replicate_opts {
  unsigned version;          /* WS_REPLICATE_OPTS_VERSION */
  const char *db_path;       /* the application's database file */
  const char *store_url;     /* "file:///dir", "/dir", later s3:// http:// */
  int64_t sync_interval_ms;  /* batch commits this long; 0 = ship at once */
  int64_t snapshot_interval_ms; /* periodic full snapshot; 0 = never */
  uint32_t checkpoint_frames;/* sidecar PASSIVE checkpoint past this many
                                WAL frames (0 = never) */
  uint64_t wal_max_bytes;    /* past this WAL size, take the brief write-lock
                                barrier to let the WAL reset (0 = never) */
  int compress_level;        /* zlib level 0..9 */
  int64_t poll_ms;           /* wake-up period when no event arrives */
  volatile int *stop;        /* when *stop != 0: ship what is committed, return */
  int once;                  /* ship what is committed now, then return */
  const struct ws_store_opts *store; /* remote store options (store.h); NULL = defaults */
  int64_t retention_ms;      /* keep every transaction captured within this
                                window restorable; delete what no such restore
                                needs (docs/DESIGN.md).  0 = never delete */
  int compaction;            /* merge segments into levels in the background
                                (1, the default) so restores stay short */
  const struct ws_dest *dests; /* several destinations (include/walship/dest.h);
                                when ndests > 0 they replace store_url/store */
  size_t ndests;
  struct ws_stats *stats;    /* live counters and waiters (walship/stats.h),
                                updated by the sidecar; NULL = none */
} ws_replicate_opts;

#define WS_REPLICATE_OPTS_VERSION 1
#define WS_REPLICATE_OPTS_INIT \
  {WS_REPLICATE_OPTS_VERSION, NULL, NULL, 1000, 86400000, 1000, 16u << 20, 1, 250, NULL, 0, NULL, \
   86400000, 1, NULL, 0, NULL}

/*
** Run the sidecar until *opts->stop becomes non-zero (or once, see above).
** Returns WS_OK after a clean final sync.
*/
WS_MUST_CHECK int ws_replicate(const ws_replicate_opts *opts, ws_err *err);

/* ---------------------------------------------------------------- restore */
/* Where a restore is (ws_restore_opts.progress). */
typedef struct ws_restore_progress {
  uint64_t bytes_done;       /* downloaded so far */
  uint64_t bytes_total;      /* sum of the planned objects' sizes (a restore
                                stopping inside its last object ends short) */
  uint64_t objects_done, objects_total;
  uint64_t txid;             /* last transaction applied (0 before the first) */
  int done;                  /* 1 on the final call, after the rename */
} ws_restore_progress;

typedef struct ws_restore_opts {
  unsigned version;          /* WS_RESTORE_OPTS_VERSION */
  const char *store_url;
  const char *out_path;      /* database file to create */
  uint64_t target_txid;      /* 0 = latest */
  int force;                 /* overwrite out_path if it exists */
  int if_replica_exists;     /* empty store is not an error (returns WS_EEMPTY
                                with no error message; CLI exits 0) */
  int skip_integrity_check;  /* the page-checksum proof still runs */
  volatile int *stop;        /* when *stop != 0: abandon, remove the temp
                                file, return WS_ESTOPPED */
  const struct ws_store_opts *store; /* remote store options (store.h); NULL = defaults */
  int64_t target_time_ms;    /* restore the last transaction captured at or
                                before this time (unix ms); 0 = unused.
                                Exclusive with target_txid. */
  /* called from the restoring thread after every downloaded chunk and once
  ** at the end; must be cheap (throttle display itself). NULL = none */
  void (*progress)(void *ud, const ws_restore_progress *p);
  void *progress_ud;
} ws_restore_opts;

#define WS_RESTORE_OPTS_VERSION 1
#define WS_RESTORE_OPTS_INIT {WS_RESTORE_OPTS_VERSION, NULL, NULL, 0, 0, 0, 0, NULL, NULL, 0, \
                              NULL, NULL}

typedef struct ws_restore_result {
  uint64_t txid;             /* state restored is the one after this TXID */
  uint32_t page_size;
  uint32_t db_pages;
  uint64_t objects;          /* objects applied */
  uint64_t bytes_downloaded;
  uint64_t dbsum;            /* verified state checksum */
} ws_restore_result;

WS_MUST_CHECK int ws_restore(ws_restore_result *out,
                             const ws_restore_opts *opts, ws_err *err);

/* ------------------------------------------------------------ maintain */

/*
** Store maintenance: compaction (merge segments into levels so a restore
** reads few objects) and retention (delete what no restore inside the
** window needs).  The sidecar runs it in the background every minute; the
** `walship compact` command runs one pass.  Run one maintainer per store.
*/
typedef struct ws_maint_opts {
  unsigned version;          /* WS_MAINT_OPTS_VERSION */
  const char *store_url;
  const struct ws_store_opts *store; /* NULL = defaults */
  int64_t retention_ms;      /* 0 = delete nothing */
  int compaction;            /* merge completed windows into levels 1..3 */
  int compress_level;        /* zlib level for merged objects */
  int dry_run;               /* report what would be done, change nothing */
  int64_t now_ms;            /* 0 = the current time (tests pass a clock) */
  volatile int *stop;        /* abandon between objects when *stop != 0 */
} ws_maint_opts;

#define WS_MAINT_OPTS_VERSION 1
#define WS_MAINT_OPTS_INIT {WS_MAINT_OPTS_VERSION, NULL, NULL, 0, 1, 6, 0, 0, NULL}

typedef struct ws_maint_result {
  uint64_t merged;           /* merged objects written */
  uint64_t merged_inputs;    /* objects they cover */
  uint64_t merged_bytes;
  uint64_t deleted;          /* objects deleted by retention */
  uint64_t deleted_bytes;
  uint64_t kept;
  uint64_t window_txid;      /* oldest TXID restorable after the pass */
} ws_maint_result;

WS_MUST_CHECK int ws_maintain(ws_maint_result *out, const ws_maint_opts *opts,
                              ws_err *err);

/* -------------------------------------------------------------------- ls */
/* MERGED: a compacted run of segments (docs/FORMAT.md): one record holding
** the latest image of every page changed in txid_first..txid_last; it can
** only be applied whole. */
enum { WS_KIND_SNAPSHOT = 1, WS_KIND_SEGMENT = 2, WS_KIND_MERGED = 3 };

typedef struct ws_objinfo {
  char name[256];            /* object name relative to the store root */
  int kind;                  /* WS_KIND_* */
  uint64_t txid_first, txid_last;
  uint64_t size;             /* bytes in the store */
  uint32_t page_size, db_pages;
  uint32_t ntxn;             /* transactions in the object */
  int64_t time_first_ms, time_last_ms; /* capture times (unix ms) */
} ws_objinfo;

/* All snapshots and segments, sorted by position (txid_last, then kind). */
WS_MUST_CHECK int ws_ls(ws_objinfo **out, size_t *n, const char *store_url,
                        const struct ws_store_opts *store, ws_err *err);
void ws_objinfo_free(ws_objinfo *v);

/*
** The plan a restore with these options would follow, without downloading
** any page data (only object headers): the objects in apply order and the
** TXID the restore would reach.  out_path, force and the output checks are
** ignored.
*/
WS_MUST_CHECK int ws_restore_plan(ws_objinfo **out, size_t *n, uint64_t *txid,
                                  const ws_restore_opts *opts, ws_err *err);

#ifdef __cplusplus
}
#endif
#endif /* WALSHIP_H */
