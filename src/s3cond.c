/*
** The s3 store's conditional writes: put_if as one PutObject carrying
** If-None-Match: * (create) or If-Match: ETAG (replace), etag as a HEAD.
** AWS S3 documents both headers on PUT (If-None-Match since August 2024,
** If-Match since November 2024); answers 412 (the condition is false),
** 409 (a concurrent conditional write won) and 404 (If-Match on a missing
** key) are the failed precondition, WS_EEXIST.
**
** Invariants:
**   - the body goes in one request (lease records are small: at most
**     S3_PART bytes), so the condition and the write are one atomic step
**     on a server that honours the headers;
**   - a server that ignores them (s3rver 3.7.1 does, on PUT) answers 200
**     and replaces the object: these functions cannot tell, which is why
**     the lease probes a scratch object before it relies on them
**     (lease.c) and WALSHIP_S3_CONDITIONAL_WRITES=0 withholds them;
**   - a retried request whose first attempt succeeded unseen reports a
**     failed precondition: the safe direction (the caller refuses);
**   - a version token comes from our own ETag header and is checked for
**     CR/LF before it goes back into one.
*/
#include "s3int.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Conditional single PUT (lease records are small): If-None-Match: * to
** create, If-Match: ETAG to replace.  412 (condition false), 409 (a
** concurrent conditional write won) and 404 (If-Match on a missing key)
** are the failed precondition.  A retried request whose first attempt
** succeeded unseen reports a failed precondition: the safe direction. */
int ws_s3_put_if(ws_store *st, const char *name, const void *buf, size_t len,
                 const char *if_match, char *etag_out, ws_err *err) {
  s3_store *s = (s3_store *)st;
  int rc = ws_store_check_name(name, err);
  if (rc) return rc;
  if (len > S3_PART)
    return ws_fail(err, WS_EINVAL, "object %s: %zu bytes is too large for a conditional "
                   "put", name, len);
  char hdr[WS_STORE_ETAG_MAX + 16];
  if (if_match && (strlen(if_match) > 200 || strpbrk(if_match, "\r\n")))
    return ws_fail(err, WS_EINVAL, "object %s: bad version token", name);
  snprintf(hdr, sizeof(hdr), if_match ? "If-Match: %s" : "If-None-Match: *", if_match);
  char *key = ws_s3_key(&s->a, name, err);
  if (!key) return WS_ENOMEM;
  ws_http_resp resp;
  memset(&resp, 0, sizeof(resp));
  s3_req r = {.method = "PUT", .key = key, .body = buf, .body_len = len, .md5 = 1,
              .storage_class = 1, .cond_hdr = hdr};
  rc = ws_s3_do(s, &r, &resp, err);
  if (rc == WS_ESTORE && (resp.status == 412 || resp.status == 409 ||
                          (resp.status == 404 && if_match))) {
    ws_s3_error e;
    ws_s3xml_parse_error(&e, resp.body, resp.body_len);
    rc = strcmp(e.code, "NoSuchBucket") == 0
             ? ws_s3_fail(s, rc, "PUT", key, &resp, err)
             : ws_fail(err, WS_EEXIST, "conditional PUT s3://%s/%s refused (HTTP %ld%s%s): "
                       "%s", s->a.bucket, key, resp.status, e.code[0] ? " " : "", e.code,
                       if_match ? "it changed or is gone" : "it already exists");
  } else if (rc) {
    rc = ws_s3_fail(s, rc, "PUT", key, &resp, err);
  } else if (etag_out) {
    snprintf(etag_out, WS_STORE_ETAG_MAX, "%s", resp.etag);
    if (!resp.etag[0])
      rc = ws_fail(err, WS_ESTORE, "conditional PUT s3://%s/%s: no ETag in the answer",
                   s->a.bucket, key);
  }
  ws_http_resp_free(&resp);
  free(key);
  return rc;
}

int ws_s3_etag(ws_store *st, const char *name, char *out, ws_err *err) {
  s3_store *s = (s3_store *)st;
  int rc = ws_store_check_name(name, err);
  if (rc) return rc;
  char *key = ws_s3_key(&s->a, name, err);
  if (!key) return WS_ENOMEM;
  ws_http_resp resp;
  memset(&resp, 0, sizeof(resp));
  s3_req r = {.method = "HEAD", .key = key};
  rc = ws_s3_do(s, &r, &resp, err);
  if (rc == WS_ESTORE && resp.status == 404)
    rc = ws_fail(err, WS_ENOTFOUND, "object %s not found in store %s", name, st->url);
  else if (rc)
    rc = ws_s3_fail(s, rc, "HEAD", key, &resp, err);
  else if (!resp.etag[0])
    rc = ws_fail(err, WS_ESTORE, "HEAD s3://%s/%s: no ETag in the answer", s->a.bucket, key);
  else
    snprintf(out, WS_STORE_ETAG_MAX, "%s", resp.etag);
  ws_http_resp_free(&resp);
  free(key);
  return rc;
}
