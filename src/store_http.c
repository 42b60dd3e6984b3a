/*
** The plain HTTP store: objects are files under a base URL on a server
** that speaks WebDAV PUT/DELETE and lists directories as JSON — stock nginx
** with `dav_methods PUT DELETE; create_full_put_path on; autoindex on;
** autoindex_format json;`.  Object "seg/A-B.seg" lives at BASE/seg/A-B.seg.
**
** Invariants:
**   - a put is one PUT of the whole object, sent at commit with its
**     Content-MD5: the server (nginx writes a temp file and renames it)
**     replaces the object atomically, so an object is absent or complete;
**   - the object is buffered in memory until commit, at most HS_PUT_MAX
**     bytes.  KNOWN LIMIT: a larger object (a snapshot of a database over
**     256 MiB) is refused with WS_ENOMEM; WebDAV has no multipart upload,
**     use the S3 store for such databases;
**   - nginx lists one directory, without recursion, prefix or pagination,
**     so list walks BASE/, then BASE/DIR/ for each directory that can hold
**     a name with the prefix, at most HS_DEPTH_MAX levels deep; each
**     listing is refused past HS_LIST_BODY_MAX bytes and the whole result
**     past WS_STORE_LIST_MAX objects;
**   - names in a listing come from the server: any that fails
**     ws_store_check_name is skipped with a warning, never requested;
**   - URLs carry no credentials (refused at open), so they can appear in
**     every message and log line.
** Concurrency: one ws_http (one connection) is cached per store and taken
** with an atomic swap; a concurrent caller that finds it taken opens its
** own, so gets may run in parallel as with the file store.
*/
#include "store_int.h"
#include "common.h"
#include "http.h"

#include <json-c/json.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HS_PUT_MAX (256u << 20)       /* bytes buffered for one PUT */
#define HS_LIST_BODY_MAX (64u << 20)  /* bytes of one JSON directory listing */
#define HS_DEPTH_MAX 4                /* directory levels list follows */
#define HS_JSON_DEPTH 8               /* nesting json-c accepts: [ { } ] */

typedef struct http_store {
  ws_store base;               /* must be first */
  char *root;                  /* "http://host[:port]/path", no trailing '/' */
  ws_http_cfg cfg;             /* for new handles (ws_http_new copies strings) */
  _Atomic(ws_http *) idle;     /* cached handle, NULL while in use */
} http_store;

typedef struct http_upload {
  ws_upload base;              /* must be first */
  unsigned char *buf;          /* the whole object, until commit */
  size_t len, cap;
} http_upload;

static const ws_store_methods http_methods;

/* ------------------------------------------------------------ helpers */

static ws_http *handle_take(http_store *hs, ws_err *err) {
  ws_http *h = atomic_exchange(&hs->idle, NULL);
  if (!h && ws_http_new(&h, &hs->cfg, err)) return NULL;
  return h;
}

static void handle_give(http_store *hs, ws_http *h) {
  ws_http *expect = NULL;
  if (!atomic_compare_exchange_strong(&hs->idle, &expect, h)) ws_http_free(h);
}

/* ROOT/escaped-name; the name was validated, escaping is for safety. */
static char *obj_url(const http_store *hs, const char *name, ws_err *err) {
  char *esc = ws_http_escape(name, 1, err);
  if (!esc) return NULL;
  char *u = ws_asprintf(err, "%s/%s", hs->root, esc);
  free(esc);
  return u;
}

/* Append a hint for the statuses a misconfigured nginx answers with. */
static int with_hint(ws_err *err, int rc, long status) {
  const char *hint = NULL;
  switch (status) {
  case 405: hint = "does the server allow PUT and DELETE? nginx: dav_methods PUT DELETE"; break;
  case 409: hint = "parent directory missing; nginx: create_full_put_path on"; break;
  case 413: hint = "object too large for the server; nginx: client_max_body_size"; break;
  default: return rc;
  }
  if (!err) return rc;
  char msg[sizeof(err->msg)];
  memcpy(msg, err->msg, sizeof(msg));
  return ws_fail(err, rc, "%s (%s)", msg, hint);
}

int ws_store_http_open(ws_store **out, const char *url, const char *rest,
                       const ws_store_opts *opts, ws_err *err) {
  size_t sl = (size_t)(rest - url);
  char scheme[8];
  if (sl < 3 + 4 || sl > 3 + 5)
    return ws_fail(err, WS_EINVAL, "store URL %s: expected http:// or https://", url);
  for (size_t i = 0; i < sl - 3; i++)
    scheme[i] = (char)((url[i] >= 'A' && url[i] <= 'Z') ? url[i] + 32 : url[i]);
  scheme[sl - 3] = '\0';
  if (strcmp(scheme, "http") && strcmp(scheme, "https"))
    return ws_fail(err, WS_EINVAL, "store URL %s: expected http:// or https://", url);
  size_t alen = strcspn(rest, "/");
  if (alen == 0)
    return ws_fail(err, WS_EINVAL, "store URL %s has no host", url);
  if (memchr(rest, '@', alen))
    return ws_fail(err, WS_EINVAL, "%s:// store URL: credentials in the URL are not "
                   "supported (they would end up in logs)", scheme);
  for (const char *p = rest; *p; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#' || *p == '\\')
      return ws_fail(err, WS_EINVAL, "store URL %s: byte 0x%02x at offset %zu is not "
                     "allowed (no query, fragment, spaces)", url, (unsigned char)*p,
                     (size_t)(p - url));
  int rc = WS_ENOMEM;
  ws_http *h = NULL;
  http_store *hs = ws_calloc(1, sizeof(*hs), err);
  if (!hs) return WS_ENOMEM;
  hs->base.m = &http_methods;
  if (!(hs->base.url = ws_strdup(url, err)) ||
      !(hs->root = ws_asprintf(err, "%s://%s", scheme, rest)))
    goto fail;
  /* Object URLs add "/NAME": the root keeps no trailing slash. */
  for (size_t n = strlen(hs->root); hs->root[n - 1] == '/'; n--) hs->root[n - 1] = '\0';
  /* Handles are made later too (concurrent callers): keep our own copy of
  ** the one string option, the caller's opts need not outlive open. */
  if (opts->ca_bundle && !(hs->cfg.ca_bundle = ws_strdup(opts->ca_bundle, err))) goto fail;
  hs->cfg.insecure = opts->insecure;
  hs->cfg.max_retries = opts->max_retries;
  hs->cfg.stop = opts->stop;
  if ((rc = ws_http_new(&h, &hs->cfg, err))) goto fail;  /* fail at open, not first use */
  atomic_store(&hs->idle, h);
  if (opts->insecure)
    ws_log(WS_LOG_WARN, "store", "TLS verification disabled for %s", url);
  *out = &hs->base;
  return WS_OK;
fail:
  free((char *)hs->cfg.ca_bundle);
  free(hs->root);
  free(hs->base.url);
  free(hs);
  return rc;
}

static void http_close(ws_store *st) {
  http_store *hs = (http_store *)st;
  ws_http_free(atomic_load(&hs->idle));
  free((char *)hs->cfg.ca_bundle);
  free(hs->root);
  free(hs->base.url);
  free(hs);
}

/* ---------------------------------------------------------------- put */

static int http_put_begin(ws_upload **out, ws_store *st, const char *name, ws_err *err) {
  int rc = ws_store_check_name(name, err);
  if (rc) return rc;
  http_upload *up = ws_calloc(1, sizeof(*up), err);
  if (!up) return WS_ENOMEM;
  up->base.store = st;
  if (!(up->base.name = ws_strdup(name, err))) {
    free(up);
    return WS_ENOMEM;
  }
  *out = &up->base;
  return WS_OK;
}

static int http_put_write(ws_upload *u, const void *buf, size_t len, ws_err *err) {
  http_upload *up = (http_upload *)u;
  if (len > HS_PUT_MAX - up->len)
    return ws_fail(err, WS_ENOMEM, "object %s: larger than the %u MiB the http store "
                   "uploads in one PUT (use an s3:// store for larger objects)",
                   u->name, HS_PUT_MAX >> 20);
  if (up->len + len > up->cap) {
    size_t cap = up->cap ? up->cap : 64u << 10;
    while (cap < up->len + len) cap = cap > HS_PUT_MAX / 2 ? HS_PUT_MAX : cap * 2;
    unsigned char *p = ws_realloc(up->buf, cap, err);
    if (!p) return WS_ENOMEM;
    up->buf = p;
    up->cap = cap;
  }
  if (len) memcpy(up->buf + up->len, buf, len);
  up->len += len;
  return WS_OK;
}

static void http_put_abort(ws_upload *u) {
  http_upload *up = (http_upload *)u;
  free(up->buf);
  free(up->base.name);
  free(up);
}

static int http_put_commit(ws_upload *u, ws_err *err) {
  http_upload *up = (http_upload *)u;
  http_store *hs = (http_store *)u->store;
  ws_http *h = NULL;
  int rc = WS_ENOMEM;
  char *url = obj_url(hs, u->name, err);
  if (!url) goto out;
  /* Content-MD5 lets a server that checks it refuse a corrupted body. */
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  char md5h[64] = "Content-MD5: ";
  if (!EVP_Digest(up->buf ? up->buf : (const unsigned char *)"", up->len, md, &mdlen,
                  EVP_md5(), NULL)) {
    rc = ws_fail(err, WS_ESTORE, "PUT %s: MD5 of the body failed", url);
    goto out;
  }
  EVP_EncodeBlock((unsigned char *)md5h + strlen(md5h), md, (int)mdlen);
  const char *hdrs[] = {md5h, "Content-Type: application/octet-stream", NULL};
  if (!(h = handle_take(hs, err))) goto out;
  ws_http_req rq = {.method = "PUT", .url = url, .headers = hdrs, .body = up->buf,
                    .body_len = up->len};
  ws_http_resp rs;
  rc = ws_http_do(h, &rq, &rs, err);
  if (rc == WS_ESTORE) rc = with_hint(err, rc, rs.status);
  ws_http_resp_free(&rs);
out:
  if (h) handle_give(hs, h);
  free(url);
  http_put_abort(u);
  return rc;
}

/* ---------------------------------------------------------------- get */

static int http_get(ws_store *st, const char *name, uint64_t off, uint64_t len,
                    ws_sink_fn sink, void *ud, ws_err *err) {
  http_store *hs = (http_store *)st;
  int rc = ws_store_check_name(name, err);
  if (rc) return rc;
  char *url = obj_url(hs, name, err);
  if (!url) return WS_ENOMEM;
  ws_http *h = handle_take(hs, err);
  if (!h) {
    free(url);
    return WS_ENOMEM;
  }
  ws_http_req rq = {.method = "GET", .url = url, .range_off = off, .range_len = len,
                    .sink = sink, .sink_ud = ud};
  ws_http_resp rs;
  ws_err le = WS_ERR_INIT;  /* err stays untouched by an answer we accept */
  rc = ws_http_do(h, &rq, &rs, &le);
  if (rc == WS_ESTORE && rs.status == 404)
    rc = ws_fail(err, WS_ENOTFOUND, "object %s not found in store %s", name, st->url);
  else if (rc == WS_ESTORE && rs.status == 416)
    rc = WS_OK;  /* range past the end: no bytes, as the file store clamps */
  else if (rc && err)
    *err = le;
  ws_http_resp_free(&rs);
  handle_give(hs, h);
  free(url);
  return rc;
}

/* --------------------------------------------------------------- list */

/* nginx's mtime, "Sat, 28 Nov 2026 10:00:00 GMT", as unix ms; 0 if odd.
** Parsed by hand: strptime's %b follows the locale, nginx does not. */
static int64_t parse_mtime(const char *s) {
  static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  struct tm tm;
  char m[4];
  const char *c = s ? strchr(s, ',') : NULL;
  memset(&tm, 0, sizeof(tm));
  if (!c || sscanf(c + 1, " %d %3s %d %d:%d:%d", &tm.tm_mday, m, &tm.tm_year, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec) != 6)
    return 0;
  const char *p = strstr(mon, m);
  if (!p || strlen(m) != 3 || (p - mon) % 3) return 0;
  tm.tm_mon = (int)((p - mon) / 3);
  tm.tm_year -= 1900;
  time_t t = timegm(&tm);
  return t < 0 ? 0 : (int64_t)t * 1000;
}


/* Can a name under directory rel ("seg/", with slash) start with prefix? */
static int dir_may_match(const char *rel, const char *prefix) {
  size_t rl = strlen(rel), pl = strlen(prefix);
  return strncmp(rel, prefix, rl < pl ? rl : pl) == 0;
}

static int walk(ws_store_list *l, http_store *hs, ws_http *h, const char *rel,
                const char *prefix, int depth, ws_err *err);

/* The entries of one parsed listing: objects are added, subdirectories
** that can match are collected into *subs (walked after the tree is freed,
** so at most one listing is in memory per level). */
static int scan_entries(ws_store_list *l, const char *store_url, json_object *arr,
                        const char *rel, const char *prefix, int depth, const char *url,
                        char ***subs, size_t *nsubs, ws_err *err) {
  size_t n = json_object_array_length(arr), cap = 0;
  int rc = WS_OK;
  for (size_t i = 0; i < n && !rc; i++) {
    json_object *e = json_object_array_get_idx(arr, i), *jn, *jt, *jv;
    if (!json_object_is_type(e, json_type_object) ||
        !json_object_object_get_ex(e, "name", &jn) || !json_object_is_type(jn, json_type_string) ||
        !json_object_object_get_ex(e, "type", &jt) || !json_object_is_type(jt, json_type_string))
      continue;
    const char *name = json_object_get_string(jn), *type = json_object_get_string(jt);
    int is_dir = strcmp(type, "directory") == 0;
    if (!is_dir && strcmp(type, "file") != 0) continue;  /* "other": not ours */
    char *full = ws_asprintf(err, "%s%s", rel, name);
    if (!full) return WS_ENOMEM;
    ws_err ne = WS_ERR_INIT;
    if (strchr(name, '/') || ws_store_check_name(full, &ne) != WS_OK) {
      ws_log(WS_LOG_WARN, "store", "skipping entry from listing %s: %s", url,
             ne.msg[0] ? ne.msg : "name contains '/'");
    } else if (is_dir) {
      if (depth + 1 < HS_DEPTH_MAX) {
        char *sub = ws_asprintf(err, "%s/", full);
        if (!sub) rc = WS_ENOMEM;
        else if (!dir_may_match(sub, prefix)) free(sub);
        else {
          if (*nsubs == cap) {
            size_t nc = cap ? cap * 2 : 8;
            char **v = ws_realloc(*subs, nc * sizeof(*v), err);
            if (!v) { free(sub); free(full); return WS_ENOMEM; }
            *subs = v;
            cap = nc;
          }
          (*subs)[(*nsubs)++] = sub;
        }
      }
    } else if (strncmp(full, prefix, strlen(prefix)) == 0) {
      int64_t size = json_object_object_get_ex(e, "size", &jv) ? json_object_get_int64(jv) : 0;
      const char *mt = json_object_object_get_ex(e, "mtime", &jv) ? json_object_get_string(jv) : NULL;
      rc = ws_store_list_add(l, full, size > 0 ? (uint64_t)size : 0, parse_mtime(mt),
                             store_url, err);
    }
    free(full);
  }
  return rc;
}

int ws_store_http_parse_listing(ws_store_list *l, const char *store_url, const char *body,
                                size_t len, const char *rel, const char *prefix, int depth,
                                const char *url, char ***subs, size_t *nsubs, ws_err *err) {
  int rc;
  json_object *arr = NULL;
  json_tokener *tok = json_tokener_new_ex(HS_JSON_DEPTH);
  if (!tok) return ws_fail(err, WS_ENOMEM, "listing %s: out of memory for the JSON parser", url);
  if (len > INT_MAX) {
    rc = ws_fail(err, WS_ESTORE, "listing %s: %zu bytes is too large", url, len);
    goto out;
  }
  arr = json_tokener_parse_ex(tok, body, (int)len);
  if (!arr || !json_object_is_type(arr, json_type_array)) {
    enum json_tokener_error je = json_tokener_get_error(tok);
    rc = ws_fail(err, WS_ESTORE, "listing %s: not a JSON array (%s; nginx: autoindex_format "
                 "json)", url, je == json_tokener_success ? "another JSON type" :
                 json_tokener_error_desc(je));
    goto out;
  }
  rc = scan_entries(l, store_url, arr, rel, prefix, depth, url, subs, nsubs, err);
out:
  if (arr) json_object_put(arr);
  json_tokener_free(tok);
  return rc;
}

/* List directory rel ("" or "seg/") of the store and what it leads to. */
static int walk(ws_store_list *l, http_store *hs, ws_http *h, const char *rel,
                const char *prefix, int depth, ws_err *err) {
  int rc = WS_ENOMEM;
  char **subs = NULL;
  size_t nsubs = 0;
  ws_http_resp rs = {0};
  char *esc = ws_http_escape(rel, 1, err), *url = NULL;
  if (!esc || !(url = ws_asprintf(err, "%s/%s", hs->root, esc))) goto out;
  ws_http_req rq = {.method = "GET", .url = url, .max_body = HS_LIST_BODY_MAX};
  ws_err le = WS_ERR_INIT;
  if ((rc = ws_http_do(h, &rq, &rs, &le))) {
    /* No base directory yet: an empty store.  A subdirectory that went
    ** away between two listings: nothing in it. */
    if (rc == WS_ESTORE && rs.status == 404) rc = WS_OK;
    else if (rc == WS_ESTORE && rs.status == 403)
      rc = ws_fail(err, rc, "GET %s: HTTP 403 Forbidden (directory listing refused; nginx: "
                   "autoindex on; autoindex_format json)", url);
    else if (err)
      *err = le;
    goto out;
  }
  rc = ws_store_http_parse_listing(l, hs->base.url, rs.body, rs.body_len, rel, prefix, depth,
                                   url, &subs, &nsubs, err);
  ws_http_resp_free(&rs);   /* the text is no longer needed */
  for (size_t i = 0; i < nsubs && !rc; i++)
    rc = walk(l, hs, h, subs[i], prefix, depth + 1, err);
out:
  for (size_t i = 0; i < nsubs; i++) free(subs[i]);
  free(subs);
  ws_http_resp_free(&rs);
  free(url);
  free(esc);
  return rc;
}

static int http_list(ws_store_list *out, ws_store *st, const char *prefix, ws_err *err) {
  http_store *hs = (http_store *)st;
  ws_store_list l = {NULL, 0, 0};
  ws_http *h = handle_take(hs, err);
  if (!h) return WS_ENOMEM;
  /* The root listing is "BASE/": with the slash nginx lists, without it
  ** answers 301 (which we never follow). */
  int rc = walk(&l, hs, h, "", prefix ? prefix : "", 0, err);
  handle_give(hs, h);
  if (rc) {
    ws_store_list_free(&l);
    return rc;
  }
  *out = l;
  return WS_OK;
}

/* ---------------------------------------------------------------- del */

static int http_del(ws_store *st, const char *name, ws_err *err) {
  http_store *hs = (http_store *)st;
  int rc = ws_store_check_name(name, err);
  if (rc) return rc;
  char *url = obj_url(hs, name, err);
  if (!url) return WS_ENOMEM;
  ws_http *h = handle_take(hs, err);
  if (!h) {
    free(url);
    return WS_ENOMEM;
  }
  ws_http_req rq = {.method = "DELETE", .url = url};
  ws_http_resp rs;
  ws_err le = WS_ERR_INIT;
  rc = ws_http_do(h, &rq, &rs, &le);
  if (rc == WS_ESTORE && rs.status == 404) rc = WS_OK;  /* already gone */
  else if (rc && err) *err = le;
  if (rc == WS_ESTORE) rc = with_hint(err, rc, rs.status);
  ws_http_resp_free(&rs);
  handle_give(hs, h);
  free(url);
  return rc;
}

static const ws_store_methods http_methods = {
  WS_STORE_METHODS_VERSION, "http",
  http_put_begin, http_put_write, http_put_commit, http_put_abort,
  http_get, http_list, http_del, http_close, NULL, NULL, /* nginx: no conditional PUT (docs/SECURITY.md) */
};
