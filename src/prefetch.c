/*
** Prefetch (prefetch.h): one producer thread downloads the plan's objects in
** order into a byte-capped FIFO of chunks; the restoring thread drains it.
** Invariants: queued <= cap except for a single chunk larger than cap (the
** producer may always queue into an empty FIFO, so it can never deadlock
** against a consumer waiting for data); every object ends with an end
** marker carrying its download result; after an error or abort the producer
** stops at once.
*/
#include "common.h"
#include "prefetch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct chunk {
  struct chunk *next;
  size_t obj;                   /* index in objs */
  size_t len;                   /* data bytes (0 for an end marker) */
  int end;                      /* end of object obj; rc/err its result */
  int rc;
  ws_err err;
  unsigned char data[];
} chunk;

struct ws_prefetch {
  pthread_t th;
  int started;
  pthread_mutex_t mu;
  pthread_cond_t cv;            /* queue changed, or abort */
  chunk *head, *tail;
  size_t queued, cap;
  int abort;                    /* consumer gave up: producer stops */
  int broken;                   /* producer could not queue an end marker */
  ws_store *st;                 /* the producer's own handle */
  const ws_catent *const *objs;
  size_t n, cur;
};

/* Queue c; 0, or -1 if aborted (c is freed). */
static int push(ws_prefetch *p, chunk *c) {
  pthread_mutex_lock(&p->mu);
  while (!p->abort && p->queued && p->queued + c->len > p->cap)
    pthread_cond_wait(&p->cv, &p->mu);
  if (p->abort) {
    pthread_mutex_unlock(&p->mu);
    free(c);
    return -1;
  }
  if (p->tail) p->tail->next = c;
  else p->head = c;
  p->tail = c;
  p->queued += c->len;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return 0;
}

static int produce(void *ud, const void *buf, size_t len, ws_err *err) {
  ws_prefetch *p = ud;
  chunk *c = malloc(sizeof(*c) + len);
  if (!c) return ws_fail(err, WS_ENOMEM, "prefetch: out of memory for %zu bytes", len);
  memset(c, 0, sizeof(*c));
  c->obj = p->cur;
  c->len = len;
  memcpy(c->data, buf, len);
  if (push(p, c)) return ws_fail(err, WS_ESTOPPED, "prefetch stopped");
  return WS_OK;
}

static void *producer(void *arg) {
  ws_prefetch *p = arg;
  for (size_t i = 0; i < p->n; i++) {
    ws_err e = WS_ERR_INIT;
    p->cur = i;
    const ws_catent *o = p->objs[i];
    int rc = p->st->m->get(p->st, o->name, 0, o->size, produce, p, &e);
    chunk *c = calloc(1, sizeof(*c));
    if (!c) {
      pthread_mutex_lock(&p->mu);
      p->broken = 1;
      pthread_cond_broadcast(&p->cv);
      pthread_mutex_unlock(&p->mu);
      break;
    }
    c->obj = i;
    c->end = 1;
    c->rc = rc;
    c->err = e;
    if (push(p, c) || rc) break;
  }
  return NULL;
}

int ws_prefetch_start(ws_prefetch **out, const char *url, const ws_store_opts *so,
                      const ws_catent *const *objs, size_t n, size_t cap, ws_err *err) {
  ws_prefetch *p = ws_calloc(1, sizeof(*p), err);
  if (!p) return WS_ENOMEM;
  int rc = ws_store_open_ex(&p->st, url, so, err);
  if (rc) {
    free(p);
    return rc;
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  p->objs = objs;
  p->n = n;
  p->cap = cap;
  if (pthread_create(&p->th, NULL, producer, p) != 0) {
    ws_prefetch_free(p);
    return ws_fail(err, WS_ENOMEM, "prefetch: cannot start a download thread");
  }
  p->started = 1;
  *out = p;
  return WS_OK;
}

int ws_prefetch_get(ws_prefetch *p, size_t i, ws_sink_fn sink, void *ud, ws_err *err) {
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (!p->head && !p->broken) pthread_cond_wait(&p->cv, &p->mu);
    chunk *c = p->head;
    if (c) {
      p->head = c->next;
      if (!p->head) p->tail = NULL;
      p->queued -= c->len;
      pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    if (!c) return ws_fail(err, WS_ENOMEM, "prefetch: out of memory");
    int rc = WS_OK;
    if (c->obj != i)
      rc = ws_fail(err, WS_ERROR, "prefetch: object %zu arrived while %zu was expected",
                   c->obj, i);
    else if (c->end) {
      rc = c->rc;
      if (rc) *err = c->err;
      free(c);
      return rc;
    } else {
      rc = sink(ud, c->data, c->len, err);
    }
    free(c);
    if (rc) {
      pthread_mutex_lock(&p->mu);
      p->abort = 1;
      pthread_cond_broadcast(&p->cv);
      pthread_mutex_unlock(&p->mu);
      return rc;
    }
  }
}

void ws_prefetch_free(ws_prefetch *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->abort = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  if (p->started) pthread_join(p->th, NULL);
  while (p->head) {
    chunk *c = p->head;
    p->head = c->next;
    free(c);
  }
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  ws_store_close(p->st);
  free(p);
}
