/*
** Apply: stream store objects onto a database state (see apply.h for the
** checks).  Each object is fetched through the store's ranged get into the
** codec's push decoder; its callbacks below update the page hashes and hand
** pages to the sink.  Memory: the decoder's bounded buffers plus the 8 bytes
** per page of ws_dbstate; nothing else grows with the database.
*/
#include "common.h"
#include "apply.h"
#include "delta.h"
#include "walship/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_name(uint32_t kind) {
  return kind == WS_KIND_SNAPSHOT ? "snapshot" :
         kind == WS_KIND_MERGED ? "merged segment" : "segment";
}

static int on_header(void *ud, const ws_objhdr *h, ws_err *err) {
  ws_apply *c = ud;
  const ws_catent *o = c->obj;
  if (h->kind != (uint32_t)o->kind || h->txid_first != o->first ||
      h->txid_last != o->last)
    return ws_corrupt(err, "%s: header says %s txids %" PRIu64 "-%" PRIu64
                      ", which does not match its name", o->name,
                      kind_name(h->kind), h->txid_first, h->txid_last);
  if (c->first_obj) {
    if (h->kind != WS_KIND_SNAPSHOT)
      return ws_corrupt(err, "%s: a restore must start at a snapshot", o->name);
    if (c->s_init) ws_dbstate_free(&c->s);
    c->s_init = 0;
    c->page_size = h->page_size;
    c->lineage = h->lineage;
    free(c->dbuf);   /* sized by the page size */
    c->dbuf = NULL;
    if (ws_dbstate_init(&c->s, h->page_size, err)) return err->code;
    c->s_init = 1;
    c->hwm = 0;
    return c->sink->history ? c->sink->history(c->ud, h, err) : WS_OK;
  }
  const char *prev = c->prev_name[0] ? c->prev_name : "the previous object";
  if (h->page_size != c->page_size)
    return ws_fail(err, WS_EVERIFY, "%s: page size %" PRIu32 " differs from "
                   "%" PRIu32 " of %s", o->name, h->page_size, c->page_size, prev);
  if (h->lineage != c->lineage)
    return ws_fail(err, WS_EVERIFY, "%s: lineage %016" PRIx64 " differs from "
                   "%016" PRIx64 " of %s (history may change only at a snapshot)",
                   o->name, h->lineage, c->lineage, prev);
  if (h->dbsum_before != c->s.sum)
    return ws_fail(err, WS_EVERIFY, "%s: applies onto state checksum %016" PRIx64
                   " but %s left %016" PRIx64, o->name, h->dbsum_before, prev,
                   c->s.sum);
  return WS_OK;
}

static int on_txn_begin(void *ud, uint64_t txid, int64_t time_ms,
                        uint32_t db_pages, uint32_t npages, ws_err *err) {
  ws_apply *c = ud;
  /* a merged segment's one record is numbered by its last TXID */
  uint64_t want = c->obj->kind == WS_KIND_MERGED ? c->obj->last : c->txid + 1;
  if (!c->first_obj && txid != want)
    return ws_corrupt(err, "%s: txid %" PRIu64 " does not follow %" PRIu64,
                      c->obj->name, txid, c->txid);
  if (txid > c->target && c->obj->kind == WS_KIND_MERGED)
    return ws_fail(err, WS_EINVAL, "%s: merged txids %" PRIu64 "-%" PRIu64
                   " cannot stop at txid %" PRIu64, c->obj->name,
                   c->obj->first, txid, c->target);
  /* Bound growth by what the stream carries, so a hostile header cannot
  ** make us allocate page hashes (8 bytes each) for pages nobody sent: a
  ** transaction grows the database by at most the pages it carries, plus
  ** SQLite's never-written lock page.  (Regrowing pages a shrink dropped is
  ** allowed up to the highest page ever carried: they read as zeros.) */
  uint32_t base = c->s.npages > c->hwm ? c->s.npages : c->hwm;
  c->txn_limit = npages > UINT32_MAX - 2 - base ? UINT32_MAX : base + npages + 1;
  c->txn_db_pages = db_pages;
  c->txn_time_ms = time_ms;
  return WS_OK;
}

static int on_page(void *ud, uint32_t pgno, const uint8_t *data, ws_err *err) {
  ws_apply *c = ud;
  if (pgno > c->txn_limit)
    return ws_corrupt(err, "%s: page %" PRIu32 " lies beyond what its transaction "
                      "can grow the database to (%" PRIu32 " pages)", c->obj->name,
                      pgno, c->txn_limit);
  if (pgno > c->hwm) c->hwm = pgno;
  int rc = c->sink->page(c->ud, pgno, data, err);
  if (rc) return rc;
  return ws_dbstate_set(&c->s, pgno, ws_page_hash(pgno, data, c->page_size), err);
}

/* A delta applies onto the page's content in the state: what the sink holds
** for it, or zeros beyond the state's size.  A wrong base cannot go
** unnoticed: the result's hash feeds the state checksum checked at 'E'. */
static int on_delta(void *ud, uint32_t pgno, const uint8_t *runs, size_t len,
                    ws_err *err) {
  ws_apply *c = ud;
  int rc;
  if (!c->dbuf && !(c->dbuf = ws_malloc(c->page_size, err))) return WS_ENOMEM;
  if (pgno <= c->s.npages) {
    if (!c->sink->read)
      return ws_fail(err, WS_EINVAL, "%s: page %" PRIu32 " is a delta, which this "
                     "destination cannot apply", c->obj->name, pgno);
    if ((rc = c->sink->read(c->ud, pgno, c->dbuf, err))) return rc;
  } else {
    memset(c->dbuf, 0, c->page_size);
  }
  ws_delta_apply(c->dbuf, runs, len);
  return on_page(ud, pgno, c->dbuf, err);
}

static int on_txn_end(void *ud, uint64_t txid, int has_sum, uint64_t dbsum,
                      ws_err *err) {
  ws_apply *c = ud;
  uint32_t most = (c->s.npages > c->hwm ? c->s.npages : c->hwm);
  if (c->txn_db_pages > most && c->txn_db_pages - most > 1)
    return ws_corrupt(err, "%s: txid %" PRIu64 " grows the database to %" PRIu32
                      " pages, but no page past %" PRIu32 " was ever carried",
                      c->obj->name, txid, c->txn_db_pages, most);
  int rc = ws_dbstate_resize(&c->s, c->txn_db_pages, err);
  if (rc) return rc;
  if (has_sum && dbsum != c->s.sum)
    return ws_fail(err, WS_EVERIFY, "%s: txid %" PRIu64 ": database checksum "
                   "mismatch after apply (expected %016" PRIx64 ", got %016" PRIx64 ")",
                   c->obj->name, txid, dbsum, c->s.sum);
  c->txid = txid;
  c->time_ms = c->txn_time_ms;
  if ((rc = c->sink->txn_end(c->ud, txid, c->txn_db_pages, err))) return rc;
  /* Stop inside the object at the target; a target that ends the object
  ** lets the decoder go on to verify the trailer. */
  if (txid == c->target && txid < c->obj->last) {
    c->stopped = 1;
    return WS_ESTOPPED;
  }
  return WS_OK;
}

static int on_trailer(void *ud, const ws_objtrl *t, ws_err *err) {
  ws_apply *c = ud;
  if (t->dbsum != c->s.sum)
    return ws_fail(err, WS_EVERIFY, "%s: database checksum mismatch after apply "
                   "(trailer expects %016" PRIx64 ", got %016" PRIx64 ")",
                   c->obj->name, t->dbsum, c->s.sum);
  return WS_OK;
}

static int sink_bytes(void *ud, const void *buf, size_t len, ws_err *err) {
  ws_apply *c = ud;
  if (c->stop && *c->stop)
    return ws_fail(err, WS_ESTOPPED, "%s", c->stop_msg ? c->stop_msg : "stopped");
  c->bytes += len;
  if (c->on_bytes) c->on_bytes(c->ud, c->bytes);
  return ws_dec_feed(c->dec, buf, len, err);
}

int ws_apply_object(ws_apply *c, ws_store *st, const ws_catent *obj,
                    int starts_history, ws_err *err) {
  static const ws_dec_cb cb0 = {NULL, on_header, on_txn_begin, on_page,
                                on_txn_end, on_trailer, on_delta};
  ws_dec_cb cb = cb0;
  cb.ud = c;
  uint64_t before = c->bytes, from = starts_history ? obj->first : c->txid + 1;
  c->obj = obj;
  c->first_obj = starts_history;
  c->stopped = 0;
  int rc = ws_dec_new(&c->dec, &cb, obj->name, err);
  if (rc) return rc;
  /* the listed size bounds the transfer (a shorter object is caught by the
  ** decoder as truncated); stores can split large objects by it */
  rc = c->get ? c->get(c->get_ud, obj, sink_bytes, c, err)
              : st->m->get(st, obj->name, 0, obj->size, sink_bytes, c, err);
  if (rc == WS_ESTOPPED && c->stopped) rc = WS_OK;   /* target reached */
  else if (rc == WS_OK) rc = ws_dec_finish(c->dec, err);
  ws_dec_free(c->dec);
  c->dec = NULL;
  if (rc) return rc;
  snprintf(c->prev_name, sizeof(c->prev_name), "%s", obj->name);
  ws_log(WS_LOG_DEBUG, "restore", "applied %s txids=%" PRIu64 "-%" PRIu64
         " bytes=%" PRIu64, obj->name, from, c->txid, c->bytes - before);
  return WS_OK;
}

void ws_apply_free(ws_apply *c) {
  if (c->dec) ws_dec_free(c->dec);
  c->dec = NULL;
  free(c->dbuf);
  c->dbuf = NULL;
  if (c->s_init) ws_dbstate_free(&c->s);
  c->s_init = 0;
}
