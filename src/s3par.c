/*
** The worker pool behind the s3 store's parallel transfers (s3par.h).
**
** Invariants: slot i is served by worker i only; slots[i].busy is read and
** written under mu, and a slot's other fields are touched by the caller
** only while it is idle and by its worker only while it is busy; free
** waits for every busy slot before stopping the workers, so a job never
** outlives the data its ud points to.
*/
#include "s3par.h"
#include "common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define S3PAR_MAX 16u                /* workers per pool, a hard cap */

typedef struct worker {
  ws_s3par *p;
  unsigned i;                  /* slot served */
  ws_http *http;               /* this worker's own handle */
  pthread_t tid;
  int started;                 /* tid is valid and must be joined */
} worker;

struct ws_s3par {
  unsigned n;                  /* slots = workers */
  ws_s3par_fn fn;
  void *ud;
  pthread_mutex_t mu;
  pthread_cond_t work;         /* a slot became busy, or quit */
  pthread_cond_t idle;         /* a slot became idle */
  int quit;                    /* workers exit once their slot is idle */
  atomic_int cancel;           /* jobs should give up early */
  ws_s3par_slot slots[S3PAR_MAX];
  int busy[S3PAR_MAX];         /* under mu */
  worker w[S3PAR_MAX];
};

static void *worker_main(void *arg) {
  worker *w = arg;
  ws_s3par *p = w->p;
  ws_s3par_slot *sl = &p->slots[w->i];
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->busy[w->i] && !p->quit) pthread_cond_wait(&p->work, &p->mu);
    if (!p->busy[w->i]) break;   /* quit with nothing to do */
    pthread_mutex_unlock(&p->mu);
    ws_err e = WS_ERR_INIT;
    int rc = p->fn(p->ud, w->http, sl, &e);
    pthread_mutex_lock(&p->mu);
    sl->rc = rc;
    sl->err = e;
    p->busy[w->i] = 0;
    pthread_cond_broadcast(&p->idle);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

int ws_s3par_new(ws_s3par **out, const ws_http_cfg *cfg, unsigned n, ws_s3par_fn fn,
                 void *ud, ws_err *err) {
  if (n == 0 || n > S3PAR_MAX) return ws_fail(err, WS_EINVAL, "worker pool of %u threads", n);
  ws_s3par *p = ws_calloc(1, sizeof(*p), err);
  if (!p) return WS_ENOMEM;
  p->n = n;
  p->fn = fn;
  p->ud = ud;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->idle, NULL);
  atomic_init(&p->cancel, 0);
  int rc = WS_OK;
  for (unsigned i = 0; i < n; i++) {
    p->slots[i].par = p;
    p->w[i].p = p;
    p->w[i].i = i;
    if ((rc = ws_http_new(&p->w[i].http, cfg, err))) goto fail;
    int e = pthread_create(&p->w[i].tid, NULL, worker_main, &p->w[i]);
    if (e) {
      rc = ws_fail(err, WS_ERROR, "starting a transfer thread: %s", strerror(e));
      goto fail;
    }
    p->w[i].started = 1;
  }
  *out = p;
  return WS_OK;
fail:
  ws_s3par_free(p);
  return rc;
}

ws_s3par_slot *ws_s3par_wait(ws_s3par *p, uint64_t seq) {
  unsigned i = (unsigned)(seq % p->n);
  pthread_mutex_lock(&p->mu);
  while (p->busy[i]) pthread_cond_wait(&p->idle, &p->mu);
  pthread_mutex_unlock(&p->mu);
  return &p->slots[i];
}

void ws_s3par_start(ws_s3par *p, ws_s3par_slot *sl, uint64_t seq) {
  unsigned i = (unsigned)(sl - p->slots);
  sl->seq = seq;
  sl->rc = WS_OK;
  sl->etag[0] = '\0';
  pthread_mutex_lock(&p->mu);
  p->busy[i] = 1;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->mu);
}

void ws_s3par_cancel(ws_s3par *p) { atomic_store(&p->cancel, 1); }

int ws_s3par_cancelled(const ws_s3par *p) {
  return atomic_load(&((ws_s3par *)p)->cancel) != 0;
}

void ws_s3par_free(ws_s3par *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->quit = 1;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->mu);
  for (unsigned i = 0; i < p->n; i++) {
    if (p->w[i].started) pthread_join(p->w[i].tid, NULL);
    ws_http_free(p->w[i].http);
    free(p->slots[i].buf);
  }
  pthread_cond_destroy(&p->idle);
  pthread_cond_destroy(&p->work);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

int ws_s3par_fill(void *ud, const void *buf, size_t len, ws_err *err) {
  ws_s3par_slot *sl = ud;
  if (ws_s3par_cancelled(sl->par))
    return ws_fail(err, WS_ESTOPPED, "range transfer cancelled");
  if (len > sl->want - sl->len || len > sl->cap - sl->len)
    return ws_fail(err, WS_ECORRUPT, "GET range answer longer than the %llu bytes asked",
                   (unsigned long long)sl->want);
  memcpy(sl->buf + sl->len, buf, len);
  sl->len += len;
  return WS_OK;
}

int ws_s3par_get(const ws_http_cfg *cfg, unsigned n, size_t range, uint64_t pos,
                 uint64_t len, ws_s3par_fn fn, void *ud, ws_sink_fn sink, void *sink_ud,
                 ws_err *err) {
  uint64_t end = len && len <= UINT64_MAX - pos ? pos + len : UINT64_MAX;
  uint64_t sent = 0, done = 0, next = pos;
  ws_s3par *p = NULL;
  int rc = ws_s3par_new(&p, cfg, n, fn, ud, err);
  if (rc) return rc;
  for (;;) {
    if (sent - done < n && next < end) {
      /* The slot's previous range (sent - n) was delivered already. */
      ws_s3par_slot *sl = ws_s3par_wait(p, sent);
      if (!sl->buf) {
        if (!(sl->buf = ws_malloc(range, err))) {
          rc = WS_ENOMEM;
          break;
        }
        sl->cap = range;
      }
      sl->off = next;
      sl->want = end - next < range ? end - next : range;
      sl->len = 0;
      next += sl->want;
      ws_s3par_start(p, sl, sent++);
      continue;
    }
    if (done == sent) break;
    ws_s3par_slot *sl = ws_s3par_wait(p, done++);
    if (sl->rc) {
      if (err) *err = sl->err;
      rc = sl->rc;
      break;
    }
    if (sl->len && (rc = sink(sink_ud, sl->buf, sl->len, err))) break;
    if (sl->len < sl->want) break;   /* the end of the object */
  }
  ws_s3par_cancel(p);                /* ranges still in flight are not wanted */
  ws_s3par_free(p);
  return rc;
}
