/*
** Unit tests of the live statistics (src/stats.c): lag bookkeeping, the
** "wait --now" rule that only a WAL read begun after the request answers it,
** snapshot requests, the Prometheus rendering (src/metrics.c) and the
** control socket path (src/control.c).
*/
#include "t.h"
#include "walship/stats.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

static ws_stats *mk(const char *db) {
  ws_stats *st = NULL;
  ws_err err = WS_ERR_INIT;
  if (ws_stats_new(&st, db, "store", &err)) return NULL;
  return st;
}

static void test_lag_zero_when_caught_up(void) {
  ws_stats *st = mk("a.db");
  ws_stats_view v;
  CHECK(st);
  ws_stats_durable(st, 10);
  ws_stats_get(&v, st);
  CHECK_EQ(v.durable_txid, 10);
  CHECK_EQ(v.seen_txid, 10);
  CHECK_EQ(v.lag_txns, 0);
  CHECK_EQ(v.lag_ms, 0);
  ws_stats_free(st);
}

static void test_lag_counts_from_first_wal_change(void) {
  ws_stats *st = mk("a.db");
  ws_stats_view v;
  CHECK(st);
  ws_stats_durable(st, 10);
  ws_stats_tick(st, 1);          /* noticed before any scan */
  usleep(60 * 1000);
  ws_stats_seen(st, 14, 1, 0);
  ws_stats_get(&v, st);
  CHECK_EQ(v.lag_txns, 4);
  CHECK(v.lag_ms >= 60);         /* from the change, not from the scan */
  ws_stats_durable(st, 12);      /* 13, 14 still out: same oldest mark */
  ws_stats_get(&v, st);
  CHECK_EQ(v.lag_txns, 2);
  CHECK(v.lag_ms >= 60);
  ws_stats_durable(st, 14);
  ws_stats_get(&v, st);
  CHECK_EQ(v.lag_txns, 0);
  CHECK_EQ(v.lag_ms, 0);
  ws_stats_free(st);
}

static void test_placeholder_without_commit_is_dropped(void) {
  ws_stats *st = mk("a.db");
  ws_stats_view v;
  CHECK(st);
  ws_stats_durable(st, 5);
  ws_stats_tick(st, 1);          /* a transaction being written, no commit */
  usleep(20 * 1000);
  ws_stats_seen(st, 5, 1, 0);    /* the scan finds nothing new */
  ws_stats_get(&v, st);
  CHECK_EQ(v.lag_ms, 0);
  ws_stats_free(st);
}

static void test_lag_marks_overflow_keeps_oldest(void) {
  ws_stats *st = mk("a.db");
  ws_stats_view v;
  CHECK(st);
  ws_stats_seen(st, 1, 1, 0);
  usleep(30 * 1000);
  for (uint64_t t = 2; t < 500; t++) ws_stats_seen(st, t, 0, 0);
  ws_stats_get(&v, st);
  CHECK(v.lag_ms >= 30);         /* the list is full; its head is still txid 1 */
  CHECK_EQ(v.lag_txns, 499);
  ws_stats_durable(st, 100);
  ws_stats_get(&v, st);
  CHECK_EQ(v.lag_txns, 399);
  ws_stats_durable(st, 499);
  ws_stats_get(&v, st);
  CHECK_EQ(v.lag_ms, 0);
  ws_stats_free(st);
}

typedef struct waiter {
  ws_stats *st;
  uint64_t txid;
  int now, r;
  uint64_t target;
  char name[96];
  atomic_int done;
} waiter;

static void *wait_main(void *ud) {
  waiter *w = ud;
  w->r = ws_stats_wait(w->st, w->txid, w->now, 5000, NULL, NULL, &w->target);
  w->done = 1;
  return NULL;
}

static void *snap_main(void *ud) {
  waiter *w = ud;
  w->r = ws_stats_snapshot_now(w->st, 5000, NULL, NULL, &w->target, w->name, sizeof(w->name));
  w->done = 1;
  return NULL;
}

static int wait_flag(atomic_int *f) {
  for (int i = 0; i < 500 && !atomic_load(f); i++) usleep(2000);
  return atomic_load(f);
}

static void test_wait_now_needs_a_scan_begun_after_the_request(void) {
  ws_stats *st = mk("a.db");
  CHECK(st);
  ws_stats_durable(st, 10);
  uint64_t g_old = ws_stats_scan_begin(st);   /* a scan already running */
  waiter w = {st, 0, 1, -1, 0, "", 0};
  pthread_t t;
  CHECK(pthread_create(&t, NULL, wait_main, &w) == 0);
  int asked = 0;
  for (int i = 0; i < 500 && !asked; i++) asked = ws_stats_tick(st, 0), usleep(2000);
  CHECK(asked);                                /* the sidecar is told to sync */
  ws_stats_seen(st, 11, 1, g_old);             /* began before: does not answer */
  ws_stats_durable(st, 11);
  usleep(20 * 1000);
  CHECK(!atomic_load(&w.done));
  uint64_t g = ws_stats_scan_begin(st);
  ws_stats_seen(st, 13, 0, g);                 /* capped: not the whole WAL */
  usleep(20 * 1000);
  CHECK(!atomic_load(&w.done));
  ws_stats_seen(st, 14, 1, g);                 /* answers: target 14 */
  ws_stats_durable(st, 13);
  usleep(20 * 1000);
  CHECK(!atomic_load(&w.done));
  ws_stats_durable(st, 14);
  CHECK(wait_flag(&w.done));
  pthread_join(t, NULL);
  CHECK_EQ(w.r, WS_WAIT_DURABLE);
  CHECK_EQ(w.target, 14);
  CHECK(!ws_stats_tick(st, 0));                /* nothing asked any more */
  ws_stats_free(st);
}

static void test_wait_txid_timeout_and_stop(void) {
  ws_stats *st = mk("a.db");
  uint64_t target;
  CHECK(st);
  ws_stats_durable(st, 3);
  CHECK_EQ(ws_stats_wait(st, 3, 0, 0, NULL, NULL, &target), WS_WAIT_DURABLE);
  CHECK_EQ(ws_stats_wait(st, 4, 0, 30, NULL, NULL, &target), WS_WAIT_TIMEOUT);
  waiter w = {st, 100, 0, -1, 0, "", 0};
  pthread_t t;
  CHECK(pthread_create(&t, NULL, wait_main, &w) == 0);
  usleep(20 * 1000);
  ws_stats_stopped(st);
  CHECK(wait_flag(&w.done));
  pthread_join(t, NULL);
  CHECK_EQ(w.r, WS_WAIT_STOPPED);
  ws_stats_free(st);
}

static void test_snapshot_request_answered_by_a_later_snapshot(void) {
  ws_stats *st = mk("a.db");
  CHECK(st);
  CHECK(!ws_stats_snapshot_wanted(st));
  ws_stats_snapshot(st, 5, 1000, "snap/old");  /* before the request */
  waiter w = {st, 0, 0, -1, 0, "", 0};
  pthread_t t;
  CHECK(pthread_create(&t, NULL, snap_main, &w) == 0);
  int want = 0;
  for (int i = 0; i < 500 && !want; i++) want = ws_stats_tick(st, 0), usleep(2000);
  CHECK(want);
  usleep(20 * 1000);
  CHECK(!atomic_load(&w.done));
  CHECK(ws_stats_snapshot_wanted(st));         /* the sidecar starts one */
  ws_stats_snapshot(st, 9, 2000, "snap/0000000000000009.snap");
  CHECK(wait_flag(&w.done));
  pthread_join(t, NULL);
  CHECK_EQ(w.r, WS_WAIT_DURABLE);
  CHECK_EQ(w.target, 9);
  CHECK(!strcmp(w.name, "snap/0000000000000009.snap"));
  CHECK(!ws_stats_snapshot_wanted(st));
  ws_stats_free(st);
}

static void test_render_prometheus_text(void) {
  ws_stats *st = mk("we\"ird\\db");
  ws_err err = WS_ERR_INIT, e2 = WS_ERR_INIT;
  char *txt = NULL;
  CHECK(st);
  ws_stats_durable(st, 12);
  ws_stats_uploaded(st, 100, 3);     /* 0.003 s */
  ws_stats_uploaded(st, 50, 700);    /* 0.7 s */
  e2.code = WS_ESTORE;
  snprintf(e2.msg, sizeof(e2.msg), "PUT x: 503");
  ws_stats_error(st, &e2);
  ws_stats_error(st, &e2);
  ws_stats *const v[] = {st};
  CHECK(ws_metrics_render(&txt, v, 1, &err) == WS_OK);
  const char *L = "{db=\"we\\\"ird\\\\db\",dest=\"store\"";
  char want[256];
  snprintf(want, sizeof(want), "walship_durable_txid%s} 12\n", L);
  CHECK(strstr(txt, want));
  snprintf(want, sizeof(want), "walship_uploaded_bytes_total%s} 150\n", L);
  CHECK(strstr(txt, want));
  snprintf(want, sizeof(want), "walship_errors_total%s,kind=\"store\"} 2\n", L);
  CHECK(strstr(txt, want));
  snprintf(want, sizeof(want), "walship_sync_duration_seconds_bucket%s,le=\"0.005\"} 1\n", L);
  CHECK(strstr(txt, want));
  snprintf(want, sizeof(want), "walship_sync_duration_seconds_bucket%s,le=\"0.5\"} 1\n", L);
  CHECK(strstr(txt, want));
  snprintf(want, sizeof(want), "walship_sync_duration_seconds_bucket%s,le=\"1\"} 2\n", L);
  CHECK(strstr(txt, want));
  snprintf(want, sizeof(want), "walship_sync_duration_seconds_bucket%s,le=\"+Inf\"} 2\n", L);
  CHECK(strstr(txt, want));
  snprintf(want, sizeof(want), "walship_sync_duration_seconds_count%s} 2\n", L);
  CHECK(strstr(txt, want));
  CHECK(strstr(txt, "# TYPE walship_lag_seconds gauge\n"));
  CHECK(!strstr(txt, "walship_snapshot_age_seconds{"));  /* no snapshot: no sample */
  free(txt);
  ws_stats_free(st);
}

static void test_metrics_loopback_only_unless_allowed(void) {
  ws_metrics *m = NULL;
  ws_err err = WS_ERR_INIT;
  CHECK_EQ(ws_metrics_start(&m, "0.0.0.0:0", 0, &err), WS_EINVAL);
  CHECK(strstr(err.msg, "loopback"));
  CHECK_EQ(ws_metrics_start(&m, "127.0.0.1", 0, &err), WS_EINVAL);
  CHECK_EQ(ws_metrics_start(&m, "127.0.0.1:0", 0, &err), WS_OK);
  CHECK(ws_metrics_port(m) > 0);
  ws_metrics_stop(m);
}

static void test_control_path_fits_sun_path(void) {
  char dir[] = "/tmp/ws-stats-XXXXXX", path[PATH_MAX + 64], db[PATH_MAX], sock[PATH_MAX + 32];
  ws_err err = WS_ERR_INIT;
  CHECK(mkdtemp(dir));
  snprintf(db, sizeof(db), "%s/app.db", dir);
  FILE *f = fopen(db, "w");
  CHECK(f);
  fclose(f);
  CHECK(ws_control_path(sock, sizeof(sock), db, &err) == WS_OK);
  snprintf(path, sizeof(path), "%s-walship.sock", db);
  CHECK(!strcmp(sock, path));
  /* a directory name long enough to overflow sockaddr_un.sun_path */
  char longdir[512];
  snprintf(longdir, sizeof(longdir), "%s/%0120d", dir, 0);
  CHECK(mkdir(longdir, 0700) == 0);
  snprintf(db, sizeof(db), "%s/app.db", longdir);
  CHECK((f = fopen(db, "w")));
  fclose(f);
  char s2[PATH_MAX + 32];
  CHECK(ws_control_path(sock, sizeof(sock), db, &err) == WS_OK);
  CHECK(!strncmp(sock, "/tmp/walship-", 13));
  CHECK(ws_control_path(s2, sizeof(s2), db, &err) == WS_OK);
  CHECK(!strcmp(sock, s2));                  /* deterministic */
  unlink(db);
  rmdir(longdir);
  snprintf(db, sizeof(db), "%s/app.db", dir);
  unlink(db);
  rmdir(dir);
}

int main(void) {
  RUN(test_lag_zero_when_caught_up);
  RUN(test_lag_counts_from_first_wal_change);
  RUN(test_placeholder_without_commit_is_dropped);
  RUN(test_lag_marks_overflow_keeps_oldest);
  RUN(test_wait_now_needs_a_scan_begun_after_the_request);
  RUN(test_wait_txid_timeout_and_stop);
  RUN(test_snapshot_request_answered_by_a_later_snapshot);
  RUN(test_render_prometheus_text);
  RUN(test_metrics_loopback_only_unless_allowed);
  RUN(test_control_path_fits_sun_path);
  T_EXIT();
}
