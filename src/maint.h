/*
** Store maintenance (maint.c): one pass over an open store, and the
** sidecar's background thread that runs passes on every destination.
*/
#ifndef WS_MAINT_H
#define WS_MAINT_H
#include "walship/store.h"

int ws_maintain_store(ws_maint_result *res, ws_store *st, const ws_maint_opts *o,
                      ws_err *err);

typedef struct ws_maint ws_maint;
/* Passes every period_ms over each destination of ro (own store handles),
** with ro's retention (per destination where given) and compaction. */
int ws_maint_start(ws_maint **out, const ws_replicate_opts *ro, int64_t period_ms,
                   ws_err *err);
void ws_maint_stop(ws_maint *m);   /* stops and joins; accepts NULL */
#endif
