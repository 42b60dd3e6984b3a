/*
** Store maintenance driver: one pass = compaction level by level (each level
** sees the objects the previous one wrote), then retention.  The sidecar
** runs passes from a background thread (ws_maint_start) with its own store
** handles, so a slow merge or a long listing never delays shipping.
*/
#include "maint.h"
#include "compact.h"
#include "common.h"
#include "lease.h"
#include "walship/dest.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

int ws_maintain_store(ws_maint_result *res, ws_store *st, const ws_maint_opts *o,
                      ws_err *err) {
  int64_t now = o->now_ms ? o->now_ms : ws_now_ms();
  ws_catalog cat = {NULL, 0};
  int rc = WS_OK;
  memset(res, 0, sizeof(*res));
  for (int level = 1; o->compaction && level <= WS_LEVEL_MAX; level++) {
    ws_compact_stats cs = {0, 0, 0, 0};
    if ((rc = ws_catalog_load(&cat, st, err))) return rc;
    rc = ws_compact_level(st, &cat, level, now, o->compress_level, o->dry_run,
                          &cs, o->stop, err);
    ws_catalog_free(&cat);
    res->merged += cs.merged;
    res->merged_inputs += cs.inputs;
    res->merged_bytes += cs.bytes;
    if (rc) return rc;
  }
  if (o->retention_ms > 0) {
    ws_retain_stats rs;
    if ((rc = ws_catalog_load(&cat, st, err))) return rc;
    rc = ws_retain(st, &cat, o->retention_ms, now, o->dry_run, &rs, o->stop, err);
    ws_catalog_free(&cat);
    res->deleted = rs.deleted;
    res->deleted_bytes = rs.deleted_bytes;
    res->kept = rs.kept;
    res->window_txid = rs.window_txid;
  }
  return rc;
}

static __thread int maint_self;   /* set on the sidecar's maintenance thread */

int ws_maintain(ws_maint_result *res, const ws_maint_opts *o, ws_err *err) {
  ws_store *st = NULL;
  if (!o || o->version != WS_MAINT_OPTS_VERSION || !o->store_url)
    return ws_fail(err, WS_EINVAL, "maintain: store URL missing or options "
                   "version mismatch");
  int rc = ws_store_open_ex(&st, o->store_url, o->store, err);
  if (rc) return rc;
  /* a sidecar maintains only the store it holds the writer lease of (one
  ** that lost it must not merge or delete under the new owner); `walship
  ** compact` beside a sidecar run with --no-compaction stays allowed:
  ** merges cover completed windows only and retention keeps the chain */
  rc = maint_self ? ws_lease_check(st, err) : WS_OK;
  if (rc == WS_OK) rc = ws_maintain_store(res, st, o, err);
  ws_store_close(st);
  return rc;
}

/* ------------------------------------------------------ background */

typedef struct mdest {
  ws_maint_opts o;
  ws_store_opts so;
  char *url;
} mdest;

struct ws_maint {
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  volatile int stop;
  int64_t period_ms;
  mdest *d;
  size_t nd;
};

static void *maint_main(void *arg) {
  ws_maint *m = arg;
  maint_self = 1;
  pthread_mutex_lock(&m->mu);
  while (!m->stop) {
    /* first pass one period after start: the sidecar's own catch-up first */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + (m->period_ms % 1000) * 1000000;
    ts.tv_sec += m->period_ms / 1000 + ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    while (!m->stop && pthread_cond_timedwait(&m->cv, &m->mu, &ts) == 0) {}
    if (m->stop) break;
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < m->nd && !m->stop; i++) {
      ws_maint_result r;
      ws_err err = WS_ERR_INIT;
      int64_t t0 = ws_mono_ms();
      if (ws_maintain(&r, &m->d[i].o, &err) != WS_OK) {
        if (err.code != WS_ESTOPPED)
          ws_log(WS_LOG_WARN, "maint", "store %s: %s", m->d[i].url, err.msg);
      } else if (r.merged || r.deleted) {
        ws_log(WS_LOG_INFO, "maint", "store=%s merged=%" PRIu64 " inputs=%" PRIu64
               " deleted=%" PRIu64 " deleted_bytes=%" PRIu64 " ms=%" PRId64,
               m->d[i].url, r.merged, r.merged_inputs, r.deleted,
               r.deleted_bytes, ws_mono_ms() - t0);
      }
    }
    pthread_mutex_lock(&m->mu);
  }
  pthread_mutex_unlock(&m->mu);
  return NULL;
}

static int add_dest(ws_maint *m, const char *url, const ws_store_opts *so,
                    int64_t retention_ms, const ws_replicate_opts *ro, ws_err *err) {
  mdest *d = &m->d[m->nd];
  ws_maint_opts o0 = WS_MAINT_OPTS_INIT;
  ws_store_opts s0 = WS_STORE_OPTS_INIT;
  if (!(d->url = ws_strdup(url, err))) return WS_ENOMEM;
  d->so = so ? *so : s0;
  d->so.stop = &m->stop;      /* a pass in flight gives up at shutdown */
  d->o = o0;
  d->o.store_url = d->url;
  d->o.store = &d->so;
  d->o.retention_ms = retention_ms;
  d->o.compaction = ro->compaction;
  d->o.compress_level = ro->compress_level;
  d->o.stop = &m->stop;
  m->nd++;
  return WS_OK;
}

int ws_maint_start(ws_maint **out, const ws_replicate_opts *ro, int64_t period_ms,
                   ws_err *err) {
  ws_maint *m = ws_calloc(1, sizeof(*m), err);
  size_t n = ro->ndests ? ro->ndests : 1;
  int rc = WS_OK;
  if (!m) return WS_ENOMEM;
  if (!(m->d = ws_calloc(n, sizeof(*m->d), err))) { free(m); return WS_ENOMEM; }
  m->period_ms = period_ms;
  if (!ro->ndests) {
    rc = add_dest(m, ro->store_url, ro->store, ro->retention_ms, ro, err);
  } else {
    for (size_t i = 0; i < ro->ndests && rc == WS_OK; i++) {
      const ws_dest *d = &ro->dests[i];
      rc = add_dest(m, d->url, d->store,
                    d->retention_ms < 0 ? ro->retention_ms : d->retention_ms, ro, err);
    }
  }
  pthread_mutex_init(&m->mu, NULL);
  pthread_cond_init(&m->cv, NULL);
  if (rc == WS_OK && pthread_create(&m->th, NULL, maint_main, m) != 0)
    rc = ws_fail(err, WS_ERROR, "cannot start the maintenance thread");
  if (rc) {
    m->th = 0;
    ws_maint_stop(m);
    return rc;
  }
  *out = m;
  return WS_OK;
}

void ws_maint_stop(ws_maint *m) {
  if (!m) return;
  pthread_mutex_lock(&m->mu);
  m->stop = 1;
  pthread_cond_broadcast(&m->cv);
  pthread_mutex_unlock(&m->mu);
  if (m->th) pthread_join(m->th, NULL);
  for (size_t i = 0; i < m->nd; i++) free(m->d[i].url);
  pthread_mutex_destroy(&m->mu);
  pthread_cond_destroy(&m->cv);
  free(m->d);
  free(m);
}
