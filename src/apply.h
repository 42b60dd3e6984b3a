/*
** Apply: stream store objects onto a database state, verifying as it goes.
**
** The one piece of code that turns snapshots and segments into pages, shared
** by restore (pages go into a temp file, restore.c) and follow replicas
** (pages go into an open SQLite database through sqlite_dbpage, follow.c).
** It owns the checks, so both get exactly the same ones:
**   - an object's header must match its catalog name; a history starts at a
**     snapshot; later objects must have its page size and lineage and apply
**     onto the current state checksum (dbsum_before);
**   - TXIDs follow each other; every page reaches the sink only after its
**     block's crc32 was verified (the decoder guarantees it);
**   - the state checksum is recomputed after every transaction and compared
**     with the one recorded there, and with the trailer's.
** The sink only stores pages and follows size changes; it never sees a
** transaction end before that transaction was verified.
*/
#ifndef WS_APPLY_H
#define WS_APPLY_H

#include <stdint.h>
#include "codec.h"
#include "names.h"
#include "pagehash.h"
#include "walship/store.h"

typedef struct ws_apply_sink {
  /* A snapshot starts a (new) history with header h; the state was reset.
  ** May refuse (a follow replica refuses a different page size). NULL ok. */
  int (*history)(void *ud, const ws_objhdr *h, ws_err *err);
  /* Page pgno now has this content (page_size bytes). */
  int (*page)(void *ud, uint32_t pgno, const uint8_t *data, ws_err *err);
  /* Transaction txid ended and was verified; the state has db_pages pages
  ** (the sink cuts or zero-extends to that). */
  int (*txn_end)(void *ud, uint64_t txid, uint32_t db_pages, ws_err *err);
  /* The current content of page pgno (at most the state's size, so it was
  ** written or zero-extended before): the base a delta record applies to. */
  int (*read)(void *ud, uint32_t pgno, uint8_t *out, ws_err *err);
} ws_apply_sink;

typedef struct ws_apply {
  /* set by the caller */
  const ws_apply_sink *sink;
  void *ud;
  uint64_t target;             /* stop after this txn (inside an object) */
  volatile int *stop;          /* *stop != 0: abandon with WS_ESTOPPED */
  const char *stop_msg;        /* message for that */
  /* bytes downloaded so far, after every chunk (NULL: none) */
  void (*on_bytes)(void *ud, uint64_t bytes);
  /* fetch obj through this instead of the store's get (prefetch); NULL:
  ** direct */
  int (*get)(void *get_ud, const ws_catent *obj, ws_sink_fn sink, void *ud,
             ws_err *err);
  void *get_ud;
  /* state: the caller may seed s/page_size/lineage/txid to continue an
  ** existing history (follow), or leave them zero (restore) */
  ws_dbstate s;                /* page hashes of the state built so far */
  int s_init;
  uint32_t page_size;          /* 0 until a snapshot header arrives */
  uint64_t lineage;
  uint64_t txid;               /* last transaction fully applied */
  int64_t time_ms;             /* its capture time (unix ms) */
  char prev_name[WS_NAME_MAX]; /* what produced the current state (messages) */
  uint64_t bytes;              /* downloaded, all objects */
  int stopped;                 /* reached target inside the last object */
  /* private */
  const ws_catent *obj;
  int first_obj;
  uint32_t txn_db_pages;
  uint32_t txn_limit;          /* highest page this transaction may carry */
  uint32_t hwm;                /* highest page number ever carried */
  int64_t txn_time_ms;
  uint8_t *dbuf;               /* a page: delta base and result */
  ws_dec *dec;
} ws_apply;

/*
** Download obj from st and apply it.  starts_history: obj must be a
** snapshot and replaces the state (restore's first object; a follow replica
** whose history changed).  Otherwise obj must continue the current state.
** On WS_OK a->txid is obj->last, or a->target when that lies inside obj
** (then a->stopped is set).
*/
int ws_apply_object(ws_apply *a, ws_store *st, const ws_catent *obj,
                    int starts_history, ws_err *err);
void ws_apply_free(ws_apply *a);   /* the state and decoder; not a itself */

#endif
