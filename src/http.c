/*
** The HTTP layer shared by the remote stores: one libcurl easy handle per
** ws_http, the retry policy, resumable downloads (see http.h).
**
** Invariants:
**   - a ws_http is used by one thread at a time; its easy handle is reset
**     and fully re-configured for every attempt (curl_easy_reset keeps the
**     connection cache, so keep-alive connections are still reused);
**   - a sink never receives a byte twice nor out of order: `delivered`
**     counts what the sink has accepted across attempts, a retried GET asks
**     for Range range_off+delivered, and a server that ignores the Range and
**     answers 200 has its first range_off+delivered bytes dropped;
**   - only a 2xx body reaches the sink; the first 64 KiB of an error body
**     are kept for the caller's message, the rest is discarded;
**   - every buffer is capped: collected 2xx bodies by max_body, error
**     bodies by HTTP_ERRBODY_MAX, the ETag by its field;
**   - a retry resends the same bytes: request bodies live in the caller's
**     memory, which curl may rewind through the seek callback.
*/
#include "http.h"
#include "common.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HTTP_DEFAULT_RETRIES 8
#define HTTP_DEFAULT_CONNECT_MS 10000L
#define HTTP_DEFAULT_LOW_SPEED_S 30L
#define HTTP_LOW_SPEED_BYTES 1024L
#define HTTP_BACKOFF_BASE_MS 200
#define HTTP_BACKOFF_CAP_MS 30000
#define HTTP_SLEEP_SLICE_MS 100
#define HTTP_DEFAULT_MAX_BODY (1u << 20)
#define HTTP_ERRBODY_MAX (64u << 10)

struct ws_http {
  CURL *curl;                  /* reused across requests: keep-alive */
  ws_http_cfg cfg;             /* copy; strings below are owned copies */
  char *ca_bundle, *sigv4, *user, *secret;
  uint64_t rng;                /* xorshift state for backoff jitter */
  char errbuf[CURL_ERROR_SIZE];/* curl's detail for the last failure */
};

/* The state of one attempt; `delivered` survives across attempts. */
typedef struct xfer {
  const ws_http_req *req;
  ws_err *err;
  const unsigned char *body;   /* request body and read position */
  size_t body_len, body_pos;
  long status;                 /* learnt at the first body byte */
  int to_sink;                 /* status is 2xx: bytes go to the sink */
  uint64_t skip;               /* leading bytes to drop (200 to a Range) */
  uint64_t delivered;          /* bytes the sink accepted, all attempts */
  uint64_t start;              /* first byte asked for in this attempt */
  int ranged;                  /* this attempt sent a Range header */
  uint64_t raw;                /* body bytes received in this attempt */
  int sink_rc;                 /* a sink error, returned unchanged */
  int done_early;              /* range_len satisfied: we cut the transfer */
  char *ebody;                 /* error body, at most HTTP_ERRBODY_MAX */
  size_t ebody_len;
  char etag[sizeof(((ws_http_resp *)0)->etag)];
  int have_crange;             /* Content-Range start seen and parsed */
  uint64_t crange_start;
} xfer;

/* Collects a 2xx body when the caller gave no sink. */
typedef struct collect {
  char *p;
  size_t n, cap, max;
  const char *url;
} collect;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;
static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_ALL); }

/* ------------------------------------------------------------ helpers */

const char *ws_http_status_text(long status) {
  switch (status) {
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Payload Too Large";
  case 416: return "Range Not Satisfiable";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 507: return "Insufficient Storage";
  default: return "";
  }
}

static int status_retryable(long st) { return st == 429 || (st >= 500 && st <= 599); }

/* Transport failures worth another try; everything else (bad option, TLS
** verification, our own callbacks) is final. */
static int curl_retryable(CURLcode c) {
  switch (c) {
  case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_CONNECT:
  case CURLE_OPERATION_TIMEDOUT: case CURLE_SEND_ERROR: case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE: case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM: case CURLE_SSL_CONNECT_ERROR:
  case CURLE_WEIRD_SERVER_REPLY: case CURLE_SEND_FAIL_REWIND:
    return 1;
  default:
    return 0;
  }
}

static uint64_t rng_next(ws_http *h) {
  uint64_t x = h->rng;
  x ^= x << 13; x ^= x >> 7; x ^= x << 17;
  return h->rng = x;
}

/* Full jitter: uniform in [0, min(cap, base * 2^n)]. */
static long backoff_ms(ws_http *h, int n) {
  long ceil_ms = HTTP_BACKOFF_CAP_MS;
  if (n < 20) {
    long e = (long)HTTP_BACKOFF_BASE_MS << n;
    if (e < ceil_ms) ceil_ms = e;
  }
  return (long)(rng_next(h) % (uint64_t)(ceil_ms + 1));
}

static int stopped(const ws_http *h) { return h->cfg.stop && *h->cfg.stop; }

/* Sleep ms in short slices; 1 if stop was raised meanwhile. */
static int sleep_or_stop(const ws_http *h, long ms) {
  while (ms > 0) {
    if (stopped(h)) return 1;
    long s = ms < HTTP_SLEEP_SLICE_MS ? ms : HTTP_SLEEP_SLICE_MS;
    struct timespec ts = {s / 1000, (s % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    ms -= s;
  }
  return stopped(h);
}

static char *dup_opt(const char *s, int *bad, ws_err *err) {
  if (!s) return NULL;
  char *d = ws_strdup(s, err);
  if (!d) *bad = 1;
  return d;
}

int ws_http_new(ws_http **out, const ws_http_cfg *cfg, ws_err *err) {
  pthread_once(&global_once, global_init);
  if (global_rc != CURLE_OK)
    return ws_fail(err, WS_ESTORE, "initialise libcurl: %s", curl_easy_strerror(global_rc));
  ws_http *h = ws_calloc(1, sizeof(*h), err);
  if (!h) return WS_ENOMEM;
  int bad = 0;
  h->cfg = *cfg;
  h->ca_bundle = dup_opt(cfg->ca_bundle, &bad, err);
  h->sigv4 = dup_opt(cfg->sigv4, &bad, err);
  h->user = dup_opt(cfg->user, &bad, err);
  h->secret = dup_opt(cfg->secret, &bad, err);
  if (bad) {
    ws_http_free(h);
    return WS_ENOMEM;
  }
  if (h->cfg.max_retries <= 0) h->cfg.max_retries = HTTP_DEFAULT_RETRIES;
  if (h->cfg.connect_timeout_ms <= 0) h->cfg.connect_timeout_ms = HTTP_DEFAULT_CONNECT_MS;
  if (h->cfg.low_speed_secs <= 0) h->cfg.low_speed_secs = HTTP_DEFAULT_LOW_SPEED_S;
  h->rng = ((uint64_t)ws_mono_ms() << 20) ^ (uint64_t)(uintptr_t)h ^ 0x9e3779b97f4a7c15ull;
  if (!h->rng) h->rng = 1;
  if (!(h->curl = curl_easy_init())) {
    ws_http_free(h);
    return ws_fail(err, WS_ENOMEM, "create a libcurl handle: out of memory");
  }
  *out = h;
  return WS_OK;
}

void ws_http_free(ws_http *h) {
  if (!h) return;
  if (h->curl) curl_easy_cleanup(h->curl);
  free(h->ca_bundle);
  free(h->sigv4);
  free(h->user);
  if (h->secret) {
    /* The secret should not outlive the handle in freed memory. */
    volatile char *p = h->secret;
    while (*p) *p++ = 0;
    free(h->secret);
  }
  free(h);
}

void ws_http_resp_free(ws_http_resp *r) {
  if (!r) return;
  free(r->body);
  r->body = NULL;
  r->body_len = 0;
}

char *ws_http_escape(const char *s, int keep_slash, ws_err *err) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(s);
  if (n > (SIZE_MAX - 1) / 3) {
    ws_fail(err, WS_ENOMEM, "escape a string of %zu bytes: too long", n);
    return NULL;
  }
  char *o = ws_malloc(n * 3 + 1, err), *q = o;
  if (!o) return NULL;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned char c = *p;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
      *q++ = (char)c;
    } else {
      *q++ = '%';
      *q++ = hex[c >> 4];
      *q++ = hex[c & 15];
    }
  }
  *q = '\0';
  return o;
}

/* ---------------------------------------------------------- callbacks */

static size_t read_cb(char *buf, size_t size, size_t nmemb, void *ud) {
  xfer *x = ud;
  size_t want = size * nmemb, left = x->body_len - x->body_pos;
  if (want > left) want = left;
  if (want) memcpy(buf, x->body + x->body_pos, want);
  x->body_pos += want;
  return want;
}

/* curl rewinds the body when it must resend it on the same attempt
** (a redirect we do not follow, auth negotiation, a reused dead conn). */
static int seek_cb(void *ud, curl_off_t off, int origin) {
  xfer *x = ud;
  if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->body_len)
    return CURL_SEEKFUNC_CANTSEEK;
  x->body_pos = (size_t)off;
  return CURL_SEEKFUNC_OK;
}

/* Trim leading/trailing blanks of [*p, *p+*n). */
static void trim(const char **p, size_t *n) {
  while (*n && (**p == ' ' || **p == '\t')) { (*p)++; (*n)--; }
  while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\r' ||
                (*p)[*n - 1] == '\n'))
    (*n)--;
}

static size_t header_cb(char *buf, size_t size, size_t nmemb, void *ud) {
  xfer *x = ud;
  size_t n = size * nmemb;
  /* A new status line (after a 100 Continue): forget earlier headers. */
  if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
    x->etag[0] = '\0';
    x->have_crange = 0;
    return n;
  }
  const char *colon = memchr(buf, ':', n);
  if (!colon) return n;
  size_t kn = (size_t)(colon - buf);
  const char *v = colon + 1;
  size_t vn = n - kn - 1;
  trim(&v, &vn);
  if (kn == 4 && strncasecmp(buf, "ETag", 4) == 0) {
    if (vn < sizeof(x->etag)) {     /* a longer one is not an ETag we use */
      memcpy(x->etag, v, vn);
      x->etag[vn] = '\0';
    }
  } else if (kn == 13 && strncasecmp(buf, "Content-Range", 13) == 0) {
    /* "bytes START-END/TOTAL": only START matters, to check a resume. */
    if (vn > 6 && strncasecmp(v, "bytes ", 6) == 0) {
      uint64_t s = 0;
      size_t i = 6;
      for (; i < vn && v[i] >= '0' && v[i] <= '9' && s < UINT64_MAX / 10; i++)
        s = s * 10 + (uint64_t)(v[i] - '0');
      if (i > 6 && i < vn && v[i] == '-') {
        x->crange_start = s;
        x->have_crange = 1;
      }
    }
  }
  return n;
}

typedef struct xfer_ctx {
  xfer *x;
  CURL *curl;
} xfer_ctx;

/* The body callback: the first call learns the status, so a 2xx body goes
** to the sink and anything else to the bounded error buffer.  For a 2xx it
** also aligns the body with what the sink has seen: a 206 must start where
** we asked; a 200 carries the whole object, so the bytes before our start
** are dropped. */
static size_t write_cb(char *buf, size_t size, size_t nmemb, void *ud) {
  xfer_ctx *c = ud;
  xfer *x = c->x;
  size_t n = size * nmemb;
  if (x->status == 0) {
    long st = 0;
    if (curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &st) != CURLE_OK || st == 0)
      st = -1;  /* unknown: treat as an error body */
    x->status = st;
    x->to_sink = st >= 200 && st <= 299;
    if (x->to_sink && x->ranged) {
      if (st != 206) {
        x->skip = x->start;
      } else if (x->have_crange && x->crange_start != x->start) {
        x->sink_rc = ws_fail(x->err, WS_ESTORE, "%s %s: answer to Range from %llu starts at %llu",
                             x->req->method, x->req->url, (unsigned long long)x->start,
                             (unsigned long long)x->crange_start);
        return 0;
      }
    }
  }
  x->raw += n;
  if (!x->to_sink) {
    size_t room = HTTP_ERRBODY_MAX - x->ebody_len, take = n < room ? n : room;
    if (take) {
      if (!x->ebody && !(x->ebody = malloc(HTTP_ERRBODY_MAX + 1))) return n; /* best effort */
      memcpy(x->ebody + x->ebody_len, buf, take);
      x->ebody_len += take;
    }
    return n;
  }
  const char *p = buf;
  size_t len = n;
  if (x->skip) {
    size_t s = x->skip < len ? (size_t)x->skip : len;
    p += s;
    len -= s;
    x->skip -= s;
  }
  if (x->req->range_len) {
    uint64_t left = x->req->range_len - x->delivered;
    if (left == 0 && len) {
      x->done_early = 1;        /* a 200 to our Range: we have our bytes */
      return 0;
    }
    if (len > left) len = (size_t)left;
  }
  if (len) {
    int rc = x->req->sink(x->req->sink_ud, p, len, x->err);
    if (rc) {
      x->sink_rc = rc;
      return 0;                 /* abort the transfer: CURLE_WRITE_ERROR */
    }
    x->delivered += len;
  }
  return n;
}

static int collect_sink(void *ud, const void *buf, size_t len, ws_err *err) {
  collect *c = ud;
  if (len > c->max - c->n)
    return ws_fail(err, WS_ENOMEM, "response from %s exceeds %zu bytes", c->url, c->max);
  if (c->n + len + 1 > c->cap) {
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->n + len + 1) cap = cap > (c->max + 1) / 2 ? c->max + 1 : cap * 2;
    char *p = ws_realloc(c->p, cap, err);
    if (!p) return WS_ENOMEM;
    c->p = p;
    c->cap = cap;
  }
  memcpy(c->p + c->n, buf, len);
  c->n += len;
  c->p[c->n] = '\0';
  return WS_OK;
}

/* ---------------------------------------------------------- one try */

#define SET(opt, val) do { if ((cc = curl_easy_setopt(h->curl, opt, val)) != CURLE_OK) \
    { what = #opt; goto setopt_fail; } } while (0)

/* Outcome of one attempt. */
enum { TRY_DONE, TRY_FINAL, TRY_RETRY };

/*
** One attempt.  Returns TRY_DONE (2xx, or a resumed request the server says
** is already complete), TRY_FINAL with either *rc set and the error
** recorded, or *rc == 0 and why[] naming a final HTTP status, or TRY_RETRY
** with why[] describing what went wrong.
*/
static int try_once(ws_http *h, xfer *x, CURLcode *out_cc, int *rc, char *why,
                    size_t whysz, ws_err *err) {
  const ws_http_req *rq = x->req;
  struct curl_slist *hdrs = NULL;
  CURLcode cc = CURLE_OK;
  const char *what = NULL;
  int res = TRY_FINAL;
  xfer_ctx ctx = {x, h->curl};
  char range[80];
  uint64_t start = rq->range_off + x->delivered;
  int ranged = start > 0 || rq->range_len > 0;
  x->start = start;
  x->ranged = ranged;

  x->status = 0;
  x->to_sink = 0;
  x->skip = 0;
  x->raw = 0;
  x->sink_rc = 0;
  x->done_early = 0;
  x->ebody_len = 0;
  x->etag[0] = '\0';
  x->have_crange = 0;
  x->body_pos = 0;
  h->errbuf[0] = '\0';
  *rc = WS_OK;

  curl_easy_reset(h->curl);
  for (const char *const *hp = rq->headers; hp && *hp; hp++) {
    struct curl_slist *n = curl_slist_append(hdrs, *hp);
    if (!n) goto nomem;
    hdrs = n;
  }
  if (ranged) {
    if (rq->range_len)
      snprintf(range, sizeof(range), "Range: bytes=%llu-%llu", (unsigned long long)start,
               (unsigned long long)(rq->range_off + rq->range_len - 1));
    else
      snprintf(range, sizeof(range), "Range: bytes=%llu-", (unsigned long long)start);
    struct curl_slist *n = curl_slist_append(hdrs, range);
    if (!n) goto nomem;
    hdrs = n;
  }

  SET(CURLOPT_URL, rq->url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_CONNECTTIMEOUT_MS, h->cfg.connect_timeout_ms);
  SET(CURLOPT_LOW_SPEED_LIMIT, HTTP_LOW_SPEED_BYTES);
  SET(CURLOPT_LOW_SPEED_TIME, h->cfg.low_speed_secs);
  SET(CURLOPT_ERRORBUFFER, h->errbuf);
  SET(CURLOPT_HEADERFUNCTION, header_cb);
  SET(CURLOPT_HEADERDATA, x);
  SET(CURLOPT_WRITEFUNCTION, write_cb);
  SET(CURLOPT_WRITEDATA, &ctx);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  if (h->ca_bundle) SET(CURLOPT_CAINFO, h->ca_bundle);
  if (h->cfg.insecure) {
    SET(CURLOPT_SSL_VERIFYPEER, 0L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (h->sigv4) {
    SET(CURLOPT_AWS_SIGV4, h->sigv4);
    SET(CURLOPT_USERNAME, h->user ? h->user : "");
    SET(CURLOPT_PASSWORD, h->secret ? h->secret : "");
  }
  if (strcmp(rq->method, "GET") == 0) {
    SET(CURLOPT_HTTPGET, 1L);
  } else if (strcmp(rq->method, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else if (strcmp(rq->method, "POST") == 0) {
    /* POSTFIELDS is not copied: the caller's body outlives the request. */
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    SET(CURLOPT_POSTFIELDS, rq->body ? (const char *)rq->body : "");
  } else if (rq->body || strcmp(rq->method, "PUT") == 0) {
    /* Any other method with a body is an upload under its own name. */
    SET(CURLOPT_UPLOAD, 1L);
    SET(CURLOPT_READFUNCTION, read_cb);
    SET(CURLOPT_READDATA, x);
    SET(CURLOPT_SEEKFUNCTION, seek_cb);
    SET(CURLOPT_SEEKDATA, x);
    SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
    if (strcmp(rq->method, "PUT") != 0) SET(CURLOPT_CUSTOMREQUEST, rq->method);
  } else {
    SET(CURLOPT_CUSTOMREQUEST, rq->method);
  }
  if (hdrs) SET(CURLOPT_HTTPHEADER, hdrs);

  cc = curl_easy_perform(h->curl);
  *out_cc = cc;
  long st = 0;
  if (curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &st) != CURLE_OK) st = 0;
  if (x->status == 0 || x->status == -1) x->status = st;

  if (x->sink_rc) {             /* the sink said stop: its error stands */
    *rc = x->sink_rc;
    goto out;
  }
  if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && x->done_early)) {
    const char *msg = h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc);
    snprintf(why, whysz, "%s", msg);
    res = curl_retryable(cc) ? TRY_RETRY : TRY_FINAL;
    if (res == TRY_FINAL)
      *rc = ws_fail(err, WS_ESTORE, "%s %s: %s", rq->method, rq->url, msg);
    goto out;
  }
  if (st >= 200 && st <= 299) {
    /* A truncated body curl did not notice (it should: PARTIAL_FILE). */
    curl_off_t cl = -1;
    if (!x->done_early && strcmp(rq->method, "HEAD") != 0 &&
        curl_easy_getinfo(h->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
        cl >= 0 && (uint64_t)cl != x->raw) {
      snprintf(why, whysz, "body of %llu bytes, Content-Length %lld",
               (unsigned long long)x->raw, (long long)cl);
      res = TRY_RETRY;
      goto out;
    }
    res = TRY_DONE;
    goto out;
  }
  if (st == 416 && ranged && x->delivered > 0) {
    res = TRY_DONE;             /* resumed exactly at the end: nothing left */
    goto out;
  }
  const char *txt = ws_http_status_text(st);
  snprintf(why, whysz, "HTTP %ld%s%s", st, *txt ? " " : "", txt);
  res = status_retryable(st) ? TRY_RETRY : TRY_FINAL;
  goto out;

nomem:
  *rc = ws_fail(err, WS_ENOMEM, "%s %s: out of memory for request headers", rq->method, rq->url);
  goto out;
setopt_fail:
  *rc = ws_fail(err, WS_ESTORE, "%s %s: libcurl option %s: %s", rq->method, rq->url, what,
                curl_easy_strerror(cc));
out:
  curl_slist_free_all(hdrs);
  return res;
}
#undef SET

int ws_http_do(ws_http *h, const ws_http_req *req, ws_http_resp *resp, ws_err *err) {
  xfer x;
  collect col;
  ws_http_req rq = *req;
  int rc = WS_OK, attempt = 0;
  CURLcode cc = CURLE_OK;
  char why[CURL_ERROR_SIZE + 64];

  memset(&x, 0, sizeof(x));
  memset(&col, 0, sizeof(col));
  if (resp) memset(resp, 0, sizeof(*resp));
  int own_sink = !rq.sink;
  if (own_sink) {
    /* Collecting is just another sink, so resume works for it too. */
    col.max = rq.max_body ? rq.max_body : HTTP_DEFAULT_MAX_BODY;
    col.url = rq.url;
    rq.sink = collect_sink;
    rq.sink_ud = &col;
  }
  x.req = &rq;
  x.err = err;
  x.body = rq.body;
  x.body_len = rq.body ? rq.body_len : 0;
  int is_get = strcmp(rq.method, "GET") == 0;

  for (;;) {
    if (stopped(h)) {
      rc = ws_fail(err, WS_ESTOPPED, "%s %s: stopped after %d attempts", rq.method, rq.url,
                   attempt);
      goto out;
    }
    attempt++;
    why[0] = '\0';
    int res = try_once(h, &x, &cc, &rc, why, sizeof(why), err);
    if (res == TRY_DONE) {
      rc = WS_OK;
      goto out;
    }
    if (res == TRY_FINAL) {
      if (!rc) {
        if (attempt > 1)
          rc = ws_fail(err, WS_ESTORE, "%s %s: %s after %d attempts", rq.method, rq.url, why,
                       attempt);
        else
          rc = ws_fail(err, WS_ESTORE, "%s %s: %s", rq.method, rq.url, why);
      }
      goto out;
    }
    /* Only a GET can resume; any other answer must restart from byte 0,
    ** which our own collector can take and a caller's sink cannot. */
    if (!is_get && x.delivered) {
      if (!own_sink) {
        rc = ws_fail(err, WS_ESTORE, "%s %s: %s after %llu bytes of the answer; not retried",
                     rq.method, rq.url, why, (unsigned long long)x.delivered);
        goto out;
      }
      col.n = 0;
      x.delivered = 0;
    }
    if (attempt >= h->cfg.max_retries) {
      rc = ws_fail(err, WS_ESTORE, "%s %s: %s after %d attempts", rq.method, rq.url, why, attempt);
      goto out;
    }
    long delay = backoff_ms(h, attempt - 1);
    ws_log(WS_LOG_WARN, "http", "retrying %s %s: %s attempt=%d/%d delay_ms=%ld", rq.method,
           rq.url, why, attempt, h->cfg.max_retries, delay);
    if (sleep_or_stop(h, delay)) {
      rc = ws_fail(err, WS_ESTOPPED, "%s %s: stopped after %d attempts (last: %s)", rq.method,
                   rq.url, attempt, why);
      goto out;
    }
  }
out:
  if (rc == WS_OK && own_sink && !col.p) {
    /* An empty body is still a string the caller may read. */
    if (!(col.p = ws_malloc(1, err))) rc = WS_ENOMEM;
    else col.p[0] = '\0';
  }
  if (resp) {
    resp->status = x.status > 0 ? x.status : 0;
    resp->attempts = attempt;
    memcpy(resp->etag, x.etag, sizeof(resp->etag));
    if (rc == WS_OK && own_sink) {
      resp->body = col.p;       /* handed over */
      resp->body_len = col.n;
      col.p = NULL;
    } else if (rc != WS_OK && x.ebody_len && x.status >= 300) {
      x.ebody[x.ebody_len] = '\0';
      resp->body = x.ebody;
      resp->body_len = x.ebody_len;
      x.ebody = NULL;
    }
  }
  free(col.p);
  free(x.ebody);
  return rc;
}
