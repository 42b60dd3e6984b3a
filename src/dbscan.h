/*
** Reading a consistent database state without going through SQLite: the
** database file overlaid with the newest WAL frame of each page up to a
** commit frame.  Used for snapshots and to learn page hashes at startup.
**
** Consistency rests on the pin (pin.h): while the sidecar holds a read
** transaction whose mark is <= end_frame, a checkpoint only writes into the
** database file pages that have a frame <= that mark, and those pages are
** taken from the WAL here, never from the file.  Frames are re-verified
** against the checksum chain when read, so a reset under a slot-0 pin is
** detected (WS_ECORRUPT "changed while being read") instead of shipped.
*/
#ifndef WS_DBSCAN_H
#define WS_DBSCAN_H

#include <stdint.h>
#include "wal.h"

typedef int (*ws_page_fn)(void *ud, uint32_t pgno, const uint8_t *page,
                          ws_err *err);

typedef struct ws_dbscan_src {
  int dbfd;                 /* database file, read-only */
  const char *dbpath;
  ws_wal *wal;              /* NULL or with h == NULL: file only */
  const ws_walhdr *h;       /* cycle of end_frame */
  uint32_t end_frame;       /* a commit frame of h's cycle, or 0 */
  uint32_t page_size;
  /* optional: told each WAL frame (page, index) the overlay reads, oldest
  ** first (the sidecar learns where its delta bases are, ship_delta.c) */
  void (*on_frame)(void *ud, uint32_t pgno, uint32_t idx);
  void *frame_ud;
} ws_dbscan_src;

/* Page size from the database header (offset 16; 1 means 65536). */
int ws_db_page_size(uint32_t *out, int fd, const char *path, ws_err *err);

/* Number of pages of the state (commit size of end_frame, else file size). */
int ws_dbscan_npages(uint32_t *out, const ws_dbscan_src *src, ws_err *err);

/* Call cb for pages 1..npages in order.  Memory: a map of the WAL's
** distinct pages (bounded by the WAL, not the database) and 1 MiB. */
int ws_dbscan(const ws_dbscan_src *src, uint32_t npages, ws_page_fn cb,
              void *ud, ws_err *err);

#endif
