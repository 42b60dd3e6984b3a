/*
** The store interface, for backend writers.
**
** A store is a flat namespace of immutable objects ("seg/0000...-0000...").
** Stores know nothing about WAL, segments or snapshots: they put, get, list
** and delete bytes.  A backend "subclasses" ws_store / ws_upload by putting
** the base struct first in its own struct (as sqlite3_file does).
**
** Contract every backend keeps:
**   - put is streaming (put_begin, put_write*, put_commit) and atomic: an
**     object is either absent or complete; put_commit returns WS_OK only
**     once the object is durable in the store.  put_abort discards it.
**   - get streams the bytes of [off, off+len) (len 0 = to the end) into the
**     sink; a sink error stops the transfer and is returned unchanged.
**   - list returns every object whose name starts with prefix, any order.
**   - del of a missing object is WS_OK.
**   - object names are relative, use '/' only as a separator, and never
**     contain "..", leading '/', or bytes outside [A-Za-z0-9._/-]; backends
**     reject anything else with WS_EINVAL (the name may come from a hostile
**     listing).
*/
#ifndef WALSHIP_STORE_H
#define WALSHIP_STORE_H

#include "walship.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ws_store ws_store;
typedef struct ws_upload ws_upload;
typedef struct ws_store_methods ws_store_methods;

/* Receives downloaded bytes.  Return WS_OK to continue. */
typedef int (*ws_sink_fn)(void *ud, const void *buf, size_t len, ws_err *err);

typedef struct ws_store_obj {
  char *name;          /* relative object name (malloc'ed) */
  uint64_t size;       /* bytes */
  int64_t mtime_ms;    /* last modified, unix ms (0 if unknown) */
} ws_store_obj;

typedef struct ws_store_list {
  ws_store_obj *v;
  size_t n, cap;
} ws_store_list;

void ws_store_list_free(ws_store_list *l); /* frees v and names; l itself not */
/* For backends: append one entry, growing v geometrically; past
** WS_STORE_LIST_MAX entries fails (WS_ENOMEM naming store_url) — a hostile
** or runaway listing must not exhaust memory. */
#define WS_STORE_LIST_MAX (16u << 20)
int ws_store_list_add(ws_store_list *l, const char *name, uint64_t size,
                      int64_t mtime_ms, const char *store_url, ws_err *err);

/* 2: put_if and etag appended (optional; NULL when the backend cannot do a
** conditional write).  Version-1 tables stay valid: readers check version
** before touching the new members (ws_store_can_put_if). */
#define WS_STORE_METHODS_VERSION 2

/* An opaque version token of one object, as put_if and etag give it; a
** fan-out store joins its members' tokens, hence the room. */
#define WS_STORE_ETAG_MAX 1024

struct ws_store_methods {
  int version;         /* WS_STORE_METHODS_VERSION */
  const char *scheme;  /* "file", "s3", "http" */
  int (*put_begin)(ws_upload **out, ws_store *st, const char *name,
                   ws_err *err);
  int (*put_write)(ws_upload *up, const void *buf, size_t len, ws_err *err);
  int (*put_commit)(ws_upload *up, ws_err *err); /* frees up, always */
  void (*put_abort)(ws_upload *up);              /* frees up */
  int (*get)(ws_store *st, const char *name, uint64_t off, uint64_t len,
             ws_sink_fn sink, void *ud, ws_err *err);
  int (*list)(ws_store_list *out, ws_store *st, const char *prefix,
              ws_err *err);
  int (*del)(ws_store *st, const char *name, ws_err *err);
  void (*close)(ws_store *st);
  /* --- version 2, optional ---
  ** put_if: write the whole object only if, atomically with the write,
  ** if_match == NULL: no object of that name exists (create), or
  ** if_match != NULL: the object exists and its version token is if_match
  ** (compare-and-swap).  A condition that does not hold is WS_EEXIST
  ** ("precondition failed"; the store is unchanged).  On WS_OK the new
  ** object's token is copied to etag_out (WS_STORE_ETAG_MAX bytes) when
  ** etag_out is not NULL.
  ** etag: the current token of name (WS_ENOTFOUND if absent). */
  int (*put_if)(ws_store *st, const char *name, const void *buf, size_t len,
                const char *if_match, char *etag_out, ws_err *err);
  int (*etag)(ws_store *st, const char *name, char *etag_out, ws_err *err);
};

struct ws_store {
  const ws_store_methods *m;
  char *url;           /* as given by the user, for messages (no secrets) */
};

struct ws_upload {
  ws_store *store;
  char *name;
};

/*
** Options for remote stores (ignored by the file store).  Secrets are never
** options: credentials come from the environment or the AWS shared
** credentials file (docs/stores.md).  Every field may be left 0/NULL.
*/
typedef struct ws_store_opts {
  unsigned version;          /* WS_STORE_OPTS_VERSION */
  const char *endpoint;      /* S3-compatible endpoint ("http://127.0.0.1:9000");
                                NULL: AWS (https://s3.REGION.amazonaws.com) */
  const char *region;        /* NULL: $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1 */
  int path_style;            /* -1/0 = auto (path style iff endpoint is set),
                                1 = path style, 2 = virtual-hosted style */
  const char *storage_class; /* S3 storage class for uploads; NULL = default */
  const char *ca_bundle;     /* CA bundle file for https; NULL = system */
  int insecure;              /* skip TLS verification (warned at open) */
  int max_retries;           /* per request; 0 = default (8) */
  volatile int *stop;        /* abandon retries when *stop != 0 */
  const char *encryption_key_file; /* key ring: encrypt every object (any
                                scheme; docs/SECURITY.md).  NULL: the key ring
                                in $WALSHIP_ENCRYPTION_KEY if set, else none */
} ws_store_opts;

#define WS_STORE_OPTS_VERSION 1
#define WS_STORE_OPTS_INIT {WS_STORE_OPTS_VERSION, NULL, NULL, 0, NULL, NULL, 0, 0, NULL, NULL}

/* Open a store by URL: "file:///abs/dir", "/abs/dir", "rel/dir",
** "s3://bucket/prefix", "http(s)://host/path".  opts may be NULL. */
WS_MUST_CHECK int ws_store_open_ex(ws_store **out, const char *url,
                                   const ws_store_opts *opts, ws_err *err);
/* Same with default options. */
WS_MUST_CHECK int ws_store_open(ws_store **out, const char *url, ws_err *err);
void ws_store_close(ws_store *st); /* accepts NULL */

/* Convenience wrappers over the vtable. */
WS_MUST_CHECK int ws_store_put_buf(ws_store *st, const char *name,
                                   const void *buf, size_t len, ws_err *err);
/* Whole object into a malloc'ed buffer, refusing objects over max bytes. */
WS_MUST_CHECK int ws_store_get_buf(void **out, size_t *outlen, ws_store *st,
                                   const char *name, uint64_t off, uint64_t len,
                                   size_t max, ws_err *err);
/* 1 if st offers conditional writes (put_if and etag), else 0. */
int ws_store_can_put_if(const ws_store *st);
/* WS_OK if name is a valid object name, else WS_EINVAL with a message. */
int ws_store_check_name(const char *name, ws_err *err);

#ifdef __cplusplus
}
#endif
#endif /* WALSHIP_STORE_H */
