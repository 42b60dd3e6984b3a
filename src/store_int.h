/*
** Internal interface between the store front end (store.c) and the
** backends.  A backend contributes one open function; store.c maps a URL
** scheme to it through a small table, so adding s3:// or http:// is one
** new row there plus the backend file.  An open function receives the URL
** as the user typed it (kept in ws_store.url for messages) and the part
** after "scheme://" (for the file store: the directory path), and the
** options (never NULL: store.c substitutes the defaults).
*/
#ifndef WS_STORE_INT_H
#define WS_STORE_INT_H

#include "walship/store.h"

typedef int (*ws_store_open_fn)(ws_store **out, const char *url,
                                const char *rest, const ws_store_opts *opts,
                                ws_err *err);

/* The embedded default: a directory on a local or mounted file system. */
WS_MUST_CHECK int ws_store_file_open(ws_store **out, const char *url,
                                     const char *path, const ws_store_opts *opts,
                                     ws_err *err);

/* s3://BUCKET/PREFIX (store_s3.c) and http(s)://HOST/PATH (store_http.c). */
WS_MUST_CHECK int ws_store_s3_open(ws_store **out, const char *url,
                                   const char *rest, const ws_store_opts *opts,
                                   ws_err *err);
WS_MUST_CHECK int ws_store_http_open(ws_store **out, const char *url,
                                     const char *rest, const ws_store_opts *opts,
                                     ws_err *err);

/*
** One nginx JSON directory listing (body, len bytes) of directory rel ("" or
** "seg/") of the http store store_url, fetched from url (for messages):
** files whose name starts with prefix are added to l; subdirectories that
** can hold such names, while depth allows, are appended to *subs (malloc'ed
** "rel/dir/" strings, the caller frees them and the array).  Exported for
** tests/fuzz.
*/
WS_MUST_CHECK int ws_store_http_parse_listing(ws_store_list *l, const char *store_url,
                                              const char *body, size_t len, const char *rel,
                                              const char *prefix, int depth, const char *url,
                                              char ***subs, size_t *nsubs, ws_err *err);

/* Object names are at most this long (bytes, without the NUL). */
#define WS_STORE_NAME_MAX 255

#endif
