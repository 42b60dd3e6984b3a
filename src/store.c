/*
** Store front end: open-by-URL dispatch, name validation, and the
** whole-buffer conveniences over the streaming vtable.
**
** Invariants: a URL either carries a scheme ("x://...") that is looked up in
** the backend table, or is a plain path for the file store; an unknown
** scheme is refused rather than guessed at.  Object names are checked here
** once, with one rule set shared by every backend, because names may come
** from a hostile listing and end up in a file path or an HTTP request.
*/
#include "store_int.h"
#include "common.h"
#include "crypt.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* URL scheme -> backend. */
static const struct {
  const char *scheme;
  ws_store_open_fn open;
} backends[] = {
  {"file", ws_store_file_open},
  {"s3", ws_store_s3_open},
  {"http", ws_store_http_open},
  {"https", ws_store_http_open},
};

/* Length of the scheme if url looks like "scheme://...", else 0.  RFC 3986
** scheme chars; anything else (a path with a colon) is not a scheme. */
static size_t scheme_len(const char *url) {
  size_t i = 0;
  if (!((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')))
    return 0;
  for (i = 1; url[i]; i++) {
    char c = url[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')
      continue;
    break;
  }
  return strncmp(url + i, "://", 3) == 0 ? i : 0;
}

static int open_backend(ws_store **out, const char *url, const ws_store_opts *opts,
                        ws_err *err) {
  size_t n = scheme_len(url);
  if (n == 0)
    return ws_store_file_open(out, url, url, opts, err);
  for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
    if (strlen(backends[i].scheme) == n &&
        strncasecmp(backends[i].scheme, url, n) == 0)
      return backends[i].open(out, url, url + n + 3, opts, err);
  }
  return ws_fail(err, WS_EINVAL, "unsupported store URL scheme '%.*s' in %s",
                 (int)n, url, url);
}

/* With a key ring configured every backend is wrapped by the encrypting
** store (store_crypt.c), so every command reads and writes through it. */
int ws_store_open_ex(ws_store **out, const char *url, const ws_store_opts *opts,
                     ws_err *err) {
  static const ws_store_opts defaults = WS_STORE_OPTS_INIT;
  if (!opts) opts = &defaults;
  if (opts->version != WS_STORE_OPTS_VERSION)
    return ws_fail(err, WS_EINVAL, "store options version mismatch");
  if (!url || !*url)
    return ws_fail(err, WS_EINVAL, "empty store URL");
  ws_keyring *kr = NULL;
  const char *env = getenv(WS_CRYPT_ENV);
  int rc = opts->encryption_key_file ? ws_keyring_load(&kr, opts->encryption_key_file, err)
           : env && *env ? ws_keyring_parse(&kr, env, strlen(env), "$" WS_CRYPT_ENV, err)
           : WS_OK;
  if (rc) return rc;
  ws_store *st = NULL;
  if ((rc = open_backend(&st, url, opts, err))) {
    ws_keyring_free(kr);
    return rc;
  }
  if (!kr) {
    *out = st;
    return WS_OK;
  }
  return ws_store_crypt_wrap(out, st, kr, err);
}

int ws_store_open(ws_store **out, const char *url, ws_err *err) {
  return ws_store_open_ex(out, url, NULL, err);
}

void ws_store_close(ws_store *st) {
  if (st) st->m->close(st);
}

void ws_store_list_free(ws_store_list *l) {
  if (!l) return;
  for (size_t i = 0; i < l->n; i++) free(l->v[i].name);
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

int ws_store_check_name(const char *name, ws_err *err) {
  if (!name || !*name)
    return ws_fail(err, WS_EINVAL, "empty object name");
  size_t len = strlen(name);
  if (len > WS_STORE_NAME_MAX)
    return ws_fail(err, WS_EINVAL, "object name too long (%zu bytes, max %d): %.40s...",
                   len, WS_STORE_NAME_MAX, name);
  if (name[0] == '/')
    return ws_fail(err, WS_EINVAL, "object name %s: must be relative", name);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/'))
      return ws_fail(err, WS_EINVAL,
                     "object name %.80s: byte 0x%02x at offset %zu is not in [A-Za-z0-9._/-]",
                     name, c, i);
  }
  /* Every '/'-separated segment must be a real name: no "", ".", "..". */
  for (const char *seg = name;;) {
    const char *end = strchr(seg, '/');
    size_t sl = end ? (size_t)(end - seg) : strlen(seg);
    if (sl == 0 || (sl == 1 && seg[0] == '.') ||
        (sl == 2 && seg[0] == '.' && seg[1] == '.'))
      return ws_fail(err, WS_EINVAL,
                     "object name %s: empty, '.' or '..' path segment", name);
    if (!end) break;
    seg = end + 1;
  }
  return WS_OK;
}

int ws_store_can_put_if(const ws_store *st) {
  return st && st->m->version >= 2 && st->m->put_if && st->m->etag;
}

int ws_store_put_buf(ws_store *st, const char *name, const void *buf,
                     size_t len, ws_err *err) {
  ws_upload *up = NULL;
  int rc = st->m->put_begin(&up, st, name, err);
  if (rc) return rc;
  rc = st->m->put_write(up, buf, len, err);
  if (rc) {
    st->m->put_abort(up);
    return rc;
  }
  return st->m->put_commit(up, err);
}

/* Accumulates a get into one buffer, refusing to grow past max. */
typedef struct getbuf {
  char *p;
  size_t n, cap, max;
  const char *name;
} getbuf;

static int getbuf_sink(void *ud, const void *buf, size_t len, ws_err *err) {
  getbuf *g = ud;
  if (len > g->max - g->n)
    return ws_fail(err, WS_ENOMEM, "object %s is larger than the %zu bytes allowed",
                   g->name, g->max);
  if (g->n + len > g->cap) {
    size_t cap = g->cap ? g->cap : 4096;
    while (cap < g->n + len) cap = cap > g->max / 2 ? g->max : cap * 2;
    char *p = ws_realloc(g->p, cap, err);
    if (!p) return WS_ENOMEM;
    g->p = p;
    g->cap = cap;
  }
  memcpy(g->p + g->n, buf, len);
  g->n += len;
  return WS_OK;
}

int ws_store_get_buf(void **out, size_t *outlen, ws_store *st, const char *name,
                     uint64_t off, uint64_t len, size_t max, ws_err *err) {
  getbuf g = {NULL, 0, 0, max, name};
  int rc = st->m->get(st, name, off, len, getbuf_sink, &g, err);
  if (rc) {
    free(g.p);
    return rc;
  }
  if (!g.p && !(g.p = ws_malloc(1, err))) return WS_ENOMEM;
  *out = g.p;
  *outlen = g.n;
  return WS_OK;
}

int ws_store_list_add(ws_store_list *l, const char *name, uint64_t size,
                      int64_t mtime_ms, const char *store_url, ws_err *err) {
  if (l->n == l->cap) {
    if (l->cap >= WS_STORE_LIST_MAX)
      return ws_fail(err, WS_ENOMEM, "listing of store %s exceeds %u objects",
                     store_url, WS_STORE_LIST_MAX);
    size_t cap = l->cap ? l->cap * 2 : 64;
    ws_store_obj *v = ws_realloc(l->v, cap * sizeof(*v), err);
    if (!v) return WS_ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  if (!(l->v[l->n].name = ws_strdup(name, err))) return WS_ENOMEM;
  l->v[l->n].size = size;
  l->v[l->n].mtime_ms = mtime_ms;
  l->n++;
  return WS_OK;
}
