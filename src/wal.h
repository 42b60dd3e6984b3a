/*
** Reading a SQLite WAL file directly (never through SQLite).
**
** The format (sqlite.org/fileformat2.html#walformat, src/wal.c):
**   header, 32 bytes, big-endian words:
**     0 magic 0x377f0682 (checksum words little-endian) or 0x377f0683 (BE)
**     4 format version 3007000      8 page size      12 checkpoint sequence
**    16 salt-1   20 salt-2   24 checksum-1   28 checksum-2 (over bytes 0..23)
**   frame = 24-byte header + page:
**     0 page number   4 db size in pages after commit (commit frames), else 0
**     8 salt-1   12 salt-2   16 checksum-1   20 checksum-2
**   The checksum is cumulative: frame i's covers its header bytes 0..7 and its
**   page, seeded with frame i-1's (the header's for frame 1).
** A frame is valid iff its salts equal the header's and the chain holds; the
** valid prefix ends at the first frame that fails (an old cycle's leftovers,
** a torn or in-progress write).  Only frames up to the last valid commit
** frame are committed.  A reset (new salts) starts a new cycle at offset 32.
*/
#ifndef WS_WAL_H
#define WS_WAL_H

#include <stdint.h>
#include "walship/walship.h"
#include "codec.h"

#define WS_WAL_HDR_SIZE 32
#define WS_WAL_FRAME_HDR 24
#define WS_WAL_MAGIC_LE 0x377f0682u
#define WS_WAL_MAGIC_BE 0x377f0683u
#define WS_WAL_VERSION 3007000u

typedef struct ws_walhdr {
  uint32_t magic, version, page_size, ckpt_seq;
  uint32_t salt1, salt2, ck1, ck2;
} ws_walhdr;

/* Cumulative WAL checksum over n bytes (n a multiple of 8). */
void ws_wal_cksum(int bigendian, const uint8_t *data, size_t n,
                  uint32_t *s1, uint32_t *s2);
int ws_walhdr_parse(ws_walhdr *out, const uint8_t *buf,
                    const char *path, ws_err *err);

/* One valid frame, as handed to the iterator's callback. */
typedef struct ws_frame {
  uint32_t idx;          /* 1-based frame index in its cycle */
  uint32_t pgno;
  uint32_t commit;       /* db size in pages if a commit frame, else 0 */
  const uint8_t *page;   /* page_size bytes, valid during the callback */
  ws_walpos after;       /* position just after this frame */
} ws_frame;

typedef int (*ws_frame_fn)(void *ud, const ws_frame *f, ws_err *err);

typedef struct ws_wal ws_wal;

int ws_wal_open(ws_wal **out, const char *path, ws_err *err);
void ws_wal_close(ws_wal *w);
/* WS_ENOTFOUND: no WAL file or shorter than a header (nothing written yet);
** WS_ECORRUPT: a header that fails validation. */
int ws_wal_header(ws_wal *w, ws_walhdr *out, ws_err *err);
/* Current file size (0 if missing). */
int64_t ws_wal_size(ws_wal *w);

/*
** Call cb for each valid frame after `from` (which must be a position in
** h's cycle), stopping at the first invalid frame, at EOF, or after frame
** max_frame (0 = no limit).  *end is the position after the last valid
** frame.  Reads in large chunks into a reused buffer: no allocation or
** syscall per frame.  A callback's non-zero return stops and is returned.
*/
int ws_wal_iter(ws_wal *w, const ws_walhdr *h, const ws_walpos *from,
                uint32_t max_frame, ws_frame_fn cb, void *ud, ws_walpos *end,
                ws_err *err);

/*
** Re-read frames (from, to_frame] that ws_wal_iter verified a moment ago:
** each frame's salts are checked but its chain value is taken from its
** header instead of recomputed (the checksum is a quarter of the sidecar's
** CPU under a flood).  Sound because committed frames never change in place
** within a cycle, and the pin forbids the reset that would start a new one;
** the caller compares *end (frame and chain value) with the verified end,
** which any other header would break.
*/
int ws_wal_iter_known(ws_wal *w, const ws_walhdr *h, const ws_walpos *from,
                      uint32_t to_frame, ws_frame_fn cb, void *ud, ws_walpos *end,
                      ws_err *err);

/* Read and verify one frame given the chain value before it (for random
** access by the database scanner).  WS_ECORRUPT if it no longer matches. */
int ws_wal_read_frame(ws_wal *w, const ws_walhdr *h, uint32_t idx,
                      uint32_t ck1_before, uint32_t ck2_before,
                      uint8_t *page_out, ws_err *err);

/* Frame idx (header and page) into buf, fs = 24 + page size bytes, not
** verified: for a caller that proves the content otherwise (ship_delta.c
** checks the page hash).  WS_ENOTFOUND if the file is shorter. */
int ws_wal_read_raw(ws_wal *w, uint32_t idx, uint8_t *buf, size_t fs, ws_err *err);
/* Whether frame idx (1-based) is there with h's salts in its header (not
** verified: a hint that a commit is being written past the wal-index's
** mxFrame).  Reads 24 bytes. */
int ws_wal_frame_in_cycle(ws_wal *w, const ws_walhdr *h, uint32_t idx);
/* Where in a 64-byte-aligned buffer (with 64 bytes to spare) a read that
** starts with frame index idx (1-based) should land: at that frame's file
** offset mod 64.  The kernel's copy to user memory ran 4-7x slower on this
** project's machines when (destination - source) mod 64 fell in 1..31
** (common.c, ws_malloc); with 4 KiB pages that was 3 frames in 8. */
static inline size_t ws_wal_frame_align(uint32_t idx, size_t fs) {
  return (size_t)((WS_WAL_HDR_SIZE + (uint64_t)(idx - 1) * fs) % 64);
}

/* The starting position of h's cycle (frame 0, chain = header checksum). */
ws_walpos ws_walpos_start(const ws_walhdr *h);

/* The wal-index header (-shm, open on fd), read without locks: mxFrame,
** nBackfill and the cycle's salts (salt1 << 32 | salt2; cycle may be NULL).
** Hints only, never used for correctness.  0 if unavailable (unreadable,
** or caught half written twice in a row). */
int ws_walidx_peek(int fd, uint32_t *mx, uint32_t *nb, uint64_t *cycle);

#endif
