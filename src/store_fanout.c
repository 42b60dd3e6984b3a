/*
** The fan-out store: several destinations behind one ws_store
** (include/walship/dest.h states the semantics).
**
** Invariants:
**   - a put commits on every member or reports failure: an object the
**     sidecar counts as durable is durable in every destination.  A member
**     that committed before another failed keeps its copy (objects are
**     immutable and named by position; the retry writes the same or an
**     overlapping object, which restore tolerates);
**   - list is the intersection of the members' listings, so a position is
**     only resumed from when every destination holds it;
**   - get falls over to the next member only while no byte reached the
**     sink (a partial stream cannot be restarted from another copy);
**   - each member's part of a put (bytes, time in its calls, failure) goes
**     to that destination's observe hook once: on its commit, or on the
**     first call of it that failed.  Members not reached are not reported.
*/
#include "walship/dest.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct member_obs {
  ws_dest_observe_fn fn;   /* NULL: not observed */
  void *ud;
} member_obs;

typedef struct fanout {
  ws_store base;
  ws_store **m;            /* members, in dests order */
  member_obs *obs;         /* one per member */
  size_t n;
} fanout;

typedef struct member_put {
  uint64_t bytes;          /* written to this member */
  int64_t us;              /* time spent in its put calls */
} member_put;

typedef struct fan_upload {
  ws_upload base;
  ws_upload **up;          /* one per member; NULL once committed/aborted */
  member_put *mp;          /* one per member */
  size_t n;
} fan_upload;

/* Microseconds: one member's share of a put is many short calls. */
static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void observe(fanout *f, fan_upload *fu, size_t i, const ws_err *e) {
  if (!f->obs[i].fn) return;
  ws_dest_put p = {i, fu->base.name, fu->mp[i].bytes, fu->mp[i].us / 1000, e};
  f->obs[i].fn(f->obs[i].ud, &p);
}

static const ws_store_methods fanout_methods;

static void fan_abort(ws_upload *u) {
  fan_upload *fu = (fan_upload *)u;
  for (size_t i = 0; i < fu->n; i++)
    if (fu->up[i]) fu->up[i]->store->m->put_abort(fu->up[i]);
  free(fu->up);
  free(fu->mp);
  free(fu->base.name);
  free(fu);
}

static int fan_put_begin(ws_upload **out, ws_store *st, const char *name, ws_err *err) {
  fanout *f = (fanout *)st;
  fan_upload *fu = ws_calloc(1, sizeof(*fu), err);
  if (!fu) return WS_ENOMEM;
  fu->base.store = st;
  if (!(fu->up = ws_calloc(f->n, sizeof(*fu->up), err)) ||
      !(fu->mp = ws_calloc(f->n, sizeof(*fu->mp), err)) ||
      !(fu->base.name = ws_strdup(name, err))) {
    fan_abort(&fu->base);
    return WS_ENOMEM;
  }
  fu->n = f->n;
  for (size_t i = 0; i < f->n; i++) {
    int64_t t0 = mono_us();
    int rc = f->m[i]->m->put_begin(&fu->up[i], f->m[i], name, err);
    fu->mp[i].us += mono_us() - t0;
    if (rc) {
      fu->up[i] = NULL;
      observe(f, fu, i, err);
      fan_abort(&fu->base);
      return rc;
    }
  }
  *out = &fu->base;
  return WS_OK;
}

static int fan_put_write(ws_upload *u, const void *buf, size_t len, ws_err *err) {
  fan_upload *fu = (fan_upload *)u;
  for (size_t i = 0; i < fu->n; i++) {
    int64_t t0 = mono_us();
    int rc = fu->up[i]->store->m->put_write(fu->up[i], buf, len, err);
    fu->mp[i].us += mono_us() - t0;
    if (rc) {
      observe((fanout *)u->store, fu, i, err);
      return rc;
    }
    fu->mp[i].bytes += len;
  }
  return WS_OK;
}

/* Commit on every member even after one failed: the others then hold the
** object, which costs nothing and shortens the retry. The first error wins. */
static int fan_put_commit(ws_upload *u, ws_err *err) {
  fan_upload *fu = (fan_upload *)u;
  int first = WS_OK;
  for (size_t i = 0; i < fu->n; i++) {
    ws_err e = WS_ERR_INIT;
    ws_upload *mu = fu->up[i];
    fu->up[i] = NULL;  /* put_commit frees it, always */
    int64_t t0 = mono_us();
    int rc = mu->store->m->put_commit(mu, &e);
    fu->mp[i].us += mono_us() - t0;
    observe((fanout *)u->store, fu, i, rc ? &e : NULL);
    if (rc && first == WS_OK) {
      first = rc;
      *err = e;
    }
  }
  fan_abort(u);        /* frees the shell; every member upload is gone */
  return first;
}

typedef struct tee_sink {
  ws_sink_fn sink;
  void *ud;
  uint64_t passed;     /* bytes handed to the caller's sink */
} tee_sink;

static int tee(void *ud, const void *buf, size_t len, ws_err *err) {
  tee_sink *t = ud;
  t->passed += len;
  return t->sink(t->ud, buf, len, err);
}

static int fan_get(ws_store *st, const char *name, uint64_t off, uint64_t len,
                   ws_sink_fn sink, void *ud, ws_err *err) {
  fanout *f = (fanout *)st;
  int rc = WS_ERROR;
  for (size_t i = 0; i < f->n; i++) {
    tee_sink t = {sink, ud, 0};
    ws_err e = WS_ERR_INIT;
    rc = f->m[i]->m->get(f->m[i], name, off, len, tee, &t, &e);
    if (rc == WS_OK) return WS_OK;
    if (i == 0 || t.passed) *err = e;  /* report the first member's reason */
    if (t.passed) return rc;
    if (i + 1 < f->n)
      ws_log(WS_LOG_WARN, "store", "get %s from %s failed (%s); trying %s", name,
             f->m[i]->url, e.msg, f->m[i + 1]->url);
  }
  return rc;
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(((const ws_store_obj *)a)->name, ((const ws_store_obj *)b)->name);
}

static int fan_list(ws_store_list *out, ws_store *st, const char *prefix, ws_err *err) {
  fanout *f = (fanout *)st;
  ws_store_list acc = {NULL, 0, 0}, l = {NULL, 0, 0};
  int rc = f->m[0]->m->list(&acc, f->m[0], prefix, err);
  if (rc) goto out;
  for (size_t i = 1; i < f->n && acc.n; i++) {
    if ((rc = f->m[i]->m->list(&l, f->m[i], prefix, err))) goto out;
    if (l.n) qsort(l.v, l.n, sizeof(*l.v), name_cmp);
    size_t k = 0;
    for (size_t j = 0; j < acc.n; j++) {
      if (l.n && bsearch(&acc.v[j], l.v, l.n, sizeof(*l.v), name_cmp)) {
        acc.v[k++] = acc.v[j];
      } else {
        ws_log(WS_LOG_DEBUG, "store", "%s is missing from %s; not listed",
               acc.v[j].name, f->m[i]->url);
        free(acc.v[j].name);
      }
    }
    acc.n = k;
    ws_store_list_free(&l);
  }
  *out = acc;
  acc.v = NULL;
  acc.n = acc.cap = 0;
out:
  ws_store_list_free(&acc);
  ws_store_list_free(&l);
  return rc;
}

static int fan_del(ws_store *st, const char *name, ws_err *err) {
  fanout *f = (fanout *)st;
  int first = WS_OK;
  for (size_t i = 0; i < f->n; i++) {
    ws_err e = WS_ERR_INIT;
    int rc = f->m[i]->m->del(f->m[i], name, &e);
    if (rc && first == WS_OK) {
      first = rc;
      *err = e;
    }
  }
  return first;
}

static void fan_close(ws_store *st) {
  fanout *f = (fanout *)st;
  for (size_t i = 0; i < f->n; i++) ws_store_close(f->m[i]);
  free(f->m);
  free(f->obs);
  free(f->base.url);
  free(f);
}

/* Conditional write on every member, in dests order, stopping at the
** first that refuses or fails: members before it keep the new object (a
** lease record there is ours but the caller saw the failure and does not
** write).  The token is the members' tokens joined by '\n', an empty one
** for a member without the object (there the condition is "must not
** exist"), so a token from fan_etag carries every member's condition. */
static int fan_put_if(ws_store *st, const char *name, const void *buf, size_t len,
                      const char *if_match, char *etag_out, ws_err *err) {
  fanout *f = (fanout *)st;
  const char *p = if_match;
  char tok[WS_STORE_ETAG_MAX], got[WS_STORE_ETAG_MAX];
  if (etag_out) etag_out[0] = 0;
  for (size_t i = 0; i < f->n; i++) {
    const char *cond = NULL;
    if (p) {
      size_t k = strcspn(p, "\n"), c = k < sizeof(tok) ? k : sizeof(tok) - 1;
      memcpy(tok, p, c);
      tok[c] = 0;
      p = p[k] ? p + k + 1 : p + k;
      if (tok[0]) cond = tok;
    }
    int rc = f->m[i]->m->put_if(f->m[i], name, buf, len, cond, got, err);
    if (rc) return rc;
    if (etag_out && strlen(etag_out) + strlen(got) + 2 > WS_STORE_ETAG_MAX)
      return ws_fail(err, WS_EINVAL, "object %s: version tokens of %s too long", name,
                     st->url);
    if (etag_out) strcat(strcat(etag_out, i ? "\n" : ""), got);
  }
  return WS_OK;
}

static int fan_etag(ws_store *st, const char *name, char *out, ws_err *err) {
  fanout *f = (fanout *)st;
  char got[WS_STORE_ETAG_MAX];
  int any = 0;
  out[0] = 0;
  for (size_t i = 0; i < f->n; i++) {
    int rc = f->m[i]->m->etag(f->m[i], name, got, err);
    if (rc == WS_ENOTFOUND) got[0] = 0;
    else if (rc) return rc;
    else any = 1;
    if (strlen(out) + strlen(got) + 2 > WS_STORE_ETAG_MAX)
      return ws_fail(err, WS_EINVAL, "object %s: version tokens of %s too long", name,
                     st->url);
    strcat(strcat(out, i ? "\n" : ""), got);
  }
  return any ? WS_OK : ws_fail(err, WS_ENOTFOUND, "object %s not found in %s", name,
                                st->url);
}

static const ws_store_methods fanout_methods = {
  WS_STORE_METHODS_VERSION, "fanout", fan_put_begin, fan_put_write, fan_put_commit,
  fan_abort, fan_get, fan_list, fan_del, fan_close, NULL, NULL,
};
/* Offered when every member offers conditional writes. */
static const ws_store_methods fanout_methods_if = {
  WS_STORE_METHODS_VERSION, "fanout", fan_put_begin, fan_put_write, fan_put_commit,
  fan_abort, fan_get, fan_list, fan_del, fan_close, fan_put_if, fan_etag,
};

int ws_store_fanout_open(ws_store **out, const ws_dest *d, size_t n, ws_err *err) {
  if (n == 0 || !d) return ws_fail(err, WS_EINVAL, "no destination given");
  for (size_t i = 0; i < n; i++)
    if (d[i].version != WS_DEST_VERSION)
      return ws_fail(err, WS_EINVAL, "destination options version mismatch");
  if (n == 1) return ws_store_open_ex(out, d[0].url, d[0].store, err);
  fanout *f = ws_calloc(1, sizeof(*f), err);
  if (!f) return WS_ENOMEM;
  f->base.m = &fanout_methods;
  size_t ulen = 1;
  for (size_t i = 0; i < n; i++) ulen += strlen(d[i].url ? d[i].url : "") + 3;
  int rc = WS_ENOMEM;
  if (!(f->m = ws_calloc(n, sizeof(*f->m), err)) ||
      !(f->obs = ws_calloc(n, sizeof(*f->obs), err)) ||
      !(f->base.url = ws_malloc(ulen, err)))
    goto fail;
  for (size_t i = 0; i < n; i++) f->obs[i] = (member_obs){d[i].observe, d[i].observe_ud};
  f->base.url[0] = 0;
  for (size_t i = 0; i < n; i++) {
    if ((rc = ws_store_open_ex(&f->m[i], d[i].url, d[i].store, err))) goto fail;
    f->n = i + 1;
    if (i) strcat(f->base.url, " + ");
    strcat(f->base.url, d[i].url);
  }
  int all_if = 1;
  for (size_t i = 0; i < n; i++) all_if = all_if && ws_store_can_put_if(f->m[i]);
  if (all_if) f->base.m = &fanout_methods_if;
  *out = &f->base;
  return WS_OK;
fail:
  fan_close(&f->base);
  return rc;
}

void ws_store_fanout_members(ws_store *st, ws_store *const **members, size_t *n) {
  if (st && (st->m == &fanout_methods || st->m == &fanout_methods_if)) {
    *members = ((fanout *)st)->m;
    *n = ((fanout *)st)->n;
    return;
  }
  *members = NULL;
  *n = 0;
}
