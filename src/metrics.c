/*
** The Prometheus endpoint: GET /metrics in the text exposition format
** (version 0.0.4), served by libmicrohttpd from its own thread (API in
** include/walship/stats.h; what each metric means: docs/operations.md).
**
** Every scrape copies each database's counters under its stats lock
** (ws_stats_get) and renders them; nothing is cached, so a scrape is always
** as fresh as the sidecar's last update.  The endpoint is opt-in and bound
** to loopback unless the caller allows otherwise: it has no authentication.
*/
#include "walship/stats.h"
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_DBS 1024

struct ws_metrics {
  struct MHD_Daemon *d;
  pthread_mutex_t mu;      /* guards v, n */
  ws_stats **v;
  size_t n, cap;
  int port;
};

/* ------------------------------------------------------------ rendering */

/* A label value with \ " and newline escaped, as the format requires. */
static void put_label(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '\\' || *s == '"') fputc('\\', f), fputc(*s, f);
    else if (*s == '\n') fputs("\\n", f);
    else fputc(*s, f);
  }
}

static void labels(FILE *f, const ws_stats_view *v) {
  fputs("db=\"", f);
  put_label(f, v->db);
  fputs("\",dest=\"", f);
  put_label(f, v->dest);
  fputc('"', f);
}

/* Integers exactly (TXIDs, byte counts), fractions to a microsecond. */
static void num(FILE *f, double x) {
  if (x == (double)(int64_t)x && x < 9007199254740992.0 && x > -9007199254740992.0)
    fprintf(f, "%lld\n", (long long)x);
  else
    fprintf(f, "%.6f\n", x);
}

static void head(FILE *f, const char *name, const char *type, const char *help) {
  fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef struct fam {
  const char *name, *type, *help;
} fam;

/* One gauge or counter per database. */
static void simple(FILE *f, const fam *m, const ws_stats_view *vv, size_t n,
                   double (*get)(const ws_stats_view *, int64_t), int64_t now) {
  head(f, m->name, m->type, m->help);
  for (size_t i = 0; i < n; i++) {
    double x = get(&vv[i], now);
    if (x != x) continue; /* NaN: not known, no sample */
    fprintf(f, "%s{", m->name);
    labels(f, &vv[i]);
    fputs("} ", f);
    num(f, x);
  }
}

static void hist(FILE *f, const char *name, const char *help, const ws_stats_view *vv,
                 size_t n, int checkpoint) {
  head(f, name, "histogram", help);
  for (size_t i = 0; i < n; i++) {
    const ws_hist *h = checkpoint ? &vv[i].checkpoint : &vv[i].sync;
    uint64_t cum = 0;
    for (int b = 0; b <= WS_HIST_NB; b++) {
      cum += h->bucket[b];
      fprintf(f, "%s_bucket{", name);
      labels(f, &vv[i]);
      if (b < WS_HIST_NB) fprintf(f, ",le=\"%g\"} %llu\n", ws_hist_bounds[b], (unsigned long long)cum);
      else fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    fprintf(f, "%s_sum{", name);
    labels(f, &vv[i]);
    fputs("} ", f);
    num(f, h->sum_s);
    fprintf(f, "%s_count{", name);
    labels(f, &vv[i]);
    fprintf(f, "} %llu\n", (unsigned long long)h->count);
  }
}

#define GETTER(fn, expr) \
  static double fn(const ws_stats_view *v, int64_t now) { (void)now; return (double)(expr); }
GETTER(g_up, v->running)
GETTER(g_seen, v->seen_txid)
GETTER(g_durable, v->durable_txid)
GETTER(g_durable_ts, v->durable_ms ? (double)v->durable_ms / 1000.0 : 0.0 / 0.0)
GETTER(g_lag_tx, v->lag_txns)
GETTER(g_lag_s, (double)v->lag_ms / 1000.0)
GETTER(g_wal, v->wal_bytes)
GETTER(g_bytes, v->uploaded_bytes)
GETTER(g_objects, v->objects)
GETTER(g_barriers, v->barriers)
GETTER(g_snap_txid, v->snapshot_ms ? (double)v->snapshot_txid : 0.0 / 0.0)
static double g_snap_age(const ws_stats_view *v, int64_t now) {
  return v->snapshot_ms ? (double)(now - v->snapshot_ms) / 1000.0 : 0.0 / 0.0;
}

static const struct {
  fam f;
  double (*get)(const ws_stats_view *, int64_t);
} families[] = {
  {{"walship_up", "gauge", "1 while the sidecar for this database runs"}, g_up},
  {{"walship_seen_txid", "gauge", "Last committed TXID the sidecar found in the WAL"}, g_seen},
  {{"walship_durable_txid", "gauge", "Last TXID durable in every destination"}, g_durable},
  {{"walship_durable_timestamp_seconds", "gauge",
    "Unix time at which durable_txid became durable"}, g_durable_ts},
  {{"walship_lag_transactions", "gauge",
    "Committed transactions seen in the WAL and not yet durable"}, g_lag_tx},
  {{"walship_lag_seconds", "gauge",
    "Age of the oldest commit seen and not yet durable (0 when caught up)"}, g_lag_s},
  {{"walship_wal_bytes", "gauge", "Bytes of WAL in use (frames since the last reset)"}, g_wal},
  {{"walship_uploaded_bytes_total", "counter", "Object bytes committed to the store"}, g_bytes},
  {{"walship_objects_total", "counter", "Objects (segments and snapshots) committed"}, g_objects},
  {{"walship_barriers_total", "counter", "Write barriers taken to let the WAL restart"},
   g_barriers},
  {{"walship_snapshot_txid", "gauge", "TXID of the newest snapshot"}, g_snap_txid},
  {{"walship_snapshot_age_seconds", "gauge", "Seconds since the newest snapshot was taken"},
   g_snap_age},
};

int ws_metrics_render(char **out, ws_stats *const *st, size_t n, ws_err *err) {
  char *buf = NULL;
  size_t len = 0;
  ws_stats_view *vv = ws_calloc(n ? n : 1, sizeof(*vv), err);
  if (!vv) return WS_ENOMEM;
  FILE *f = open_memstream(&buf, &len);
  if (!f) {
    free(vv);
    return ws_fail(err, WS_ENOMEM, "metrics: open_memstream: %s", strerror(errno));
  }
  for (size_t i = 0; i < n; i++) ws_stats_get(&vv[i], st[i]);
  int64_t now = ws_now_ms();
  for (size_t k = 0; k < sizeof(families) / sizeof(families[0]); k++)
    simple(f, &families[k].f, vv, n, families[k].get, now);
  head(f, "walship_errors_total", "counter", "Failed syncs, by kind of error");
  for (size_t i = 0; i < n; i++)
    for (int k = 1; k < WS_STATS_KINDS; k++) {
      /* "store" always, so that rate() has a series before the first error */
      if (!vv[i].errors[k] && k != WS_ESTORE) continue;
      fputs("walship_errors_total{", f);
      labels(f, &vv[i]);
      fprintf(f, ",kind=\"%s\"} %llu\n", ws_stats_kind(k), (unsigned long long)vv[i].errors[k]);
    }
  hist(f, "walship_sync_duration_seconds",
       "Time to encode and commit one object to the store", vv, n, 0);
  hist(f, "walship_checkpoint_duration_seconds",
       "Time of the sidecar's checkpoints (PASSIVE, and under a write barrier)", vv, n, 1);
  free(vv);
  if (fclose(f) != 0 || !buf) {
    free(buf);
    return ws_fail(err, WS_ENOMEM, "metrics: rendering failed");
  }
  *out = buf;
  return WS_OK;
}

/* --------------------------------------------------------------- server */

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_size, void **ctx) {
  ws_metrics *m = cls;
  struct MHD_Response *r;
  unsigned code = MHD_HTTP_OK;
  char *body = NULL;
  ws_err err = WS_ERR_INIT;
  if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
    code = MHD_HTTP_METHOD_NOT_ALLOWED;
    body = strdup("only GET /metrics\n");
  } else if (strcmp(url, "/metrics")) {
    code = MHD_HTTP_NOT_FOUND;
    body = strdup("not found; try /metrics\n");
  } else {
    pthread_mutex_lock(&m->mu);
    int rc = ws_metrics_render(&body, m->v, m->n, &err);
    pthread_mutex_unlock(&m->mu);
    if (rc) {
      code = MHD_HTTP_INTERNAL_SERVER_ERROR;
      body = NULL;
    }
  }
  if (!body) return MHD_NO;
  r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type",
                          code == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8"
                                              : "text/plain; charset=utf-8");
  enum MHD_Result ok = MHD_queue_response(conn, code, r);
  MHD_destroy_response(r);
  return ok;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  char buf[512];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  size_t n = strlen(buf);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
  ws_log(WS_LOG_WARN, "metrics", "%s", buf);
}

static int is_loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) ||
           (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
  }
  return 0;
}

int ws_metrics_start(ws_metrics **out, const char *addr, int allow_remote, ws_err *err) {
  char host[256], port[16];
  const char *colon = strrchr(addr, ':');
  if (!colon || colon == addr || !colon[1] || (size_t)(colon - addr) >= sizeof(host) ||
      strlen(colon + 1) >= sizeof(port))
    return ws_fail(err, WS_EINVAL, "metrics address '%s': want HOST:PORT, e.g. 127.0.0.1:9090",
                   addr);
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = 0;
  snprintf(port, sizeof(port), "%s", colon + 1);
  if (host[0] == '[' && host[strlen(host) - 1] == ']') {
    memmove(host, host + 1, strlen(host));
    host[strlen(host) - 1] = 0;
  }
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  int g = getaddrinfo(host, port, &hints, &ai);
  if (g != 0)
    return ws_fail(err, WS_EINVAL, "metrics address '%s': %s", addr, gai_strerror(g));
  if (!allow_remote && !is_loopback(ai->ai_addr)) {
    freeaddrinfo(ai);
    return ws_fail(err, WS_EINVAL, "metrics address '%s' is not loopback; the endpoint has "
                   "no authentication (allow it explicitly to serve other hosts)", addr);
  }
  ws_metrics *m = ws_calloc(1, sizeof(*m), err);
  if (!m) {
    freeaddrinfo(ai);
    return WS_ENOMEM;
  }
  pthread_mutex_init(&m->mu, NULL);
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  m->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, m,
                          MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first: see its doc */
                          MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                          MHD_OPTION_END);
  freeaddrinfo(ai);
  if (!m->d) {
    pthread_mutex_destroy(&m->mu);
    free(m);
    return ws_fail(err, WS_EIO, "metrics: cannot listen on %s (port in use?)", addr);
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
  m->port = di ? di->port : atoi(port);
  ws_log(WS_LOG_INFO, "metrics", "listening url=http://%s%s%s:%d/metrics",
         strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", m->port);
  *out = m;
  return WS_OK;
}

int ws_metrics_add(ws_metrics *m, ws_stats *st, ws_err *err) {
  int rc = WS_OK;
  pthread_mutex_lock(&m->mu);
  if (m->n == m->cap) {
    size_t nc = m->cap ? m->cap * 2 : 4;
    ws_stats **v = nc > MAX_DBS ? NULL : ws_realloc(m->v, nc * sizeof(*v), err);
    if (!v) {
      rc = nc > MAX_DBS ? ws_fail(err, WS_ENOMEM, "metrics: more than %d databases", MAX_DBS)
                        : WS_ENOMEM;
      goto out;
    }
    m->v = v;
    m->cap = nc;
  }
  m->v[m->n++] = st;
out:
  pthread_mutex_unlock(&m->mu);
  return rc;
}

void ws_metrics_remove(ws_metrics *m, ws_stats *st) {
  pthread_mutex_lock(&m->mu);
  for (size_t i = 0; i < m->n; i++)
    if (m->v[i] == st) {
      memmove(m->v + i, m->v + i + 1, (m->n - i - 1) * sizeof(*m->v));
      m->n--;
      break;
    }
  pthread_mutex_unlock(&m->mu);
}

int ws_metrics_port(const ws_metrics *m) { return m->port; }

void ws_metrics_stop(ws_metrics *m) {
  if (!m) return;
  MHD_stop_daemon(m->d);
  pthread_mutex_destroy(&m->mu);
  free(m->v);
  free(m);
}
