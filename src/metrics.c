/*
** The Prometheus endpoint: GET /metrics in the text exposition format
** (version 0.0.4), served by libmicrohttpd from its own thread (API in
** include/walship/stats.h; what each metric means: docs/operations.md).
**
** Every scrape copies each database's counters under its stats lock
** (ws_stats_get) and renders them; nothing is cached, so a scrape is always
** as fresh as the sidecar's last update.  The endpoint is opt-in and bound
** to loopback unless the caller allows otherwise: it has no authentication.
**
** A database with several destinations (ws_stats_set_dests) has one series
** per destination, dest="NAME", for the work each destination does (bytes,
** objects, upload durations, errors); its shared position (durable TXID,
** lag, WAL, snapshot) and its failed syncs keep the joined label
** dest="NAME1 + NAME2".  One destination: only the joined form, which is
** then just its URL.
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

static void labels2(FILE *f, const char *db, const char *dest) {
  fputs("db=\"", f);
  put_label(f, db);
  fputs("\",dest=\"", f);
  put_label(f, dest);
  fputc('"', f);
}


/* The databases' counters, and the per-destination ones of each. */
typedef struct snap {
  ws_stats_view v;
  ws_stats_dest_view *d;   /* v.ndests of them (fewer if they changed meanwhile) */
  size_t nd;
} snap;

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

static void sample(FILE *f, const char *name, const char *db, const char *dest, double x) {
  fprintf(f, "%s{", name);
  labels2(f, db, dest);
  fputs("} ", f);
  num(f, x);
}

/* One gauge or counter per database; with dget, per destination where the
** database has several. */
static void simple(FILE *f, const fam *m, const snap *vv, size_t n,
                   double (*get)(const ws_stats_view *, int64_t),
                   double (*dget)(const ws_stats_dest_view *), int64_t now) {
  head(f, m->name, m->type, m->help);
  for (size_t i = 0; i < n; i++) {
    if (dget && vv[i].nd) {
      for (size_t j = 0; j < vv[i].nd; j++)
        sample(f, m->name, vv[i].v.db, vv[i].d[j].name, dget(&vv[i].d[j]));
      continue;
    }
    double x = get(&vv[i].v, now);
    if (x != x) continue; /* NaN: not known, no sample */
    sample(f, m->name, vv[i].v.db, vv[i].v.dest, x);
  }
}

static void hist1(FILE *f, const char *name, const char *db, const char *dest,
                  const ws_hist *h) {
  uint64_t cum = 0;
  for (int b = 0; b <= WS_HIST_NB; b++) {
    cum += h->bucket[b];
    fprintf(f, "%s_bucket{", name);
    labels2(f, db, dest);
    if (b < WS_HIST_NB) fprintf(f, ",le=\"%g\"} %llu\n", ws_hist_bounds[b], (unsigned long long)cum);
    else fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
  }
  fprintf(f, "%s_sum{", name);
  labels2(f, db, dest);
  fputs("} ", f);
  num(f, h->sum_s);
  fprintf(f, "%s_count{", name);
  labels2(f, db, dest);
  fprintf(f, "} %llu\n", (unsigned long long)h->count);
}

/* checkpoint: per database; else upload durations, per destination where
** the database has several. */
static void hist(FILE *f, const char *name, const char *help, const snap *vv,
                 size_t n, int checkpoint) {
  head(f, name, "histogram", help);
  for (size_t i = 0; i < n; i++) {
    if (!checkpoint && vv[i].nd) {
      for (size_t j = 0; j < vv[i].nd; j++)
        hist1(f, name, vv[i].v.db, vv[i].d[j].name, &vv[i].d[j].sync);
      continue;
    }
    hist1(f, name, vv[i].v.db, vv[i].v.dest,
          checkpoint ? &vv[i].v.checkpoint : &vv[i].v.sync);
  }
}

static void errors(FILE *f, const char *db, const char *dest, const uint64_t *e) {
  for (int k = 1; k < WS_STATS_KINDS; k++) {
    /* "store" always, so that rate() has a series before the first error */
    if (!e[k] && k != WS_ESTORE) continue;
    fputs("walship_errors_total{", f);
    labels2(f, db, dest);
    fprintf(f, ",kind=\"%s\"} %llu\n", ws_stats_kind(k), (unsigned long long)e[k]);
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
GETTER(g_barriers_busy, v->barriers_busy)
GETTER(g_yields, v->ckpt_yields)
GETTER(g_brakes, v->brakes)
GETTER(g_cycle_barriers, v->cycle_barriers)
GETTER(g_snap_txid, v->snapshot_ms ? (double)v->snapshot_txid : 0.0 / 0.0)
static double g_snap_age(const ws_stats_view *v, int64_t now) {
  return v->snapshot_ms ? (double)(now - v->snapshot_ms) / 1000.0 : 0.0 / 0.0;
}

static double d_bytes(const ws_stats_dest_view *d) { return (double)d->uploaded_bytes; }
static double d_objects(const ws_stats_dest_view *d) { return (double)d->objects; }

static const struct {
  fam f;
  double (*get)(const ws_stats_view *, int64_t);
  double (*dget)(const ws_stats_dest_view *); /* per destination, or NULL */
} families[] = {
  {{"walship_up", "gauge", "1 while the sidecar for this database runs"}, g_up, NULL},
  {{"walship_seen_txid", "gauge", "Last committed TXID the sidecar found in the WAL"}, g_seen, NULL},
  {{"walship_durable_txid", "gauge", "Last TXID durable in every destination"}, g_durable, NULL},
  {{"walship_durable_timestamp_seconds", "gauge",
    "Unix time at which durable_txid became durable"}, g_durable_ts, NULL},
  {{"walship_lag_transactions", "gauge",
    "Committed transactions seen in the WAL and not yet durable"}, g_lag_tx, NULL},
  {{"walship_lag_seconds", "gauge",
    "Age of the oldest commit seen and not yet durable (0 when caught up)"}, g_lag_s, NULL},
  {{"walship_wal_bytes", "gauge", "Bytes of WAL in use (frames since the last reset)"}, g_wal, NULL},
  {{"walship_uploaded_bytes_total", "counter", "Object bytes committed to the store"}, g_bytes,
   d_bytes},
  {{"walship_objects_total", "counter", "Objects (segments and snapshots) committed"}, g_objects,
   d_objects},
  {{"walship_barriers_total", "counter", "Write barriers taken to let the WAL restart"},
   g_barriers, NULL},
  {{"walship_barrier_busy_total", "counter",
    "Write barriers that did not reset the WAL: the app's write lock stayed busy (not taken) or its checkpoint lock did (taken, nothing backfilled)"},
   g_barriers_busy, NULL},
  {{"walship_checkpoint_yields_total", "counter",
    "Times the read slot was let go for an app checkpoint still waiting with everything shipped"},
   g_yields, NULL},
  {{"walship_write_brakes_total", "counter",
    "Write barriers whose lock was taken while an object was being written, the WAL past 3x --wal-max"},
   g_brakes, NULL},
  {{"walship_cycle_barriers_total", "counter",
    "Write barriers taken to end a WAL cycle under a writer that never paused for the sidecar's checkpoint (also in walship_barriers_total)"},
   g_cycle_barriers, NULL},
  {{"walship_snapshot_txid", "gauge", "TXID of the newest snapshot"}, g_snap_txid, NULL},
  {{"walship_snapshot_age_seconds", "gauge", "Seconds since the newest snapshot was taken"},
   g_snap_age, NULL},
};

static void snaps_free(snap *vv, size_t n) {
  for (size_t i = 0; vv && i < n; i++) free(vv[i].d);
  free(vv);
}

int ws_metrics_render(char **out, ws_stats *const *st, size_t n, ws_err *err) {
  char *buf = NULL;
  size_t len = 0;
  snap *vv = ws_calloc(n ? n : 1, sizeof(*vv), err);
  if (!vv) return WS_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    ws_stats_get(&vv[i].v, st[i]);
    if (!vv[i].v.ndests) continue;
    if (!(vv[i].d = ws_calloc(vv[i].v.ndests, sizeof(*vv[i].d), err))) {
      snaps_free(vv, n);
      return WS_ENOMEM;
    }
    while (vv[i].nd < vv[i].v.ndests && ws_stats_get_dest(&vv[i].d[vv[i].nd], st[i], vv[i].nd))
      vv[i].nd++;
  }
  FILE *f = open_memstream(&buf, &len);
  if (!f) {
    snaps_free(vv, n);
    return ws_fail(err, WS_ENOMEM, "metrics: open_memstream: %s", strerror(errno));
  }
  int64_t now = ws_now_ms();
  for (size_t k = 0; k < sizeof(families) / sizeof(families[0]); k++)
    simple(f, &families[k].f, vv, n, families[k].get, families[k].dget, now);
  head(f, "walship_errors_total", "counter",
       "Failed syncs by kind of error; with several destinations, also each "
       "destination's failed puts (dest=NAME)");
  for (size_t i = 0; i < n; i++) {
    errors(f, vv[i].v.db, vv[i].v.dest, vv[i].v.errors);
    for (size_t j = 0; j < vv[i].nd; j++) errors(f, vv[i].v.db, vv[i].d[j].name, vv[i].d[j].errors);
  }
  hist(f, "walship_sync_duration_seconds",
       "Time to encode and commit one object to the store (per destination: "
       "time spent in its put calls)", vv, n, 0);
  hist(f, "walship_checkpoint_duration_seconds",
       "Time of the sidecar's checkpoints (PASSIVE, and under a write barrier)", vv, n, 1);
  snaps_free(vv, n);
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
