/*
** Page hashes and the database-state checksum (see pagehash.h and
** docs/FORMAT.md, "State checksum").
**
** content_hash(page) = crc32(page) << 32 | adler32(page), zlib's functions.
** page_hash(p, page) = mix(content_hash ^ p * 0x9E3779B97F4A7C15), where
** mix is the splitmix64 finalizer, so equal contents at different page
** numbers do not cancel under XOR.
**
** Invariants of a ws_dbstate s, kept by every function here:
**   - s->npages <= s->cap <= 0x7fffffff;
**   - s->h[p-1] is the page hash of page p for 1 <= p <= s->npages;
**   - s->sum == XOR of s->h[0 .. s->npages-1].
** set is O(1); resize is O(pages added or dropped) plus an amortised
** geometric realloc.  A failed call leaves the state unchanged.
*/
#include "pagehash.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>

#define PGNO_MAX 0x7fffffffu  /* SQLite's own limit on page numbers */

/* libdeflate's CRC-32 and Adler-32 are the same functions as zlib's (the
** format names zlib's) and several times faster: at 100 MB they were a
** fifth of a restore's time.  test_pagehash checks them against zlib. */
uint64_t ws_content_hash(const void *data, uint32_t page_size) {
  uint32_t c = libdeflate_crc32(0, data, page_size);
  uint32_t a = libdeflate_adler32(1, data, page_size);
  return ((uint64_t)c << 32) | a;
}

uint64_t ws_page_hash_mix(uint64_t content_hash, uint32_t pgno) {
  uint64_t x = content_hash ^ ((uint64_t)pgno * 0x9E3779B97F4A7C15ull);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

static int page_size_ok(uint32_t ps) {
  return ps >= 512 && ps <= 65536 && (ps & (ps - 1)) == 0;
}

int ws_dbstate_init(ws_dbstate *s, uint32_t page_size, ws_err *err) {
  /* Hash an all-zero page in chunks rather than allocating one. */
  static const uint8_t zeros[4096];
  if (!page_size_ok(page_size))
    return ws_fail(err, WS_EINVAL,
                   "page size %u is not a power of two in 512..65536",
                   page_size);
  uint32_t c = 0, a = 1;
  for (uint32_t done = 0; done < page_size;) {
    uint32_t n = page_size - done < sizeof(zeros) ? page_size - done
                                                  : (uint32_t)sizeof(zeros);
    c = libdeflate_crc32(c, zeros, n);
    a = libdeflate_adler32(a, zeros, n);
    done += n;
  }
  memset(s, 0, sizeof(*s));
  s->page_size = page_size;
  s->zero = ((uint64_t)c << 32) | a;
  return WS_OK;
}

void ws_dbstate_free(ws_dbstate *s) {
  if (!s) return;
  free(s->h);
  memset(s, 0, sizeof(*s));
}

/* Make room for n entries: double (at least 64), never past PGNO_MAX. */
static int reserve(ws_dbstate *s, uint32_t n, ws_err *err) {
  if (n <= s->cap) return WS_OK;
  uint64_t want = s->cap < 32 ? 64 : (uint64_t)s->cap * 2;
  if (want < n) want = n;
  if (want > PGNO_MAX) want = PGNO_MAX;
  if (want > SIZE_MAX / sizeof(uint64_t))
    return ws_fail(err, WS_ENOMEM, "page hash table of %llu pages is too large",
                   (unsigned long long)want);
  uint64_t *h = ws_realloc(s->h, (size_t)want * sizeof(uint64_t), err);
  if (!h) return WS_ENOMEM;
  s->h = h;
  s->cap = (uint32_t)want;
  return WS_OK;
}

int ws_dbstate_resize(ws_dbstate *s, uint32_t npages, ws_err *err) {
  if (npages > PGNO_MAX)
    return ws_fail(err, WS_EINVAL, "database size %u pages exceeds %u",
                   npages, PGNO_MAX);
  if (npages > s->npages) {
    int rc = reserve(s, npages, err);
    if (rc) return rc;
    uint64_t sum = s->sum;
    for (uint32_t p = s->npages + 1; p <= npages; p++) {
      uint64_t h = ws_page_hash_mix(s->zero, p);
      s->h[p - 1] = h;
      sum ^= h;
    }
    s->sum = sum;
  } else {
    uint64_t sum = s->sum;
    for (uint32_t p = npages + 1; p <= s->npages; p++) sum ^= s->h[p - 1];
    s->sum = sum;
  }
  s->npages = npages;
  return WS_OK;
}

int ws_dbstate_set(ws_dbstate *s, uint32_t pgno, uint64_t h, ws_err *err) {
  if (pgno == 0 || pgno > PGNO_MAX)
    return ws_fail(err, WS_EINVAL, "page number %u is outside 1..%u", pgno,
                   PGNO_MAX);
  if (pgno > s->npages) {
    int rc = ws_dbstate_resize(s, pgno, err);
    if (rc) return rc;
  }
  s->sum ^= s->h[pgno - 1] ^ h;
  s->h[pgno - 1] = h;
  return WS_OK;
}
