/*
** WAL reader: validates the header and the cumulative checksum chain and
** hands out frames of the valid prefix.  See wal.h for the format.
**
** Invariants: a frame is handed out only after its salts and checksum were
** verified against the chain from the header; the reader never trusts a
** size from the file to allocate (the page size is validated to 512..65536
** first).  Reads go in ~1 MiB chunks into one reused buffer.
**
** That buffer doubles as a cache of the frames a verifying pass just read:
** its reads append while they continue each other, and the re-read that
** encodes them (ws_wal_iter_known) takes them from the buffer when all it
** asks for is there.  At 100 tx/s with a 1 s interval a sync's frames fit
** (~120 of 254), and the second pread was ~10 % of the sidecar's CPU.
** Only frames that passed the chain check, up to the last commit frame
** among them, are served, once, to the known pass of the same cycle: they
** are exactly the bytes the scan verified, never an uncommitted frame that
** may be rewritten in place, and never bytes of an older sync.
*/
#include "wal.h"
#include "common.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_BYTES (1u << 20)

struct ws_wal {
  char *path;
  int fd;               /* -1 while the file does not exist */
  dev_t dev;
  ino_t ino;
  uint8_t *buf;         /* chunk buffer: raw + 0..63 (see align_buf) */
  uint8_t *raw;         /* its allocation, 64-byte aligned, 64 bytes over */
  size_t bufsz;
  uint32_t buf_ps;      /* page size the buffer was sized for */
  /* the cache (top of file): buf starts with frames c_first+1 ..
  ** c_first+c_ok of cycle c_salt1/c_salt2, verified; c_commit: the last
  ** commit frame among them (relative to c_first, 0 = none).  Frames past
  ** it may still be rewritten in place (an open or rolled-back write
  ** transaction), so only frames up to it are ever served. */
  int c_has;
  uint32_t c_salt1, c_salt2;
  uint32_t c_first, c_ok, c_commit;
};

void ws_wal_cksum(int bigendian, const uint8_t *d, size_t n, uint32_t *ps1,
                  uint32_t *ps2) {
  uint32_t s1 = *ps1, s2 = *ps2, a, b;
  const uint8_t *end = d + n;
  if (!bigendian) {
    for (; d < end; d += 8) {
      memcpy(&a, d, 4);
      memcpy(&b, d + 4, 4);
      s1 += le32toh(a) + s2;
      s2 += le32toh(b) + s1;
    }
  } else {
    for (; d < end; d += 8) {
      memcpy(&a, d, 4);
      memcpy(&b, d + 4, 4);
      s1 += be32toh(a) + s2;
      s2 += be32toh(b) + s1;
    }
  }
  *ps1 = s1;
  *ps2 = s2;
}

static int valid_page_size(uint32_t ps) {
  return ps >= 512 && ps <= 65536 && (ps & (ps - 1)) == 0;
}

int ws_walhdr_parse(ws_walhdr *out, const uint8_t *b, const char *path,
                    ws_err *err) {
  ws_walhdr h;
  h.magic = ws_get32(b);
  h.version = ws_get32(b + 4);
  h.page_size = ws_get32(b + 8);
  h.ckpt_seq = ws_get32(b + 12);
  h.salt1 = ws_get32(b + 16);
  h.salt2 = ws_get32(b + 20);
  h.ck1 = ws_get32(b + 24);
  h.ck2 = ws_get32(b + 28);
  if (h.magic != WS_WAL_MAGIC_LE && h.magic != WS_WAL_MAGIC_BE)
    return ws_corrupt(err, "%s: bad WAL magic 0x%08x", path, h.magic);
  if (h.version != WS_WAL_VERSION)
    return ws_corrupt(err, "%s: unsupported WAL format version %u", path, h.version);
  if (!valid_page_size(h.page_size))
    return ws_corrupt(err, "%s: invalid WAL page size %u", path, h.page_size);
  uint32_t s1 = 0, s2 = 0;
  ws_wal_cksum(h.magic & 1, b, 24, &s1, &s2);
  if (s1 != h.ck1 || s2 != h.ck2)
    return ws_corrupt(err, "%s: WAL header checksum mismatch", path);
  *out = h;
  return WS_OK;
}

ws_walpos ws_walpos_start(const ws_walhdr *h) {
  ws_walpos p = {h->salt1, h->salt2, 0, h->ck1, h->ck2};
  return p;
}

int ws_wal_open(ws_wal **out, const char *path, ws_err *err) {
  ws_wal *w = ws_calloc(1, sizeof(*w), err);
  if (!w) return WS_ENOMEM;
  w->fd = -1;
  if (!(w->path = ws_strdup(path, err))) {
    free(w);
    return WS_ENOMEM;
  }
  *out = w;
  return WS_OK;
}

void ws_wal_close(ws_wal *w) {
  if (!w) return;
  if (w->fd >= 0) close(w->fd);
  free(w->raw);
  free(w->path);
  free(w);
}

/* (Re)open the file when it appeared, vanished or was replaced. */
static int wal_refresh(ws_wal *w, ws_err *err) {
  struct stat st;
  if (stat(w->path, &st) != 0) {
    if (errno != ENOENT)
      return ws_fail(err, WS_EIO, "stat %s: %s", w->path, strerror(errno));
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    return WS_ENOTFOUND;
  }
  if (w->fd >= 0 && st.st_dev == w->dev && st.st_ino == w->ino) return WS_OK;
  if (w->fd >= 0) close(w->fd);
  w->c_has = 0;
  w->fd = open(w->path, O_RDONLY | O_CLOEXEC);
  if (w->fd < 0) {
    if (errno == ENOENT) return WS_ENOTFOUND;
    return ws_fail(err, WS_EIO, "open %s: %s", w->path, strerror(errno));
  }
  if (fstat(w->fd, &st) != 0)
    return ws_fail(err, WS_EIO, "stat %s: %s", w->path, strerror(errno));
  w->dev = st.st_dev;
  w->ino = st.st_ino;
  return WS_OK;
}

int64_t ws_wal_size(ws_wal *w) {
  struct stat st;
  if (w->fd < 0 || fstat(w->fd, &st) != 0) return 0;
  return (int64_t)st.st_size;
}

int ws_wal_header(ws_wal *w, ws_walhdr *out, ws_err *err) {
  uint8_t b[WS_WAL_HDR_SIZE];
  int rc = wal_refresh(w, err);
  if (rc) return rc;
  ssize_t n = ws_pread_full(w->fd, b, sizeof(b), 0, w->path, err);
  if (n < 0) return WS_EIO;
  if (n < (ssize_t)sizeof(b)) return WS_ENOTFOUND;
  return ws_walhdr_parse(out, b, w->path, err);
}

static int ensure_buf(ws_wal *w, uint32_t ps, ws_err *err) {
  if (w->buf && w->buf_ps == ps) return WS_OK;
  size_t fs = WS_WAL_FRAME_HDR + (size_t)ps;
  size_t nfr = CHUNK_BYTES / fs;
  if (nfr == 0) nfr = 1;
  free(w->raw);
  w->c_has = 0;
  w->buf = w->raw = ws_malloc(nfr * fs + 64, err);
  if (!w->raw) return WS_ENOMEM;
  w->bufsz = nfr * fs;
  w->buf_ps = ps;
  return WS_OK;
}

/* Place the buffer for a read that starts after frame idx (0-based: frame
** idx + 1 lands at slot 0) as that frame sits in the file, so that this
** read and every one appended after it copy between equally aligned
** addresses (ws_wal_frame_align).  Only called when the buffer's contents
** are being started over. */
static void align_buf(ws_wal *w, uint32_t idx, size_t fs) {
  w->buf = w->raw + ws_wal_frame_align(idx + 1, fs);
}

/* Verify frame header+page `fh` against the chain (s1,s2); advance it. */
static int frame_ok(const ws_walhdr *h, const uint8_t *fh, uint32_t *s1,
                    uint32_t *s2) {
  if (ws_get32(fh + 8) != h->salt1 || ws_get32(fh + 12) != h->salt2) return 0;
  if (ws_get32(fh) == 0) return 0;
  uint32_t c1 = *s1, c2 = *s2;
  ws_wal_cksum(h->magic & 1, fh, 8, &c1, &c2);
  ws_wal_cksum(h->magic & 1, fh + WS_WAL_FRAME_HDR, h->page_size, &c1, &c2);
  if (c1 != ws_get32(fh + 16) || c2 != ws_get32(fh + 20)) return 0;
  *s1 = c1;
  *s2 = c2;
  return 1;
}

/* A frame an earlier pass verified: same cycle, and the chain value it
** carries is taken as is (see ws_wal_iter_known). */
static int frame_known(const ws_walhdr *h, const uint8_t *fh, uint32_t *s1,
                       uint32_t *s2) {
  if (ws_get32(fh + 8) != h->salt1 || ws_get32(fh + 12) != h->salt2) return 0;
  if (ws_get32(fh) == 0) return 0;
  *s1 = ws_get32(fh + 16);
  *s2 = ws_get32(fh + 20);
  return 1;
}

static int iter(ws_wal *w, const ws_walhdr *h, const ws_walpos *from,
                uint32_t max_frame, int known, ws_frame_fn cb, void *ud,
                ws_walpos *end, ws_err *err);

int ws_wal_iter(ws_wal *w, const ws_walhdr *h, const ws_walpos *from,
                uint32_t max_frame, ws_frame_fn cb, void *ud, ws_walpos *end,
                ws_err *err) {
  return iter(w, h, from, max_frame, 0, cb, ud, end, err);
}

int ws_wal_iter_known(ws_wal *w, const ws_walhdr *h, const ws_walpos *from,
                      uint32_t to_frame, ws_frame_fn cb, void *ud, ws_walpos *end,
                      ws_err *err) {
  int rc = iter(w, h, from, to_frame, 1, cb, ud, end, err);
  w->c_has = 0; /* one use: the encode right after its scan, never a later one */
  return rc;
}

/* Frames (from, to] all verified in the buffer, for cycle h, and none past
** its last commit frame? */
static int cached(const ws_wal *w, const ws_walhdr *h, uint32_t from, uint32_t to) {
  return w->c_has && to > from && w->c_salt1 == h->salt1 && w->c_salt2 == h->salt2 &&
         from >= w->c_first && to - w->c_first <= w->c_commit;
}

static int iter(ws_wal *w, const ws_walhdr *h, const ws_walpos *from,
                uint32_t max_frame, int known, ws_frame_fn cb, void *ud,
                ws_walpos *end, ws_err *err) {
  int rc;
  ws_walpos pos = *from;
  if (pos.salt1 != h->salt1 || pos.salt2 != h->salt2)
    return ws_fail(err, WS_EINVAL, "%s: position is not in the current WAL cycle", w->path);
  if (w->fd < 0) {
    *end = pos;
    return WS_OK;
  }
  if ((rc = ensure_buf(w, h->page_size, err))) return rc;
  size_t fs = WS_WAL_FRAME_HDR + (size_t)h->page_size;
  size_t chunk = w->bufsz / fs;
  /* The file keeps its size after a reset, so the bytes past the last
  ** commit are usually a stale cycle's frames: start with a few frames and
  ** grow, rather than copy a whole buffer (1 MiB) that the first salt
  ** check discards, at each of the several scans of a sync. */
  size_t step = known ? chunk : 16;  /* known: the frames are there */
  for (;;) {
    size_t want = step < chunk ? step : chunk;
    if (step < chunk) step *= 4;
    if (max_frame) {
      if (pos.frame >= max_frame) break;
      if (max_frame - pos.frame < want) want = max_frame - pos.frame;
    }
    const uint8_t *base;
    size_t nfr, slot = 0;
    int first = pos.frame == from->frame;
    if (known && cached(w, h, pos.frame, max_frame)) {
      /* all of (pos, max_frame] verified in the buffer: no read */
      base = w->buf + (size_t)(pos.frame - w->c_first) * fs;
      want = nfr = max_frame - pos.frame;
    } else {
      /* a pass's reads append while the buffer has room; its first read
      ** starts the cache over, at the position the encode pass will ask for */
      if (!known && !first && w->c_has && pos.frame - w->c_first == w->c_ok &&
          w->c_ok < chunk) {
        slot = w->c_ok;
        if (want > chunk - slot) want = chunk - slot;
      } else if (!known) {
        w->c_has = 1, w->c_salt1 = h->salt1, w->c_salt2 = h->salt2;
        w->c_first = pos.frame, w->c_ok = w->c_commit = 0;
        align_buf(w, pos.frame, fs);
      } else {
        w->c_has = 0;                    /* overwritten below */
        align_buf(w, pos.frame, fs);
      }
      off_t off = WS_WAL_HDR_SIZE + (off_t)pos.frame * (off_t)fs;
      ssize_t got = ws_pread_full(w->fd, w->buf + slot * fs, want * fs, off, w->path, err);
      if (got < 0) {
        w->c_has = 0;
        return WS_EIO;
      }
      base = w->buf + slot * fs;
      nfr = (size_t)got / fs;
    }
    for (size_t i = 0; i < nfr; i++) {
      const uint8_t *fh = base + i * fs;
      uint32_t s1 = pos.ck1, s2 = pos.ck2;
      if (!(known ? frame_known(h, fh, &s1, &s2) : frame_ok(h, fh, &s1, &s2))) goto done;
      if (!known) {
        w->c_ok = (uint32_t)(slot + i + 1);
        if (ws_get32(fh + 4)) w->c_commit = w->c_ok;
      }
      pos.frame++;
      pos.ck1 = s1;
      pos.ck2 = s2;
      if (cb) {
        ws_frame f = {pos.frame, ws_get32(fh), ws_get32(fh + 4),
                      fh + WS_WAL_FRAME_HDR, pos};
        if ((rc = cb(ud, &f, err))) {
          *end = pos;
          return rc;
        }
      }
    }
    if (nfr < want) break;
  }
done:
  *end = pos;
  return WS_OK;
}

int ws_wal_read_frame(ws_wal *w, const ws_walhdr *h, uint32_t idx,
                      uint32_t ck1, uint32_t ck2, uint8_t *page_out,
                      ws_err *err) {
  int rc;
  if (w->fd < 0 || idx == 0)
    return ws_corrupt(err, "%s: frame %u vanished", w->path, idx);
  if ((rc = ensure_buf(w, h->page_size, err))) return rc;
  size_t fs = WS_WAL_FRAME_HDR + (size_t)h->page_size;
  off_t off = WS_WAL_HDR_SIZE + (off_t)(idx - 1) * (off_t)fs;
  w->c_has = 0;
  align_buf(w, idx - 1, fs);
  ssize_t got = ws_pread_full(w->fd, w->buf, fs, off, w->path, err);
  if (got < 0) return WS_EIO;
  if ((size_t)got < fs || !frame_ok(h, w->buf, &ck1, &ck2))
    return ws_corrupt(err, "%s: frame %u changed while being read", w->path, idx);
  memcpy(page_out, w->buf + WS_WAL_FRAME_HDR, h->page_size);
  return WS_OK;
}

int ws_wal_read_raw(ws_wal *w, uint32_t idx, uint8_t *buf, size_t fs, ws_err *err) {
  if (w->fd < 0 || idx == 0)
    return ws_fail(err, WS_ENOTFOUND, "%s: frame %u vanished", w->path, idx);
  off_t off = WS_WAL_HDR_SIZE + (off_t)(idx - 1) * (off_t)fs;
  ssize_t got = ws_pread_full(w->fd, buf, fs, off, w->path, err);
  if (got < 0) return err->code;
  if ((size_t)got < fs)
    return ws_fail(err, WS_ENOTFOUND, "%s: frame %u vanished", w->path, idx);
  return WS_OK;
}

int ws_wal_frame_in_cycle(ws_wal *w, const ws_walhdr *h, uint32_t idx) {
  uint8_t b[WS_WAL_FRAME_HDR];
  if (w->fd < 0 || idx == 0) return 0;
  off_t off = WS_WAL_HDR_SIZE + (off_t)(idx - 1) * (off_t)(WS_WAL_FRAME_HDR + h->page_size);
  return pread(w->fd, b, sizeof(b), off) == (ssize_t)sizeof(b) &&
         ws_get32(b + 8) == h->salt1 && ws_get32(b + 12) == h->salt2;
}

int ws_walidx_peek(int fd, uint32_t *mx, uint32_t *nb, uint64_t *cycle) {
  uint8_t b[136];
  /* The wal-index header is stored twice (48 bytes each); a writer updates
  ** the second copy, then the first, and SQLite's readers read the first,
  ** then the second, and retry if they differ (walIndexTryHdr).  pread
  ** copies in ascending order: the same check keeps a header caught half
  ** written (an old mxFrame with a new cycle's salts, say) out of the
  ** hints.  Still changing after a second read: unavailable this time. */
  for (int tries = 0;; tries++) {
    if (pread(fd, b, sizeof(b), 0) != (ssize_t)sizeof(b)) return 0;
    if (memcmp(b, b + 48, 48) == 0) break;
    if (tries == 1) return 0;
  }
  /* WalIndexHdr: mxFrame at 16 (native order), aSalt[2] at 32 (the WAL
  ** header's bytes); WalCkptInfo.nBackfill at 96 */
  memcpy(mx, b + 16, 4);
  memcpy(nb, b + 96, 4);
  if (cycle) *cycle = (uint64_t)ws_get32(b + 32) << 32 | ws_get32(b + 36);
  return 1;
}
