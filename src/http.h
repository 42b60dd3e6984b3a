/*
** The HTTP layer shared by the remote stores (store_s3.c, store_http.c):
** one libcurl easy handle per ws_http (connections are reused), and the
** retry policy, so both backends fail and recover the same way.
**
** Retry policy: transport failures (connect refused/reset, timeouts, a
** truncated body), HTTP 5xx and 429 are retried with exponential backoff
** and full jitter (base 200 ms, cap 30 s, cfg.max_retries attempts); any
** other status is final and returned at once.  A download into a sink that
** fails half way is resumed with a Range request from the first byte the
** sink has not seen, so a sink never receives a byte twice.  Request
** bodies come from memory (the caller owns at most one part), so a retry
** resends exactly the same bytes.
**
** Secrets: credentials are passed to libcurl through CURLOPT_USERNAME /
** CURLOPT_PASSWORD and never appear in URLs, headers we log, or errors.
*/
#ifndef WS_HTTP_H
#define WS_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include "walship/store.h"

typedef struct ws_http_cfg {
  const char *ca_bundle;     /* NULL: system CAs */
  int insecure;              /* skip TLS peer/host verification */
  int max_retries;           /* 0: 8 */
  long connect_timeout_ms;   /* 0: 10 s */
  long low_speed_secs;       /* abort a transfer slower than 1 KiB/s for this
                                long (0: 30 s) — a stalled store is a timeout */
  const char *sigv4;         /* CURLOPT_AWS_SIGV4 value ("aws:amz:REGION:s3"),
                                NULL: no signing */
  const char *user;          /* SigV4 access key id (CURLOPT_USERNAME) */
  const char *secret;        /* SigV4 secret (CURLOPT_PASSWORD), never logged */
  volatile int *stop;        /* give up retrying when *stop != 0 */
} ws_http_cfg;

typedef struct ws_http_req {
  const char *method;        /* "GET", "PUT", "POST", "DELETE", "HEAD" */
  const char *url;           /* full URL; must not contain secrets */
  const char *const *headers;/* NULL-terminated "Name: value" list, or NULL */
  const void *body;          /* request body (PUT/POST), may be NULL */
  size_t body_len;
  uint64_t range_off;        /* GET: first byte wanted */
  uint64_t range_len;        /* GET: bytes wanted from range_off, 0 = to end */
  ws_sink_fn sink;           /* 2xx response body goes here; NULL: collected
                                into resp->body (at most max_body bytes) */
  void *sink_ud;
  size_t max_body;           /* cap for collected bodies; 0: 1 MiB */
} ws_http_req;

typedef struct ws_http_resp {
  long status;               /* last HTTP status (0: no response) */
  char *body;                /* collected body (2xx without sink, or the first
                                64 KiB of an error body), NUL-terminated */
  size_t body_len;
  char etag[160];            /* ETag response header, quotes kept */
  int attempts;              /* how many tries it took */
} ws_http_resp;

typedef struct ws_http ws_http;

int ws_http_new(ws_http **out, const ws_http_cfg *cfg, ws_err *err);
void ws_http_free(ws_http *h);

/*
** Perform req with the retry policy.  Returns WS_OK when the final status
** is 2xx (206 included).  Otherwise WS_ESTORE (or WS_ESTOPPED), with
** resp->status and resp->body kept so the caller can name the bucket/object
** and the store's own error code; err then holds a generic one-line
** message ("PUT http://host/b/k: HTTP 503 after 8 attempts", or the curl
** error text for transport failures).  A sink error is returned unchanged.
** resp may be NULL when the caller needs nothing from it.
*/
int ws_http_do(ws_http *h, const ws_http_req *req, ws_http_resp *resp, ws_err *err);
void ws_http_resp_free(ws_http_resp *r); /* frees body; keeps the struct */

/* Percent-encode s per RFC 3986 (unreserved chars kept; '/' kept when
** keep_slash) — the encoding SigV4 canonical requests need. */
char *ws_http_escape(const char *s, int keep_slash, ws_err *err);

/* Reason phrase of a common HTTP status ("Forbidden"), "" when unknown:
** HTTP/2 carries none, so messages take it from this table. */
const char *ws_http_status_text(long status);

#endif
