/*
** The HTTP layer (src/http.c) and the plain HTTP store (src/store_http.c)
** against a real, scriptable HTTP/1.1 server running in this process on
** 127.0.0.1: retries on 5xx/429 and transport failures, none on 4xx,
** downloads resumed without a byte delivered twice (also when the server
** ignores Range), the stop flag, body caps, and a store round trip over a
** WebDAV-like server with nginx's JSON autoindex listings (the store is
** opened through ws_store_http_open until store.c maps http:// to it).
**
** The server: one thread accepts, one thread per connection, keep-alive;
** objects live in a small table keyed by path.  Knobs in S script the
** next answers (fail the first N requests, cut bodies, ignore Range,
** never answer).
*/
#include "http.h"
#include "store_int.h"
#include "common.h"
/* t.h's RUN puts fflush after an else on one line; -Wall flags that. */
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#include "t.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------ server */

#define MAXOBJ 64
#define BLOB_LEN 100000

static struct {
  pthread_mutex_t mu;
  int port;
  int requests;                /* requests answered (or swallowed) */
  int fail_n, fail_status;     /* the first fail_n requests get fail_status */
  int cut_n;                   /* the next cut_n object GETs are cut ... */
  size_t cut_bytes;            /* ... after this many body bytes */
  int ignore_range;            /* answer 200 + whole object to a Range */
  int hang;                    /* read the request, never answer */
  int inject_bad;              /* hostile names in the listing of "b/" */
  int put_403;                 /* refuse PUTs */
  char last_range[80];         /* Range header of the last request */
  char last_method[16];
  struct { char *path; unsigned char *data; size_t len; } obj[MAXOBJ];
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void reset_script(void) {
  pthread_mutex_lock(&S.mu);
  S.requests = S.fail_n = S.fail_status = S.cut_n = S.ignore_range = S.hang = 0;
  S.inject_bad = S.put_403 = 0;
  S.cut_bytes = 0;
  S.last_range[0] = S.last_method[0] = '\0';
  pthread_mutex_unlock(&S.mu);
}

static int requests(void) {
  pthread_mutex_lock(&S.mu);
  int n = S.requests;
  pthread_mutex_unlock(&S.mu);
  return n;
}

static unsigned char blob_byte(size_t i) { return (unsigned char)((i * 2654435761u) >> 13); }

/* Caller holds S.mu. */
static int obj_find(const char *path) {
  for (int i = 0; i < MAXOBJ; i++)
    if (S.obj[i].path && strcmp(S.obj[i].path, path) == 0) return i;
  return -1;
}

static void obj_set(const char *path, const void *data, size_t len) {
  int i = obj_find(path);
  if (i < 0)
    for (i = 0; i < MAXOBJ && S.obj[i].path; i++) {}
  if (i == MAXOBJ) abort();
  free(S.obj[i].path);
  free(S.obj[i].data);
  S.obj[i].path = strdup(path);
  S.obj[i].data = malloc(len ? len : 1);
  if (len) memcpy(S.obj[i].data, data, len);
  S.obj[i].len = len;
}

static int send_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int respond(int fd, int status, const char *reason, const char *extra,
                   const void *body, size_t len, size_t cl) {
  char h[512];
  int n = snprintf(h, sizeof(h), "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                   reason, cl, extra ? extra : "");
  if (send_all(fd, h, (size_t)n)) return -1;
  return len ? send_all(fd, body, len) : 0;
}

static void b64_md5(char out[32], const void *data, size_t len) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL);
  EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

/* nginx's autoindex_format json for directory dir ("b/" or "b/seg/"). */
static char *listing(const char *dir, int *found) {
  size_t cap = 1 << 16, n = 0;
  char *o = malloc(cap);
  char seen[MAXOBJ][64];
  int nseen = 0;
  n += (size_t)snprintf(o + n, cap - n, "[");
  *found = 0;
  for (int i = 0; i < MAXOBJ; i++) {
    const char *p = S.obj[i].path;
    if (!p || strncmp(p, dir, strlen(dir)) != 0) continue;
    const char *rest = p + strlen(dir), *sl = strchr(rest, '/');
    char name[64];
    snprintf(name, sizeof(name), "%.*s", (int)(sl ? (size_t)(sl - rest) : strlen(rest)), rest);
    int dup = 0;
    for (int j = 0; j < nseen; j++) dup |= strcmp(seen[j], name) == 0;
    if (dup) continue;
    snprintf(seen[nseen++], 64, "%s", name);
    n += (size_t)snprintf(o + n, cap - n, "%s{ \"name\":\"%s\", \"type\":\"%s\", "
                          "\"mtime\":\"Sat, 28 Nov 2026 10:00:00 GMT\"", *found ? "," : "",
                          name, sl ? "directory" : "file");
    if (!sl) n += (size_t)snprintf(o + n, cap - n, ", \"size\":%zu", S.obj[i].len);
    n += (size_t)snprintf(o + n, cap - n, " }\n");
    *found = 1;
  }
  if (S.inject_bad && strcmp(dir, "b/") == 0 && *found)
    n += (size_t)snprintf(o + n, cap - n, ",{\"name\":\"..\",\"type\":\"directory\"},"
                          "{\"name\":\"bad name.seg\",\"type\":\"file\",\"size\":1}");
  snprintf(o + n, cap - n, "]");
  return o;
}

/* One request on fd; returns 0 to keep the connection, -1 to close it. */
static int serve_one(int fd) {
  char hb[16384];
  size_t n = 0;
  char *end = NULL;
  while (!(end = memmem(hb, n, "\r\n\r\n", 4))) {
    if (n == sizeof(hb)) return -1;
    ssize_t r = recv(fd, hb + n, sizeof(hb) - n, 0);
    if (r <= 0) return -1;
    n += (size_t)r;
  }
  *end = '\0';
  char method[16], target[2048];
  if (sscanf(hb, "%15s %2047s", method, target) != 2) return -1;
  size_t clen = 0;
  char range[80] = "", md5[64] = "";
  int expect = 0;
  for (char *line = strstr(hb, "\r\n"); line; line = strstr(line, "\r\n")) {
    line += 2;
    if (!strncasecmp(line, "Content-Length:", 15)) clen = strtoul(line + 15, NULL, 10);
    else if (!strncasecmp(line, "Range:", 6)) sscanf(line + 6, " %79[^\r]", range);
    else if (!strncasecmp(line, "Content-MD5:", 12)) sscanf(line + 12, " %63[^\r]", md5);
    else if (!strncasecmp(line, "Expect: 100-continue", 20)) expect = 1;
  }
  if (expect && send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25)) return -1;
  size_t have = n - (size_t)(end + 4 - hb);
  unsigned char *body = malloc(clen + 1);
  memcpy(body, end + 4, have < clen ? have : clen);
  for (size_t got = have; got < clen;) {
    ssize_t r = recv(fd, body + got, clen - got, 0);
    if (r <= 0) { free(body); return -1; }
    got += (size_t)r;
  }
  /* path without the leading '/', percent-decoded */
  char path[2048];
  size_t pn = 0;
  for (const char *s = target + 1; *s && pn < sizeof(path) - 1; s++) {
    unsigned v;
    if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1) { path[pn++] = (char)v; s += 2; }
    else path[pn++] = *s;
  }
  path[pn] = '\0';

  pthread_mutex_lock(&S.mu);
  int nreq = ++S.requests;
  snprintf(S.last_range, sizeof(S.last_range), "%s", range);
  snprintf(S.last_method, sizeof(S.last_method), "%s", method);
  int rc = 0;
  if (S.hang) {
    pthread_mutex_unlock(&S.mu);
    free(body);
    struct pollfd pf = {fd, POLLIN, 0};
    poll(&pf, 1, 10000);   /* until the client gives up and closes */
    return -1;
  }
  if (nreq <= S.fail_n) {
    rc = respond(fd, S.fail_status, "Scripted", NULL, "<html>nope</html>", 17, 17);
  } else if (!strcmp(method, "PUT")) {
    char want[32];
    b64_md5(want, body, clen);
    if (S.put_403) rc = respond(fd, 403, "Forbidden", NULL, NULL, 0, 0);
    else if (md5[0] && strcmp(md5, want)) rc = respond(fd, 400, "Bad MD5", NULL, NULL, 0, 0);
    else {
      obj_set(path, body, clen);
      rc = respond(fd, 201, "Created", NULL, NULL, 0, 0);
    }
  } else if (!strcmp(method, "DELETE")) {
    int i = obj_find(path);
    if (i < 0) rc = respond(fd, 404, "Not Found", NULL, NULL, 0, 0);
    else {
      free(S.obj[i].path);
      free(S.obj[i].data);
      S.obj[i].path = NULL;
      S.obj[i].data = NULL;
      rc = respond(fd, 204, "No Content", NULL, NULL, 0, 0);
    }
  } else if (!strcmp(method, "GET") && pn && path[pn - 1] == '/') {
    int found;
    char *js = listing(path, &found);
    if (found) rc = respond(fd, 200, "OK", "Content-Type: application/json\r\n", js, strlen(js), strlen(js));
    else rc = respond(fd, 404, "Not Found", NULL, "<html>404</html>", 16, 16);
    free(js);
  } else if (!strcmp(method, "GET")) {
    int i = obj_find(path);
    if (i < 0) {
      rc = respond(fd, 404, "Not Found", NULL, "<html>404</html>", 16, 16);
    } else {
      size_t len = S.obj[i].len, from = 0, to = len;  /* [from, to) */
      int partial = 0;
      unsigned long long a, b;
      if (range[0] && !S.ignore_range) {
        int k = sscanf(range, "bytes=%llu-%llu", &a, &b);
        if (k >= 1) {
          if (a >= len) {
            rc = respond(fd, 416, "Range Not Satisfiable", NULL, NULL, 0, 0);
            goto done;
          }
          from = (size_t)a;
          if (k == 2 && b + 1 < len) to = (size_t)b + 1;
          partial = 1;
        }
      }
      char extra[128] = "";
      if (partial)
        snprintf(extra, sizeof(extra), "Content-Range: bytes %zu-%zu/%zu\r\n", from, to - 1, len);
      size_t send_n = to - from;
      if (S.cut_n > 0) {
        S.cut_n--;
        if (S.cut_bytes < send_n) send_n = S.cut_bytes;
        rc = -1;  /* close after the cut body */
      }
      if (respond(fd, partial ? 206 : 200, partial ? "Partial Content" : "OK", extra,
                  S.obj[i].data + from, send_n, to - from))
        rc = -1;
    }
  } else {
    rc = respond(fd, 405, "Not Allowed", NULL, NULL, 0, 0);
  }
done:
  pthread_mutex_unlock(&S.mu);
  free(body);
  return rc;
}

static void *conn_main(void *ud) {
  int fd = (int)(intptr_t)ud;
  while (serve_one(fd) == 0) {}
  close(fd);
  return NULL;
}

static void *accept_main(void *ud) {
  int lfd = (int)(intptr_t)ud;
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) continue;
    pthread_t t;
    if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd) == 0) pthread_detach(t);
    else close(fd);
  }
  return NULL;
}

static int server_start(void) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof(a);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 16) ||
      getsockname(lfd, (struct sockaddr *)&a, &al))
    return -1;
  S.port = ntohs(a.sin_port);
  unsigned char *blob = malloc(BLOB_LEN);
  for (size_t i = 0; i < BLOB_LEN; i++) blob[i] = blob_byte(i);
  obj_set("blob", blob, BLOB_LEN);
  free(blob);
  pthread_t t;
  if (pthread_create(&t, NULL, accept_main, (void *)(intptr_t)lfd)) return -1;
  pthread_detach(t);
  return 0;
}

/* A port nobody listens on: bound, then closed. */
static int dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof(a);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &al))
    return -1;
  close(fd);
  return ntohs(a.sin_port);
}

/* ------------------------------------------------------------ client helpers */

static char url_[256];
static const char *url(const char *path) {
  snprintf(url_, sizeof(url_), "http://127.0.0.1:%d/%s", S.port, path);
  return url_;
}

static ws_http *client(int max_retries, volatile int *stop) {
  ws_http_cfg cfg = {0};
  cfg.max_retries = max_retries;
  cfg.connect_timeout_ms = 2000;
  cfg.low_speed_secs = 1;
  cfg.stop = stop;
  ws_http *h = NULL;
  ws_err e = WS_ERR_INIT;
  if (ws_http_new(&h, &cfg, &e)) printf("  ws_http_new: %s\n", e.msg);
  return h;
}

/* Checks each byte against the blob at its position: a byte delivered twice
** or skipped shows as a mismatch or a wrong total. */
typedef struct check_sink { size_t pos, bad, calls; int fail_after; } check_sink;
static int check_fn(void *ud, const void *buf, size_t len, ws_err *err) {
  check_sink *c = ud;
  const unsigned char *p = buf;
  if (c->fail_after && (int)c->calls >= c->fail_after)
    return ws_fail(err, WS_EIO, "write sink.out: disk full");
  c->calls++;
  for (size_t i = 0; i < len; i++)
    if (p[i] != blob_byte(c->pos + i)) c->bad++;
  c->pos += len;
  return WS_OK;
}

static int log_warns, store_warns;
static volatile int *log_stop_at_2;
static void log_hook(void *ud, int level, const char *comp, const char *msg) {
  (void)ud;
  if (level == WS_LOG_WARN && !strcmp(comp, "store")) store_warns++;
  if (level == WS_LOG_WARN && !strcmp(comp, "http")) {
    log_warns++;
    if (log_warns == 2 && log_stop_at_2) *log_stop_at_2 = 1;
  }
  if (getenv("T_VERBOSE")) printf("  log %d %s: %s\n", level, comp, msg);
}

/* ------------------------------------------------------------ http tests */

static void test_escape_vectors(void) {
  ws_err e = WS_ERR_INIT;
  const char *v[][3] = {
    {"a b/+=", "a%20b/%2B%3D", "a%20b%2F%2B%3D"},
    {"AZaz09-._~", "AZaz09-._~", "AZaz09-._~"},
    {"seg/0000000000000001-0000000000000002.seg", "seg/0000000000000001-0000000000000002.seg",
     "seg%2F0000000000000001-0000000000000002.seg"},
    {"\xff\x01?#&%", "%FF%01%3F%23%26%25", "%FF%01%3F%23%26%25"},
    {"", "", ""},
  };
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    for (int ks = 1; ks >= 0; ks--) {
      char *o = ws_http_escape(v[i][0], ks, &e);
      CHECK(o != NULL);
      int same = strcmp(o, v[i][ks ? 1 : 2]) == 0;
      if (!same) printf("  escape(%s, %d) = %s\n", v[i][0], ks, o);
      free(o);
      CHECK(same);
    }
  }
}

static void test_retries_503_then_success(void) {
  reset_script();
  S.fail_n = 3;
  S.fail_status = 503;
  ws_http *h = client(8, NULL);
  CHECK(h);
  ws_http_req rq = {.method = "GET", .url = url("blob"), .max_body = BLOB_LEN};
  ws_http_resp rs;
  ws_err e = WS_ERR_INIT;
  int warns0 = log_warns;
  int rc = ws_http_do(h, &rq, &rs, &e);
  if (rc) printf("  %s\n", e.msg);
  CHECK_EQ(rc, WS_OK);
  CHECK_EQ(rs.attempts, 4);
  CHECK_EQ(requests(), 4);
  CHECK_EQ(log_warns - warns0, 3);   /* one line per retry */
  CHECK_EQ(rs.status, 200);
  CHECK_EQ(rs.body_len, BLOB_LEN);
  int ok = 1;
  for (size_t i = 0; i < BLOB_LEN; i++) ok &= (unsigned char)rs.body[i] == blob_byte(i);
  CHECK(ok);
  ws_http_resp_free(&rs);
  ws_http_free(h);
}

static void test_429_is_retried(void) {
  reset_script();
  S.fail_n = 1;
  S.fail_status = 429;
  ws_http *h = client(8, NULL);
  CHECK(h);
  check_sink cs = {0};
  ws_http_req rq = {.method = "GET", .url = url("blob"), .sink = check_fn, .sink_ud = &cs};
  ws_http_resp rs;
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_http_do(h, &rq, &rs, &e), WS_OK);
  CHECK_EQ(rs.attempts, 2);
  CHECK_EQ(cs.pos, BLOB_LEN);
  CHECK_EQ(cs.bad, 0);
  CHECK(rs.body == NULL);            /* a sink took it */
  ws_http_free(h);
}

static void test_no_retry_on_403_or_404(void) {
  ws_http *h = client(8, NULL);
  CHECK(h);
  char want[256];
  /* 403 from the script */
  reset_script();
  S.fail_n = 5;
  S.fail_status = 403;
  check_sink cs = {0};
  ws_http_req rq = {.method = "GET", .url = url("blob"), .sink = check_fn, .sink_ud = &cs};
  ws_http_resp rs;
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_http_do(h, &rq, &rs, &e), WS_ESTORE);
  CHECK_EQ(requests(), 1);
  CHECK_EQ(rs.status, 403);
  CHECK_EQ(cs.pos, 0);               /* an error body never reaches the sink */
  CHECK(rs.body && strstr(rs.body, "nope"));
  snprintf(want, sizeof(want), "GET http://127.0.0.1:%d/blob: HTTP 403 Forbidden", S.port);
  if (strcmp(e.msg, want)) printf("  got: %s\n", e.msg);
  CHECK(strcmp(e.msg, want) == 0);
  ws_http_resp_free(&rs);
  /* a real 404 */
  reset_script();
  rq.url = url("nosuch");
  CHECK_EQ(ws_http_do(h, &rq, &rs, &e), WS_ESTORE);
  CHECK_EQ(requests(), 1);
  CHECK_EQ(rs.status, 404);
  ws_http_resp_free(&rs);
  ws_http_free(h);
}

static void test_retries_exhausted_names_attempts(void) {
  reset_script();
  S.fail_n = 100;
  S.fail_status = 503;
  ws_http *h = client(3, NULL);
  CHECK(h);
  ws_http_req rq = {.method = "PUT", .url = url("x/y"), .body = "abc", .body_len = 3};
  ws_http_resp rs;
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_http_do(h, &rq, &rs, &e), WS_ESTORE);
  CHECK_EQ(requests(), 3);
  CHECK_EQ(rs.attempts, 3);
  CHECK_EQ(rs.status, 503);
  CHECK(strstr(e.msg, "HTTP 503 Service Unavailable after 3 attempts") != NULL);
  CHECK(strstr(e.msg, "PUT http://127.0.0.1:") == e.msg);
  ws_http_resp_free(&rs);
  ws_http_free(h);
}

static void test_connect_refused_is_retried(void) {
  int port = dead_port();
  CHECK(port > 0);
  ws_http *h = client(2, NULL);
  CHECK(h);
  char u[128];
  snprintf(u, sizeof(u), "http://127.0.0.1:%d/blob", port);
  ws_http_req rq = {.method = "GET", .url = u};
  ws_http_resp rs;
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_http_do(h, &rq, &rs, &e), WS_ESTORE);
  CHECK_EQ(rs.attempts, 2);
  CHECK_EQ(rs.status, 0);
  CHECK(strstr(e.msg, "after 2 attempts") != NULL);
  CHECK(strstr(e.msg, u) != NULL);
  ws_http_free(h);
}

/* Cut twice, with and without the server honouring Range. */
static void resume_case(int ignore_range, uint64_t off, uint64_t len) {
  reset_script();
  S.cut_n = 2;
  S.cut_bytes = 7000;
  S.ignore_range = ignore_range;
  ws_http *h = client(8, NULL);
  CHECK(h);
  check_sink cs = {.pos = off};
  ws_http_req rq = {.method = "GET", .url = url("blob"), .sink = check_fn, .sink_ud = &cs,
                    .range_off = off, .range_len = len};
  ws_http_resp rs;
  ws_err e = WS_ERR_INIT;
  int rc = ws_http_do(h, &rq, &rs, &e);
  if (rc) printf("  %s\n", e.msg);
  CHECK_EQ(rc, WS_OK);
  CHECK_EQ(rs.attempts, 3);
  CHECK_EQ(cs.bad, 0);
  CHECK_EQ(cs.pos - off, len ? len : BLOB_LEN - off);
  /* Honoured Range: two cuts of 7000 bytes each.  Ignored Range: every
  ** answer starts at byte 0, so the second cut delivered nothing new. */
  char want[80];
  unsigned long long from = ignore_range ? 7000 : off + 2 * 7000;
  if (len) snprintf(want, sizeof(want), "bytes=%llu-%llu", from,
                    (unsigned long long)(off + len - 1));
  else snprintf(want, sizeof(want), "bytes=%llu-", from);
  if (strcmp(S.last_range, want)) printf("  last Range %s, want %s\n", S.last_range, want);
  CHECK(strcmp(S.last_range, want) == 0);  /* the third try resumed there */
  ws_http_free(h);
}

static void test_resume_delivers_each_byte_once(void) { resume_case(0, 0, 0); }
static void test_resume_when_server_ignores_range(void) { resume_case(1, 0, 0); }
static void test_resume_within_requested_range(void) { resume_case(0, 1000, 50000); }
static void test_resume_within_range_server_ignores_range(void) { resume_case(1, 1000, 50000); }

static void test_stop_aborts_retries(void) {
  reset_script();
  S.fail_n = 100;
  S.fail_status = 503;
  volatile int stop = 0;
  ws_http *h = client(20, &stop);
  CHECK(h);
  ws_http_req rq = {.method = "GET", .url = url("blob")};
  ws_http_resp rs;
  ws_err e = WS_ERR_INIT;
  log_stop_at_2 = &stop;             /* raised while the 2nd backoff sleeps */
  int warns0 = log_warns;
  log_warns = 0;
  int rc = ws_http_do(h, &rq, &rs, &e);
  log_stop_at_2 = NULL;
  log_warns += warns0;
  CHECK_EQ(rc, WS_ESTOPPED);
  CHECK_EQ(requests(), 2);
  ws_http_resp_free(&rs);
  /* already stopped: not even one request */
  reset_script();
  CHECK_EQ(ws_http_do(h, &rq, NULL, &e), WS_ESTOPPED);
  CHECK_EQ(requests(), 0);
  ws_http_free(h);
}

static void test_collected_body_is_capped(void) {
  reset_script();
  ws_http *h = client(8, NULL);
  CHECK(h);
  ws_http_req rq = {.method = "GET", .url = url("blob"), .max_body = 1000};
  ws_http_resp rs;
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_http_do(h, &rq, &rs, &e), WS_ENOMEM);
  CHECK_EQ(requests(), 1);
  CHECK(strstr(e.msg, "exceeds 1000 bytes") != NULL);
  CHECK(rs.body == NULL);
  ws_http_free(h);
}

static void test_sink_error_returned_unchanged(void) {
  reset_script();
  ws_http *h = client(8, NULL);
  CHECK(h);
  check_sink cs = {.fail_after = 1};
  ws_http_req rq = {.method = "GET", .url = url("blob"), .sink = check_fn, .sink_ud = &cs};
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_http_do(h, &rq, NULL, &e), WS_EIO);
  CHECK(strcmp(e.msg, "write sink.out: disk full") == 0);
  CHECK_EQ(requests(), 1);
  ws_http_free(h);
}

static void test_stalled_server_times_out(void) {
  reset_script();
  S.hang = 1;
  ws_http *h = client(2, NULL);      /* low_speed_secs = 1 */
  CHECK(h);
  ws_http_req rq = {.method = "GET", .url = url("blob")};
  ws_http_resp rs;
  ws_err e = WS_ERR_INIT;
  int64_t t0 = ws_mono_ms();
  CHECK_EQ(ws_http_do(h, &rq, &rs, &e), WS_ESTORE);
  CHECK(ws_mono_ms() - t0 < 8000);
  CHECK_EQ(requests(), 2);
  CHECK(strstr(e.msg, "after 2 attempts") != NULL);
  ws_http_free(h);
}

static void test_put_bodies_incl_empty(void) {
  reset_script();
  ws_http *h = client(8, NULL);
  CHECK(h);
  ws_err e = WS_ERR_INIT;
  ws_http_req rq = {.method = "PUT", .url = url("p/one"), .body = "hello", .body_len = 5};
  CHECK_EQ(ws_http_do(h, &rq, NULL, &e), WS_OK);
  ws_http_req r0 = {.method = "PUT", .url = url("p/zero")};
  CHECK_EQ(ws_http_do(h, &r0, NULL, &e), WS_OK);
  ws_http_req rg = {.method = "GET", .url = url("p/one")};
  ws_http_resp rs;
  CHECK_EQ(ws_http_do(h, &rg, &rs, &e), WS_OK);
  CHECK(rs.body_len == 5 && memcmp(rs.body, "hello", 5) == 0);
  ws_http_resp_free(&rs);
  rg.url = url("p/zero");
  CHECK_EQ(ws_http_do(h, &rg, &rs, &e), WS_OK);
  CHECK(rs.body_len == 0 && rs.body && rs.body[0] == '\0');
  ws_http_resp_free(&rs);
  ws_http_free(h);
}

/* ------------------------------------------------------------ store tests */

static ws_store *open_store(const ws_store_opts *o, ws_err *e) {
  static const ws_store_opts defaults = WS_STORE_OPTS_INIT;
  char u[128];
  snprintf(u, sizeof(u), "http://127.0.0.1:%d/b/", S.port);
  ws_store *st = NULL;
  if (ws_store_http_open(&st, u, u + 7, o ? o : &defaults, e) != WS_OK) {
    printf("  open %s: %s\n", u, e->msg);
    return NULL;
  }
  return st;
}

static void drop_server_objects(void) {
  pthread_mutex_lock(&S.mu);
  for (int i = 0; i < MAXOBJ; i++)
    if (S.obj[i].path && strncmp(S.obj[i].path, "b/", 2) == 0) {
      free(S.obj[i].path);
      free(S.obj[i].data);
      S.obj[i].path = NULL;
      S.obj[i].data = NULL;
    }
  pthread_mutex_unlock(&S.mu);
}

static size_t server_len(const char *path) {
  pthread_mutex_lock(&S.mu);
  int i = obj_find(path);
  size_t n = i < 0 ? (size_t)-1 : S.obj[i].len;
  pthread_mutex_unlock(&S.mu);
  return n;
}

static const ws_store_obj *find_obj(const ws_store_list *l, const char *name) {
  for (size_t i = 0; i < l->n; i++)
    if (!strcmp(l->v[i].name, name)) return &l->v[i];
  return NULL;
}

#define SEG1 "seg/0000000000000001-0000000000000002.seg"
#define SEG2 "seg/0000000000000003-0000000000000004.seg"
#define SNAP "snap/0000000000000001.snap"

static void test_http_store_roundtrip(void) {
  reset_script();
  drop_server_objects();
  ws_err e = WS_ERR_INIT;
  ws_store *st = open_store(NULL, &e);
  CHECK(st);
  ws_store_list l = {0};
  CHECK_EQ(st->m->list(&l, st, "", &e), WS_OK);    /* no base dir: 404 = empty */
  CHECK_EQ(l.n, 0);
  ws_store_list_free(&l);

  /* streamed put in three writes; nothing is sent before commit */
  unsigned char *data = malloc(40000);
  for (size_t i = 0; i < 40000; i++) data[i] = blob_byte(i * 3 + 1);
  ws_upload *up = NULL;
  CHECK_EQ(st->m->put_begin(&up, st, SEG1, &e), WS_OK);
  CHECK_EQ(st->m->put_write(up, data, 10000, &e), WS_OK);
  CHECK_EQ(st->m->put_write(up, data + 10000, 25000, &e), WS_OK);
  CHECK_EQ(st->m->put_write(up, data + 35000, 5000, &e), WS_OK);
  CHECK_EQ(requests(), 1);
  CHECK_EQ(st->m->put_commit(up, &e), WS_OK);
  CHECK_EQ(requests(), 2);                          /* one PUT */
  CHECK(strcmp(S.last_method, "PUT") == 0);
  CHECK_EQ(server_len("b/" SEG1), 40000);           /* and its MD5 matched */
  CHECK_EQ(ws_store_put_buf(st, SNAP, "snapshot", 8, &e), WS_OK);
  CHECK_EQ(ws_store_put_buf(st, SEG2, "", 0, &e), WS_OK);
  CHECK_EQ(server_len("b/" SEG2), 0);

  /* an aborted put sends nothing */
  int before = requests();
  CHECK_EQ(st->m->put_begin(&up, st, "seg/aborted.seg", &e), WS_OK);
  CHECK_EQ(st->m->put_write(up, "xyz", 3, &e), WS_OK);
  st->m->put_abort(up);
  CHECK_EQ(requests(), before);

  /* whole, ranged, and past-the-end gets */
  void *got = NULL;
  size_t gl = 0;
  CHECK_EQ(ws_store_get_buf(&got, &gl, st, SEG1, 0, 0, 1 << 20, &e), WS_OK);
  CHECK(gl == 40000 && memcmp(got, data, 40000) == 0);
  free(got);
  CHECK_EQ(ws_store_get_buf(&got, &gl, st, SEG1, 100, 1000, 1 << 20, &e), WS_OK);
  CHECK(gl == 1000 && memcmp(got, data + 100, 1000) == 0);
  CHECK(strcmp(S.last_range, "bytes=100-1099") == 0);
  free(got);
  CHECK_EQ(ws_store_get_buf(&got, &gl, st, SEG1, 40000, 0, 1 << 20, &e), WS_OK);
  CHECK_EQ(gl, 0);
  free(got);
  free(data);

  /* listings: whole store, by directory prefix, by a deeper prefix */
  CHECK_EQ(st->m->list(&l, st, "", &e), WS_OK);
  CHECK_EQ(l.n, 3);
  const ws_store_obj *o = find_obj(&l, SEG1);
  CHECK(o && o->size == 40000);
  CHECK_EQ(o->mtime_ms, 1795860000000LL);            /* Sat, 28 Nov 2026 10:00:00 GMT */
  CHECK(find_obj(&l, SNAP) && find_obj(&l, SNAP)->size == 8);
  CHECK(find_obj(&l, SEG2));
  ws_store_list_free(&l);
  CHECK_EQ(st->m->list(&l, st, "seg/", &e), WS_OK);
  CHECK_EQ(l.n, 2);
  ws_store_list_free(&l);
  before = requests();
  CHECK_EQ(st->m->list(&l, st, "snap/0000", &e), WS_OK);
  CHECK_EQ(l.n, 1);
  CHECK_EQ(requests() - before, 2);                 /* BASE/ and BASE/snap/, not seg/ */
  ws_store_list_free(&l);
  CHECK_EQ(st->m->list(&l, st, "nope", &e), WS_OK);
  CHECK_EQ(l.n, 0);
  ws_store_list_free(&l);

  /* hostile names from the server are skipped with a warning */
  S.inject_bad = 1;
  int warns0 = store_warns;
  CHECK_EQ(st->m->list(&l, st, "", &e), WS_OK);
  CHECK_EQ(l.n, 3);
  CHECK_EQ(store_warns - warns0, 2);
  ws_store_list_free(&l);
  S.inject_bad = 0;

  /* delete, then the object is gone; deleting again is fine */
  CHECK_EQ(st->m->del(st, SEG1, &e), WS_OK);
  CHECK_EQ(server_len("b/" SEG1), (size_t)-1);
  CHECK_EQ(ws_store_get_buf(&got, &gl, st, SEG1, 0, 0, 1 << 20, &e), WS_ENOTFOUND);
  char want[256];
  snprintf(want, sizeof(want), "object %s not found in store http://127.0.0.1:%d/b/", SEG1, S.port);
  if (strcmp(e.msg, want)) printf("  got: %s\n", e.msg);
  CHECK(strcmp(e.msg, want) == 0);
  CHECK_EQ(st->m->del(st, SEG1, &e), WS_OK);
  ws_store_close(st);
}

static void test_http_store_errors_name_the_url(void) {
  reset_script();
  drop_server_objects();
  ws_err e = WS_ERR_INIT;
  ws_store *st = open_store(NULL, &e);
  CHECK(st);
  S.put_403 = 1;
  CHECK_EQ(ws_store_put_buf(st, SEG1, "x", 1, &e), WS_ESTORE);
  char want[256];
  snprintf(want, sizeof(want), "PUT http://127.0.0.1:%d/b/" SEG1 ": HTTP 403 Forbidden", S.port);
  if (strcmp(e.msg, want)) printf("  got: %s\n", e.msg);
  CHECK(strcmp(e.msg, want) == 0);
  CHECK_EQ(requests(), 1);                          /* 4xx: no retry */
  /* names are checked before any request */
  reset_script();
  CHECK_EQ(ws_store_put_buf(st, "../x", "x", 1, &e), WS_EINVAL);
  void *got = NULL;
  size_t gl = 0;
  CHECK_EQ(ws_store_get_buf(&got, &gl, st, "seg/a b", 0, 0, 100, &e), WS_EINVAL);
  CHECK_EQ(st->m->del(st, "/etc/passwd", &e), WS_EINVAL);
  CHECK_EQ(requests(), 0);
  /* 5xx on a listing is retried, then succeeds */
  reset_script();
  S.fail_n = 1;
  S.fail_status = 502;
  ws_store_list l = {0};
  CHECK_EQ(st->m->list(&l, st, "", &e), WS_OK);
  CHECK_EQ(requests(), 2);
  ws_store_list_free(&l);
  ws_store_close(st);
}

static void test_http_store_rejects_bad_urls(void) {
  static const ws_store_opts defaults = WS_STORE_OPTS_INIT;
  const char *bad[] = {"http://user:secretpw@127.0.0.1/b", "http:///b", "http://",
                       "http://127.0.0.1/b?x=1", "http://127.0.0.1/b c", "ftp://127.0.0.1/b"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ws_store *st = NULL;
    ws_err e = WS_ERR_INIT;
    const char *rest = strstr(bad[i], "://") + 3;
    CHECK_EQ(ws_store_http_open(&st, bad[i], rest, &defaults, &e), WS_EINVAL);
    CHECK(strstr(e.msg, "secretpw") == NULL);       /* never echo credentials */
  }
  /* insecure is accepted and warned about */
  ws_store_opts o = WS_STORE_OPTS_INIT;
  o.insecure = 1;
  o.ca_bundle = "/nonexistent/ca.pem";
  int warns0 = store_warns;
  ws_err e = WS_ERR_INIT;
  ws_store *st = NULL;
  const char *tls = "https://127.0.0.1:1/b";
  int orc = ws_store_http_open(&st, tls, tls + 8, &o, &e);
  if (orc) printf("  open %s: %s\n", tls, e.msg);
  CHECK_EQ(orc, WS_OK);
  CHECK_EQ(store_warns - warns0, 1);                /* "TLS verification disabled" */
  /* nginx WebDAV ignores If-None-Match / If-Match on PUT (docs/SECURITY.md):
  ** the http store must not claim conditional writes */
  CHECK(!ws_store_can_put_if(st));
  ws_store_close(st);
}

int main(void) {
  if (server_start()) {
    printf("FAIL server_start: cannot listen on 127.0.0.1\n");
    return 1;
  }
  ws_set_log(log_hook, NULL, WS_LOG_DEBUG);
  RUN(test_escape_vectors);
  RUN(test_retries_503_then_success);
  RUN(test_429_is_retried);
  RUN(test_no_retry_on_403_or_404);
  RUN(test_retries_exhausted_names_attempts);
  RUN(test_connect_refused_is_retried);
  RUN(test_resume_delivers_each_byte_once);
  RUN(test_resume_when_server_ignores_range);
  RUN(test_resume_within_requested_range);
  RUN(test_resume_within_range_server_ignores_range);
  RUN(test_stop_aborts_retries);
  RUN(test_collected_body_is_capped);
  RUN(test_sink_error_returned_unchanged);
  RUN(test_stalled_server_times_out);
  RUN(test_put_bodies_incl_empty);
  RUN(test_http_store_roundtrip);
  RUN(test_http_store_errors_name_the_url);
  RUN(test_http_store_rejects_bad_urls);
  T_EXIT();
}
