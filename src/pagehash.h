/*
** Page and database-state checksums.
**
** Every page has a 64-bit hash that mixes its content and its page number,
** and the checksum of a whole database state is the XOR of the hashes of
** pages 1..npages.  Changing one page updates the state checksum in O(1):
** sum ^= old ^ new, so the sidecar and restore both keep the hash of each
** page (8 bytes per page: the one cost that grows with database size).
**
** Model of a state (both sides must follow it exactly):
**   - ws_dbstate_set(p) on a page beyond npages first grows the database
**     with all-zero pages up to p;
**   - ws_dbstate_resize(n) at each commit drops pages beyond n, or appends
**     all-zero pages up to n.
*/
#ifndef WS_PAGEHASH_H
#define WS_PAGEHASH_H

#include <stdint.h>
#include "walship/walship.h"

/* Hash of the page content alone (no page number); ws_page_hash mixes in p. */
uint64_t ws_content_hash(const void *data, uint32_t page_size);
uint64_t ws_page_hash_mix(uint64_t content_hash, uint32_t pgno);
static inline uint64_t ws_page_hash(uint32_t pgno, const void *data, uint32_t page_size) {
  return ws_page_hash_mix(ws_content_hash(data, page_size), pgno);
}

typedef struct ws_dbstate {
  uint32_t page_size;
  uint32_t npages;      /* pages in the state */
  uint32_t cap;         /* entries allocated in h */
  uint64_t *h;          /* h[p-1] = ws_page_hash of page p */
  uint64_t sum;         /* XOR of h[0..npages-1] */
  uint64_t zero;        /* ws_content_hash of an all-zero page */
} ws_dbstate;

int ws_dbstate_init(ws_dbstate *s, uint32_t page_size, ws_err *err);
void ws_dbstate_free(ws_dbstate *s);
/* Set page pgno (1-based) to hash h; grows with zero pages if needed. */
int ws_dbstate_set(ws_dbstate *s, uint32_t pgno, uint64_t h, ws_err *err);
int ws_dbstate_resize(ws_dbstate *s, uint32_t npages, ws_err *err);

#endif
