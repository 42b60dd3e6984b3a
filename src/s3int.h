/*
** The s3 store's private parts shared by its files: store_s3.c (open,
** put, get, list, delete) and s3cond.c (conditional writes).  Nothing
** outside the s3 store includes this.
*/
#ifndef WS_S3INT_H
#define WS_S3INT_H

#include "store_int.h"
#include "http.h"
#include "s3xml.h"
#include "awscred.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct s3_store {
  ws_store base;               /* must be first */
  ws_s3_addr a;                /* bucket, prefix, region, base URL */
  ws_awscred cred;             /* wiped at close */
  char *sigv4;                 /* "aws:amz:REGION:s3" */
  char *token_hdr;             /* "x-amz-security-token: ..." or NULL; wiped */
  char *class_hdr;             /* "x-amz-storage-class: ..." or NULL */
  ws_http *http;
  ws_http_cfg cfg;             /* for the workers' own handles */
  char *ca_bundle;             /* cfg.ca_bundle's copy */
  pthread_mutex_t mu;          /* one request at a time on the curl handle */
  atomic_int warned_names;     /* a listing skipped a non-name key (warn once) */
} s3_store;

/* One request as the s3 store sees it; ws_s3_do turns it into a ws_http_req. */
typedef struct s3_req {
  const char *method;
  const char *key;             /* full key; NULL: the bucket itself */
  const char *query;           /* from ws_s3_query, or NULL */
  const void *body;
  size_t body_len;
  int md5;                     /* send Content-MD5 */
  int storage_class;           /* send x-amz-storage-class if configured */
  const char *content_type;
  uint64_t off, len;           /* GET range */
  ws_sink_fn sink;
  void *ud;
  size_t max_body;
  char *md5_hex;               /* if set (33 bytes): receives the body's MD5 */
  const char *cond_hdr;        /* "If-None-Match: *" / "If-Match: ETAG" or NULL */
} s3_req;

/* Perform r on the store's handle; resp must be initialised (zeroed) by
** the caller, who frees it. */
WS_MUST_CHECK int ws_s3_do(s3_store *s, const s3_req *r, ws_http_resp *resp, ws_err *err);

/* Turn a failed request (rc from ws_s3_do) into the store's one-line error;
** method names the S3 operation, what the key or listing. */
int ws_s3_fail(s3_store *s, int rc, const char *method, const char *what,
               const ws_http_resp *r, ws_err *err);

/* s3cond.c: the store's put_if and etag methods (walship/store.h). */
int ws_s3_put_if(ws_store *st, const char *name, const void *buf, size_t len,
                 const char *if_match, char *etag_out, ws_err *err);
int ws_s3_etag(ws_store *st, const char *name, char *etag_out, ws_err *err);

/* Largest object one PutObject carries (and a conditional write's limit). */
#define S3_PART (8u << 20)

#endif
