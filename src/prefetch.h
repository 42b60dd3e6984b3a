/*
** Prefetch: download the objects of a restore plan in order on a second
** store handle and thread, while the caller applies the previous ones.
**
** Bytes travel through a queue of chunks holding at most `cap` bytes (the
** producer blocks when it is full), so memory is bounded by cap plus one
** store chunk whatever the database or object sizes.  Objects are consumed
** strictly in plan order; each object's download result (its ws_err) is
** delivered to the consumer at the object's end, so errors surface where a
** direct download would have raised them.
*/
#ifndef WS_PREFETCH_H
#define WS_PREFETCH_H

#include <stddef.h>
#include "names.h"
#include "walship/store.h"

typedef struct ws_prefetch ws_prefetch;

/* objs must stay valid until ws_prefetch_free. */
int ws_prefetch_start(ws_prefetch **out, const char *url, const ws_store_opts *so,
                      const ws_catent *const *objs, size_t n, size_t cap, ws_err *err);
/* Feed object i (the next one in order) to sink; returns the download's or
** the sink's error. */
int ws_prefetch_get(ws_prefetch *p, size_t i, ws_sink_fn sink, void *ud, ws_err *err);
/* Stop the producer (if still running), join it, free everything. */
void ws_prefetch_free(ws_prefetch *p);

#endif
