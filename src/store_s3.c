/*
** The s3 store: s3://BUCKET/PREFIX on AWS S3 or an S3-compatible server,
** object NAME at key "PREFIX/NAME" (or "NAME" without a prefix).
**
** Requests go through the shared HTTP layer (http.h: retries, resumable
** GETs) and are signed by libcurl's CURLOPT_AWS_SIGV4.  What libcurl 7.88
** does not do for us, every request here does itself:
**   - x-amz-content-sha256 carries the real SHA-256 of the body (7.88
**     would sign the hash of an empty body for uploads);
**   - query strings are built by ws_s3_query: sorted by name, every name
**     and value percent-encoded, because 7.88 signs the query as written;
**   - a session token travels in x-amz-security-token.
**
** Invariants:
**   - put is atomic by S3's own semantics: an object appears only when a
**     PutObject or CompleteMultipartUpload succeeds.  An object that fits
**     one part (S3_PART bytes) is one PutObject; anything larger is a
**     multipart upload whose full parts go to S3_INFLIGHT workers
**     (s3par.c, a curl handle each) as they fill; put_write blocks while
**     S3_INFLIGHT are in flight, so an upload holds at most S3_INFLIGHT + 1
**     parts; ETags are collected in part order;
**   - a get of more than S3_GET_SPLIT bytes (or to the end of an object
**     that turns out larger) streams its first S3_GET_SPLIT bytes on the
**     store's handle, then the rest as S3_RANGE ranges on S3_INFLIGHT
**     workers, delivered in order (memory: S3_INFLIGHT ranges); the first
**     short or 416 range is the end, so no HEAD is needed;
**   - every PutObject/UploadPart sends Content-MD5, so S3 itself refuses
**     bytes damaged on the way (the ETag is not compared: with SSE-KMS it
**     is not the MD5); a Complete answered 200 with an <Error> body is a
**     failure;
**   - a failed multipart upload is aborted (best effort: a leftover is
**     logged; a bucket lifecycle rule should abort incomplete uploads);
**   - listings are capped (WS_STORE_LIST_MAX entries, S3_PAGE_MAX bytes a page)
**     and keys that are not valid object names are skipped with a warning;
**   - secrets stay in the ws_awscred and the token header, are never in a
**     URL, message or log line, and are wiped at close;
**   - conditional writes (put_if/etag, s3cond.c) are offered unless
**     WALSHIP_S3_CONDITIONAL_WRITES=0.  A server that ignores the headers
**     (s3rver) cannot be told from one that honours them without writing,
**     so the lease, their one user, probes the store before trusting them
**     (lease.c); opening the store costs no request.
** One store handle serialises its own requests (one curl handle, one
** mutex); parallel transfers use their workers' handles.
*/
#include "s3int.h"
#include "common.h"
#include "s3par.h"
#include "s3addr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S3_PARTS_MAX 10000u       /* S3's limit: objects up to ~78 GiB */
#define S3_INFLIGHT 4u            /* parts or ranges in flight at once */
#ifndef S3_RANGE
#define S3_RANGE (8u << 20)       /* bytes of one parallel GET range */
#endif
#ifndef S3_GET_SPLIT
#define S3_GET_SPLIT (16u << 20)  /* larger gets go parallel after this many */
#endif
#define S3_PAGE_MAX (16u << 20)   /* bytes of one ListObjectsV2 page */
#define S3_DELETE_BATCH 1000u     /* keys per DeleteObjects request (S3 max) */
#define S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct s3_upload {
  ws_upload base;              /* must be first */
  char *key;                   /* full object key */
  uint8_t *buf;                /* the part being filled (grows to S3_PART) */
  size_t len, cap;
  char *upload_id;             /* set once the multipart upload exists */
  char **etags;                /* ETag of part i+1, quotes kept */
  size_t nparts;               /* parts done and their ETags collected */
  size_t nsent;                /* parts handed to the workers */
  ws_s3par *par;               /* the workers, once a part is sent */
} s3_upload;

static const ws_store_methods s3_methods, s3_methods_if;

/* ------------------------------------------------------------ helpers */

/* Perform r on h, or on the store's handle when h is NULL; resp must be
** initialised by the caller and is freed by it. */
static int s3_do_on(s3_store *s, ws_http *h, const s3_req *r, ws_http_resp *resp,
                    ws_err *err) {
  char sha[65], md5hex[33], md5b64[25];
  char sha_hdr[96], md5_hdr[48], ct_hdr[96];
  const char *hdrs[8];
  int nh = 0, rc;
  if (r->body_len || r->md5) {
    if ((rc = ws_s3_digests(r->body, r->body_len, sha, md5hex, md5b64, err))) return rc;
    if (r->md5_hex) memcpy(r->md5_hex, md5hex, 33);
  } else {
    memcpy(sha, EMPTY_SHA256, 65);
  }
  snprintf(sha_hdr, sizeof(sha_hdr), "x-amz-content-sha256: %s", sha);
  hdrs[nh++] = sha_hdr;
  if (r->md5) {
    snprintf(md5_hdr, sizeof(md5_hdr), "Content-MD5: %s", md5b64);
    hdrs[nh++] = md5_hdr;
  }
  if (r->content_type) {
    snprintf(ct_hdr, sizeof(ct_hdr), "Content-Type: %s", r->content_type);
    hdrs[nh++] = ct_hdr;
  }
  if (s->token_hdr) hdrs[nh++] = s->token_hdr;
  if (r->storage_class && s->class_hdr) hdrs[nh++] = s->class_hdr;
  if (r->cond_hdr) hdrs[nh++] = r->cond_hdr;
  hdrs[nh] = NULL;
  char *url = ws_s3_url(&s->a, r->key, r->query, err);
  if (!url) return WS_ENOMEM;
  ws_http_req req;
  memset(&req, 0, sizeof(req));
  req.method = r->method;
  req.url = url;
  req.headers = hdrs;
  req.body = r->body;
  req.body_len = r->body_len;
  req.range_off = r->off;
  req.range_len = r->len;
  req.sink = r->sink;
  req.sink_ud = r->ud;
  req.max_body = r->max_body;
  if (h) {
    rc = ws_http_do(h, &req, resp, err);
  } else {
    pthread_mutex_lock(&s->mu);
    rc = ws_http_do(s->http, &req, resp, err);
    pthread_mutex_unlock(&s->mu);
  }
  free(url);
  return rc;
}

int ws_s3_do(s3_store *s, const s3_req *r, ws_http_resp *resp, ws_err *err) {
  return s3_do_on(s, NULL, r, resp, err);
}

/*
** Turn a failed request into the store's one-line error.  Transport
** failures, stops and sink errors (no HTTP status) keep the message the
** HTTP layer or the sink set.  what names the object ("seg/x") or the
** listing; method the S3 operation or HTTP method.
*/
int ws_s3_fail(s3_store *s, int rc, const char *method, const char *what,
                   const ws_http_resp *r, ws_err *err) {
  if (rc != WS_ESTORE || r->status < 300) return rc;
  ws_s3_error e;
  ws_s3xml_parse_error(&e, r->body, r->body_len);
  if (r->status == 403)
    return ws_fail(err, WS_ESTORE, "%s: access denied (403 %s) on %s %s: check credentials",
                   s->a.disp, e.code[0] ? e.code : "Forbidden", method, what);
  if (r->status == 404 && strcmp(e.code, "NoSuchBucket") == 0)
    return ws_fail(err, WS_ENOTFOUND, "bucket %s does not exist (404 NoSuchBucket)",
                   s->a.bucket);
  char tries[48] = "";
  if (r->attempts > 1) snprintf(tries, sizeof(tries), " after %d attempts", r->attempts);
  return ws_fail(err, WS_ESTORE, "%s s3://%s/%s: HTTP %ld%s%s%s%s%s", method, s->a.bucket,
                 what, r->status, e.code[0] ? " " : "", e.code, e.message[0] ? ": " : "",
                 e.message, tries);
}

/* --------------------------------------------------------------- open */

static void s3_close(ws_store *st) {
  s3_store *s = (s3_store *)st;
  ws_http_free(s->http);
  ws_awscred_free(&s->cred);
  if (s->token_hdr) {
    explicit_bzero(s->token_hdr, strlen(s->token_hdr));
    free(s->token_hdr);
  }
  free(s->class_hdr);
  free(s->ca_bundle);
  free(s->sigv4);
  ws_s3_addr_free(&s->a);
  pthread_mutex_destroy(&s->mu);
  free(s->base.url);
  free(s);
}

int ws_store_s3_open(ws_store **out, const char *url, const char *rest,
                     const ws_store_opts *opts, ws_err *err) {
  s3_store *s = ws_calloc(1, sizeof(*s), err);
  if (!s) return WS_ENOMEM;
  /* Offered unless turned off; whether the server honours them is the
  ** lease's probe to find out (lease.c), so that ls and restore, which
  ** never write conditionally, pay no request for it. */
  const char *cw = getenv("WALSHIP_S3_CONDITIONAL_WRITES");
  s->base.m = cw && strcmp(cw, "0") == 0 ? &s3_methods : &s3_methods_if;
  pthread_mutex_init(&s->mu, NULL);
  int rc = WS_ENOMEM;
  if (!(s->base.url = ws_strdup(url, err))) goto fail;
  if ((rc = ws_s3_addr_parse(&s->a, rest, opts, err))) goto fail;
  const char *sc = opts->storage_class;
  if (sc && *sc) {
    size_t n = strlen(sc);
    if (n > 64 || strspn(sc, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != n) {
      rc = ws_fail(err, WS_EINVAL, "S3 storage class '%.70s' is not a class name "
                   "(like STANDARD_IA)", sc);
      goto fail;
    }
    rc = WS_ENOMEM;
    if (!(s->class_hdr = ws_asprintf(err, "x-amz-storage-class: %s", sc))) goto fail;
  }
  if ((rc = ws_awscred_load(&s->cred, err))) goto fail;
  rc = WS_ENOMEM;
  if (s->cred.token && !(s->token_hdr = ws_asprintf(err, "x-amz-security-token: %s",
                                                      s->cred.token)))
    goto fail;
  if (!(s->sigv4 = ws_asprintf(err, "aws:amz:%s:s3", s->a.region))) goto fail;
  if (opts->insecure)
    ws_log(WS_LOG_WARN, "store", "TLS verification disabled store=%s", s->a.disp);
  if (opts->ca_bundle && !(s->ca_bundle = ws_strdup(opts->ca_bundle, err))) goto fail;
  ws_http_cfg *cfg = &s->cfg;
  cfg->ca_bundle = s->ca_bundle;
  cfg->insecure = opts->insecure;
  cfg->max_retries = opts->max_retries;
  cfg->sigv4 = s->sigv4;
  cfg->user = s->cred.access_key;
  cfg->secret = s->cred.secret;
  cfg->stop = opts->stop;
  if ((rc = ws_http_new(&s->http, cfg, err))) goto fail;
  ws_log(WS_LOG_DEBUG, "store", "s3 store opened store=%s base=%s region=%s credentials=%s",
         s->a.disp, s->a.base, s->a.region, s->cred.source);
  *out = &s->base;
  return WS_OK;
fail:
  s3_close(&s->base);
  return rc;
}

/* ---------------------------------------------------------------- put */

static void upload_free(s3_upload *up) {
  ws_s3par_free(up->par);      /* first: jobs in flight read key, upload_id */
  for (size_t i = 0; i < up->nparts; i++) free(up->etags[i]);
  free(up->etags);
  free(up->upload_id);
  free(up->buf);
  free(up->key);
  free(up->base.name);
  free(up);
}

static int s3_put_begin(ws_upload **out, ws_store *st, const char *name, ws_err *err) {
  s3_store *s = (s3_store *)st;
  int rc = ws_store_check_name(name, err);
  if (rc) return rc;
  s3_upload *up = ws_calloc(1, sizeof(*up), err);
  if (!up) return WS_ENOMEM;
  up->base.store = st;
  if (!(up->base.name = ws_strdup(name, err)) || !(up->key = ws_s3_key(&s->a, name, err))) {
    upload_free(up);
    return WS_ENOMEM;
  }
  *out = &up->base;
  return WS_OK;
}

/* 'ETag: "32 hex"' equal to hex (case-insensitively), or not an MD5 ETag. */
static int etag_matches(const char *etag, const char *hex) {
  size_t n = strlen(etag);
  if (n != 34 || etag[0] != '"' || etag[33] != '"' || strspn(etag + 1, "0123456789abcdefABCDEF") != 32)
    return 1;  /* multipart-style or otherwise opaque: nothing to compare */
  return strncasecmp(etag + 1, hex, 32) == 0;
}

static int put_object(s3_store *s, s3_upload *up, ws_err *err) {
  ws_http_resp resp;
  memset(&resp, 0, sizeof(resp));
  char md5hex[33];
  s3_req r = {.method = "PUT", .key = up->key, .body = up->buf, .body_len = up->len,
              .md5 = 1, .storage_class = 1, .md5_hex = md5hex};
  int rc = ws_s3_do(s, &r, &resp, err);
  if (rc)
    rc = ws_s3_fail(s, rc, "PUT", up->key, &resp, err);
  else if (!etag_matches(resp.etag, md5hex))
    /* Not an error: with SSE-KMS/SSE-C the ETag is an opaque 32-hex value.
    ** Integrity rests on Content-MD5 (S3 refuses a body that does not match
    ** it) and on our own checksums, which restore verifies. */
    ws_log(WS_LOG_DEBUG, "s3", "PUT s3://%s/%s: ETag %.40s differs from MD5 %s "
           "(encrypted bucket?)", s->a.bucket, up->key, resp.etag, md5hex);
  ws_http_resp_free(&resp);
  return rc;
}

static int create_mpu(s3_store *s, s3_upload *up, ws_err *err) {
  static const char *const kv[] = {"uploads", NULL};
  ws_http_resp resp;
  memset(&resp, 0, sizeof(resp));
  char *q = ws_s3_query(kv, 1, err);
  if (!q) return WS_ENOMEM;
  s3_req r = {.method = "POST", .key = up->key, .query = q, .storage_class = 1};
  int rc = ws_s3_do(s, &r, &resp, err);
  if (rc) rc = ws_s3_fail(s, rc, "CreateMultipartUpload", up->key, &resp, err);
  else rc = ws_s3xml_parse_initiate(&up->upload_id, resp.body, resp.body_len, err);
  ws_http_resp_free(&resp);
  free(q);
  return rc;
}

/* Runs on a worker: upload sl's bytes as part sl->seq + 1 on h. */
static int part_job(void *ud, ws_http *h, ws_s3par_slot *sl, ws_err *err) {
  s3_upload *up = ud;
  s3_store *s = (s3_store *)up->base.store;
  char num[24];
  snprintf(num, sizeof(num), "%llu", (unsigned long long)sl->seq + 1);
  const char *kv[] = {"partNumber", num, "uploadId", up->upload_id};
  char *q = ws_s3_query(kv, 2, err);
  if (!q) return WS_ENOMEM;
  ws_http_resp resp;
  memset(&resp, 0, sizeof(resp));
  s3_req r = {.method = "PUT", .key = up->key, .query = q, .body = sl->buf,
              .body_len = sl->len, .md5 = 1};
  int rc = s3_do_on(s, h, &r, &resp, err);
  if (rc) rc = ws_s3_fail(s, rc, "UploadPart", up->key, &resp, err);
  else if (!resp.etag[0])
    rc = ws_fail(err, WS_ESTORE, "UploadPart s3://%s/%s part %s: no ETag in the answer",
                 s->a.bucket, up->key, num);
  else
    memcpy(sl->etag, resp.etag, sizeof(sl->etag));
  ws_http_resp_free(&resp);
  free(q);
  return rc;
}

/* Collect the results of parts up to (not including) upto, in order,
** waiting for those still in flight; the first failure is the error. */
static int collect_parts(s3_upload *up, size_t upto, ws_err *err) {
  while (up->nparts < upto) {
    ws_s3par_slot *sl = ws_s3par_wait(up->par, up->nparts);
    if (sl->rc) {
      if (err) *err = sl->err;
      return sl->rc;
    }
    char **etags = ws_realloc(up->etags, (up->nparts + 1) * sizeof(*etags), err);
    if (!etags) return WS_ENOMEM;
    up->etags = etags;
    if (!(up->etags[up->nparts] = ws_strdup(sl->etag, err))) return WS_ENOMEM;
    up->nparts++;
  }
  return WS_OK;
}

/* Hand the buffered bytes to a worker as the next part, first waiting for
** (and collecting) the part S3_INFLIGHT before it.  The buffer is swapped
** with the slot's, so filling goes on in a buffer already allocated. */
static int send_part(s3_store *s, s3_upload *up, ws_err *err) {
  int rc;
  if (up->nsent >= S3_PARTS_MAX)
    return ws_fail(err, WS_ENOMEM, "object %s exceeds %u parts of %u bytes", up->base.name,
                   S3_PARTS_MAX, S3_PART);
  if (!up->upload_id && (rc = create_mpu(s, up, err))) return rc;
  if (!up->par && (rc = ws_s3par_new(&up->par, &s->cfg, S3_INFLIGHT, part_job, up, err)))
    return rc;
  if (up->nsent >= S3_INFLIGHT && (rc = collect_parts(up, up->nsent - S3_INFLIGHT + 1, err)))
    return rc;
  ws_s3par_slot *sl = ws_s3par_wait(up->par, up->nsent);
  uint8_t *b = sl->buf;
  size_t cap = sl->cap;
  sl->buf = up->buf;
  sl->cap = up->cap;
  sl->len = up->len;
  up->buf = b;
  up->cap = cap;
  up->len = 0;
  ws_s3par_start(up->par, sl, up->nsent);
  up->nsent++;
  return WS_OK;
}

static int s3_put_write(ws_upload *u, const void *buf, size_t len, ws_err *err) {
  s3_upload *up = (s3_upload *)u;
  s3_store *s = (s3_store *)u->store;
  const uint8_t *p = buf;
  while (len) {
    int rc;
    /* A full buffer becomes a part only once more bytes arrive: an object
    ** of exactly one part stays a single PutObject. */
    if (up->len == S3_PART && (rc = send_part(s, up, err))) return rc;
    size_t n = len < S3_PART - up->len ? len : S3_PART - up->len;
    if (up->len + n > up->cap) {
      size_t cap = up->cap ? up->cap : 64u << 10;
      while (cap < up->len + n) cap = cap >= S3_PART / 2 ? S3_PART : cap * 2;
      uint8_t *nb = ws_realloc(up->buf, cap, err);
      if (!nb) return WS_ENOMEM;
      up->buf = nb;
      up->cap = cap;
    }
    memcpy(up->buf + up->len, p, n);
    up->len += n;
    p += n;
    len -= n;
  }
  return WS_OK;
}

static void abort_mpu(s3_store *s, s3_upload *up) {
  if (!up->upload_id) return;
  const char *kv[] = {"uploadId", up->upload_id};
  ws_err e = WS_ERR_INIT;
  ws_http_resp resp;
  memset(&resp, 0, sizeof(resp));
  char *q = ws_s3_query(kv, 1, &e);
  int rc = WS_ENOMEM;
  if (q) {
    s3_req r = {.method = "DELETE", .key = up->key, .query = q};
    rc = ws_s3_do(s, &r, &resp, &e);
    if (rc && resp.status == 404) rc = WS_OK;  /* already gone */
    else if (rc) rc = ws_s3_fail(s, rc, "AbortMultipartUpload", up->key, &resp, &e);
  }
  if (rc)
    ws_log(WS_LOG_WARN, "store", "incomplete multipart upload left behind (a bucket "
           "lifecycle rule removes it) store=%s key=%s error=\"%s\"", s->a.disp, up->key, e.msg);
  ws_http_resp_free(&resp);
  free(q);
}

/* Wait for the parts in flight (aborting under them would let a late part
** recreate storage), then stop the workers. */
static void stop_parts(s3_upload *up) {
  if (!up->par) return;
  ws_s3par_free(up->par);
  up->par = NULL;
}

static void s3_put_abort(ws_upload *u) {
  s3_upload *up = (s3_upload *)u;
  if (up->par) ws_s3par_cancel(up->par);
  stop_parts(up);
  abort_mpu((s3_store *)u->store, up);
  upload_free(up);
}

static int complete_mpu(s3_store *s, s3_upload *up, ws_err *err) {
  /* <Part><PartNumber>N</PartNumber><ETag>&quot;...&quot;</ETag></Part> */
  size_t cap = 256, n = 0;   /* escaping grows an ETag at most 6 times */
  for (size_t i = 0; i < up->nparts; i++) cap += 64 + 6 * strlen(up->etags[i]);
  char *body = ws_malloc(cap, err), *q = NULL;
  if (!body) return WS_ENOMEM;
  int rc = WS_ENOMEM;
  n += (size_t)snprintf(body + n, cap - n, "<CompleteMultipartUpload xmlns=\"" S3_XMLNS "\">");
  for (size_t i = 0; i < up->nparts; i++) {
    char *et = ws_s3xml_escape(up->etags[i], err);
    if (!et) goto out;
    n += (size_t)snprintf(body + n, cap - n, "<Part><PartNumber>%zu</PartNumber>"
                          "<ETag>%s</ETag></Part>", i + 1, et);
    free(et);
  }
  n += (size_t)snprintf(body + n, cap - n, "</CompleteMultipartUpload>");
  const char *kv[] = {"uploadId", up->upload_id};
  if (!(q = ws_s3_query(kv, 1, err))) goto out;
  ws_http_resp resp;
  memset(&resp, 0, sizeof(resp));
  s3_req r = {.method = "POST", .key = up->key, .query = q, .body = body, .body_len = n,
              .md5 = 1, .content_type = "application/xml"};
  rc = ws_s3_do(s, &r, &resp, err);
  ws_s3_error e;
  if (rc) {
    rc = ws_s3_fail(s, rc, "CompleteMultipartUpload", up->key, &resp, err);
  } else if ((rc = ws_s3xml_parse_complete(resp.body, resp.body_len, &e, err)) == WS_ESTORE) {
    rc = ws_fail(err, WS_ESTORE, "CompleteMultipartUpload s3://%s/%s: HTTP %ld with "
                 "error %s: %s", s->a.bucket, up->key, resp.status, e.code, e.message);
  }
  /* TODO: a Complete that succeeded but whose answer was lost is retried
  ** and fails with 404 NoSuchUpload; a HEAD comparing the multipart ETag
  ** would tell that apart from a real failure. */
  ws_http_resp_free(&resp);
out:
  free(q);
  free(body);
  return rc;
}

static int s3_put_commit(ws_upload *u, ws_err *err) {
  s3_upload *up = (s3_upload *)u;
  s3_store *s = (s3_store *)u->store;
  int rc;
  if (!up->upload_id) {
    rc = put_object(s, up, err);
  } else if (!(rc = send_part(s, up, err)) && !(rc = collect_parts(up, up->nsent, err))) {
    rc = complete_mpu(s, up, err);
  }
  stop_parts(up);              /* before any abort: no part may land after it */
  if (rc) abort_mpu(s, up);
  upload_free(up);
  return rc;
}

/* ---------------------------------------------------------------- get */

/* The store's answer to a GET of name (key) that ws_http_do answered rc. */
static int get_result(s3_store *s, int rc, const char *name, const char *key,
                      const ws_http_resp *resp, ws_err *err) {
  if (rc == WS_ESTORE && resp->status == 416) {
    rc = WS_OK;  /* range past the end: no bytes, as the file store */
  } else if (rc == WS_ESTORE && resp->status == 404) {
    ws_s3_error e;
    ws_s3xml_parse_error(&e, resp->body, resp->body_len);
    if (strcmp(e.code, "NoSuchBucket") == 0)
      rc = ws_s3_fail(s, rc, "GET", key, resp, err);
    else
      rc = ws_fail(err, WS_ENOTFOUND, "object %s not found in %s", name, s->a.disp);
  } else if (rc) {
    rc = ws_s3_fail(s, rc, "GET", key, resp, err);
  }
  return rc;
}

/* GET [off, off+len) of key on h (NULL: the store's handle) into sink. */
static int get_range(s3_store *s, ws_http *h, const char *name, const char *key, uint64_t off,
                     uint64_t len, ws_sink_fn sink, void *ud, ws_err *err) {
  ws_http_resp resp;
  memset(&resp, 0, sizeof(resp));
  s3_req r = {.method = "GET", .key = key, .off = off, .len = len, .sink = sink, .ud = ud};
  int rc = get_result(s, s3_do_on(s, h, &r, &resp, err), name, key, &resp, err);
  ws_http_resp_free(&resp);
  return rc;
}

typedef struct get_job {
  s3_store *s;
  const char *name, *key;      /* object name (for messages) and its key */
} get_job;

/* Runs on a worker: fetch [sl->off, sl->off + sl->want) into sl->buf. */
static int range_job(void *ud, ws_http *h, ws_s3par_slot *sl, ws_err *err) {
  get_job *g = ud;
  return get_range(g->s, h, g->name, g->key, sl->off, sl->want, ws_s3par_fill, sl, err);
}

/* Passes the first `limit` bytes of a get to the caller's sink, then stops
** the transfer (flagging `more`) if the object goes on. */
typedef struct first_ctx {
  ws_sink_fn sink;             /* the caller's sink and its ud */
  void *ud;
  uint64_t n, limit;           /* bytes passed on; at most this many */
  int more;                    /* the object goes on past limit */
} first_ctx;

static int first_sink(void *ud, const void *buf, size_t len, ws_err *err) {
  first_ctx *c = ud;
  size_t take = c->limit - c->n < len ? (size_t)(c->limit - c->n) : len;
  if (take) {
    int rc = c->sink(c->ud, buf, take, err);
    if (rc) return rc;
    c->n += take;
  }
  if (take == len) return WS_OK;
  c->more = 1;
  return WS_ERROR;  /* not a failure: ws_s3par_get takes over from here */
}

static int s3_get(ws_store *st, const char *name, uint64_t off, uint64_t len,
                  ws_sink_fn sink, void *ud, ws_err *err) {
  s3_store *s = (s3_store *)st;
  int rc = ws_store_check_name(name, err);
  if (rc) return rc;
  char *key = ws_s3_key(&s->a, name, err);
  if (!key) return WS_ENOMEM;
  if (len && len <= S3_GET_SPLIT) {
    rc = get_range(s, NULL, name, key, off, len, sink, ud, err);
  } else {
    /* Size unknown (or large): stream as usual, and switch to parallel
    ** ranges only once more than S3_GET_SPLIT bytes are coming. */
    first_ctx c = {sink, ud, 0, S3_GET_SPLIT, 0};
    rc = get_range(s, NULL, name, key, off, len, first_sink, &c, err);
    if (rc && c.more) {
      get_job g = {s, name, key};
      ws_log(WS_LOG_DEBUG, "s3", "parallel get store=%s key=%s from=%llu range=%u "
             "in_flight=%u", s->a.disp, key, (unsigned long long)(off + c.n), S3_RANGE,
             S3_INFLIGHT);
      rc = ws_s3par_get(&s->cfg, S3_INFLIGHT, S3_RANGE, off + c.n, len ? len - c.n : 0,
                        range_job, &g, sink, ud, err);
    }
  }
  free(key);
  return rc;
}

/* --------------------------------------------------------------- list */

typedef struct list_ctx {
  s3_store *s;
  ws_store_list *l;
  size_t strip;                /* bytes of "PREFIX/" to remove */
} list_ctx;

static int list_obj(void *ud, const char *key, uint64_t size, int64_t mtime, ws_err *err) {
  list_ctx *c = ud;
  ws_store_list *l = c->l;
  const char *name = key + c->strip;
  if (strlen(key) <= c->strip || (c->strip && (strncmp(key, c->s->a.prefix, c->strip - 1) ||
                                               key[c->strip - 1] != '/')) ||
      ws_store_check_name(name, NULL) != WS_OK) {
    if (atomic_exchange(&c->s->warned_names, 1) == 0)
      ws_log(WS_LOG_WARN, "store", "skipping keys that are not object names store=%s "
             "key=\"%.120s\"", c->s->a.disp, key);
    return WS_OK;
  }
  return ws_store_list_add(l, name, size, mtime, c->s->a.disp, err);
}

static int s3_list(ws_store_list *out, ws_store *st, const char *prefix, ws_err *err) {
  s3_store *s = (s3_store *)st;
  ws_store_list l = {NULL, 0, 0};
  list_ctx c = {s, &l, s->a.prefix[0] ? strlen(s->a.prefix) + 1 : 0};
  char *token = NULL, *q = NULL;
  int rc = WS_ENOMEM;
  char *full = c.strip ? ws_asprintf(err, "%s/%s", s->a.prefix, prefix ? prefix : "")
                       : ws_strdup(prefix ? prefix : "", err);
  if (!full) goto out;
  for (;;) {
    const char *kv[] = {"list-type", "2", "max-keys", "1000", "prefix", full,
                        "continuation-token", token};
    rc = WS_ENOMEM;
    free(q);
    if (!(q = ws_s3_query(kv, token ? 4 : 3, err))) goto out;
    ws_http_resp resp;
    memset(&resp, 0, sizeof(resp));
    s3_req r = {.method = "GET", .query = q, .max_body = S3_PAGE_MAX};
    rc = ws_s3_do(s, &r, &resp, err);
    int truncated = 0;
    char *next = NULL;
    if (rc) rc = ws_s3_fail(s, rc, "ListObjectsV2", full, &resp, err);
    else rc = ws_s3xml_parse_list(resp.body, resp.body_len, list_obj, &c, &truncated,
                                  &next, err);
    ws_http_resp_free(&resp);
    if (rc) goto out;
    if (!truncated) {
      free(next);
      break;
    }
    if (token && strcmp(token, next) == 0) {
      free(next);
      rc = ws_fail(err, WS_ECORRUPT, "listing of %s: the server repeated a continuation "
                   "token", s->a.disp);
      goto out;
    }
    free(token);
    token = next;
  }
  *out = l;
  memset(&l, 0, sizeof(l));
  rc = WS_OK;
out:
  ws_store_list_free(&l);
  free(q);
  free(token);
  free(full);
  return rc;
}

/* ---------------------------------------------------------------- del */

static int s3_del(ws_store *st, const char *name, ws_err *err) {
  s3_store *s = (s3_store *)st;
  int rc = ws_store_check_name(name, err);
  if (rc) return rc;
  char *key = ws_s3_key(&s->a, name, err);
  if (!key) return WS_ENOMEM;
  ws_http_resp resp;
  memset(&resp, 0, sizeof(resp));
  s3_req r = {.method = "DELETE", .key = key};
  rc = ws_s3_do(s, &r, &resp, err);
  if (rc == WS_ESTORE && resp.status == 404) {
    ws_s3_error e;
    ws_s3xml_parse_error(&e, resp.body, resp.body_len);
    rc = strcmp(e.code, "NoSuchBucket") == 0 ? ws_s3_fail(s, rc, "DELETE", key, &resp, err)
                                             : WS_OK;
  } else if (rc) {
    rc = ws_s3_fail(s, rc, "DELETE", key, &resp, err);
  }
  ws_http_resp_free(&resp);
  free(key);
  return rc;
}

/* One DeleteObjects request for names[0..n), n <= S3_DELETE_BATCH. */
static int delete_batch(s3_store *s, const char *const *names, size_t n, ws_err *err) {
  static const char *const kv[] = {"delete", NULL};
  char *body = NULL, *q = NULL;
  size_t cap = 160, len = 0;
  int rc;
  for (size_t i = 0; i < n; i++) {
    if ((rc = ws_store_check_name(names[i], err))) return rc;
    /* valid names need no XML escaping; the prefix obeys the same rules */
    cap += strlen(s->a.prefix) + strlen(names[i]) + 32;
  }
  rc = WS_ENOMEM;
  if (!(body = ws_malloc(cap, err)) || !(q = ws_s3_query(kv, 1, err))) goto out;
  len += (size_t)snprintf(body, cap, "<Delete xmlns=\"" S3_XMLNS "\"><Quiet>true</Quiet>");
  for (size_t i = 0; i < n; i++)
    len += (size_t)snprintf(body + len, cap - len, "<Object><Key>%s%s%s</Key></Object>",
                            s->a.prefix, s->a.prefix[0] ? "/" : "", names[i]);
  len += (size_t)snprintf(body + len, cap - len, "</Delete>");
  ws_http_resp resp;
  memset(&resp, 0, sizeof(resp));
  s3_req r = {.method = "POST", .query = q, .body = body, .body_len = len, .md5 = 1,
              .content_type = "application/xml", .max_body = 4u << 20};
  rc = ws_s3_do(s, &r, &resp, err);
  size_t nerr = 0;
  char key[256];
  ws_s3_error e;
  if (rc) {
    rc = ws_s3_fail(s, rc, "DeleteObjects", names[0], &resp, err);
  } else if (!(rc = ws_s3xml_parse_delete(resp.body, resp.body_len, &nerr, key, &e, err)) &&
             nerr) {
    rc = ws_fail(err, WS_ESTORE, "DeleteObjects s3://%s/%s: %s: %s (%zu of %zu keys failed)",
                 s->a.bucket, key, e.code, e.message, nerr, n);
  }
  ws_http_resp_free(&resp);
out:
  free(q);
  free(body);
  return rc;
}

int ws_s3_delete_many(ws_store *st, const char *const *names, size_t n, ws_err *err) {
  if (st->m != &s3_methods && st->m != &s3_methods_if)
    return ws_fail(err, WS_EINVAL, "store %s is not an s3 store", st->url);
  for (size_t i = 0; i < n; i += S3_DELETE_BATCH) {
    size_t k = n - i < S3_DELETE_BATCH ? n - i : S3_DELETE_BATCH;
    int rc = delete_batch((s3_store *)st, names + i, k, err);
    if (rc) return rc;
  }
  return WS_OK;
}

static const ws_store_methods s3_methods = {
  WS_STORE_METHODS_VERSION, "s3",
  s3_put_begin, s3_put_write, s3_put_commit, s3_put_abort,
  s3_get, s3_list, s3_del, s3_close, NULL, NULL,
};
static const ws_store_methods s3_methods_if = {
  WS_STORE_METHODS_VERSION, "s3",
  s3_put_begin, s3_put_write, s3_put_commit, s3_put_abort,
  s3_get, s3_list, s3_del, s3_close, ws_s3_put_if, ws_s3_etag,
};
