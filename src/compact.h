/*
** Compaction (compact.c) and retention (retain.c): the store-side
** maintenance that keeps restores short and the store bounded.  Both work
** from a catalog (names.h) and never touch what the sidecar is writing: the
** newest objects are never merged (their window is not complete) and never
** deleted (the newest chain is always kept).
*/
#ifndef WS_COMPACT_H
#define WS_COMPACT_H
#include "names.h"

typedef struct ws_compact_stats {
  uint64_t merged;         /* merged objects written */
  uint64_t inputs;         /* objects they replace */
  uint64_t bytes;          /* bytes uploaded */
  uint64_t skipped;        /* runs left alone (did not verify) */
} ws_compact_stats;

/* Window of compaction level 1..WS_LEVEL_MAX in ms (0 for others). */
int64_t ws_level_window_ms(int level);

/* Merge run[0..n) (contiguous, verified while read) into one merged object
** of the given level.  Memory O(pages/8); scratch in $TMPDIR. */
int ws_merge_run(ws_store *st, const ws_catent *const *run, size_t n, int level,
                 int zlevel, uint64_t *bytes_out, volatile int *stop, ws_err *err);

/* One compaction pass at level over the catalog (not reloaded). */
int ws_compact_level(ws_store *st, const ws_catalog *cat, int level,
                     int64_t now_ms, int zlevel, int dry_run,
                     ws_compact_stats *stats, volatile int *stop, ws_err *err);

typedef struct ws_retain_stats {
  uint64_t deleted;        /* objects deleted (or that would be) */
  uint64_t deleted_bytes;
  uint64_t kept;
  uint64_t window_txid;    /* oldest TXID that stays restorable */
} ws_retain_stats;

/*
** Retention: every transaction captured within retention_ms of now_ms (and
** the latest state) stays restorable; objects no such restore needs and
** that end before the window are deleted.  docs/DESIGN.md, "Retention".
*/
int ws_retain(ws_store *st, const ws_catalog *cat, int64_t retention_ms,
              int64_t now_ms, int dry_run, ws_retain_stats *stats,
              volatile int *stop, ws_err *err);
#endif
