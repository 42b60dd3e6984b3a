/*
** Unit tests of the live statistics (src/stats.c): lag bookkeeping, the
** "wait --now" rule that only a WAL read begun after the request answers it,
** snapshot requests, the Prometheus rendering (src/metrics.c), the
** per-destination counters fed by the fan-out store's observe hook
** (src/store_fanout.c), the control socket path and the snapshot progress
** lines of the control protocol (src/control.c).
*/
#include "t.h"
#include "walship/stats.h"
#include "walship/dest.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

static void test_render_per_destination_series(void) {
  ws_stats *st = NULL;
  ws_err err = WS_ERR_INIT, e2 = WS_ERR_INIT;
  char *txt = NULL, want[256];
  CHECK(ws_stats_new(&st, "a.db", "near + far", &err) == WS_OK);
  const char *names[] = {"near", "far"};
  CHECK(ws_stats_set_dests(st, names, 2, &err) == WS_OK);
  ws_stats_durable(st, 7);
  ws_stats_uploaded(st, 100, 3);
  ws_stats_dest_uploaded(st, 0, 100, 2);
  ws_stats_dest_uploaded(st, 1, 100, 2000);
  ws_stats_dest_uploaded(st, 9, 100, 1);       /* no such destination: ignored */
  e2.code = WS_ESTORE;
  snprintf(e2.msg, sizeof(e2.msg), "PUT far/x: 503");
  ws_stats_dest_error(st, 1, &e2);
  ws_stats_error(st, &e2);
  ws_stats_dest_view d;
  CHECK(ws_stats_get_dest(&d, st, 1));
  CHECK(strcmp(d.name, "far") == 0 && d.objects == 1 && d.errors_total == 1);
  CHECK(strcmp(d.last_error, "PUT far/x: 503") == 0);
  CHECK(!ws_stats_get_dest(&d, st, 2));
  ws_stats *const v[] = {st};
  CHECK(ws_metrics_render(&txt, v, 1, &err) == WS_OK);
  /* position: the joined label; work: one series per destination */
  CHECK(strstr(txt, "walship_durable_txid{db=\"a.db\",dest=\"near + far\"} 7\n"));
  CHECK(strstr(txt, "walship_uploaded_bytes_total{db=\"a.db\",dest=\"near\"} 100\n"));
  CHECK(strstr(txt, "walship_uploaded_bytes_total{db=\"a.db\",dest=\"far\"} 100\n"));
  CHECK(!strstr(txt, "walship_uploaded_bytes_total{db=\"a.db\",dest=\"near + far\"}"));
  CHECK(strstr(txt, "walship_objects_total{db=\"a.db\",dest=\"far\"} 1\n"));
  snprintf(want, sizeof(want), "walship_sync_duration_seconds_bucket{db=\"a.db\",dest=\"far\","
           "le=\"1\"} 0\n");
  CHECK(strstr(txt, want));
  CHECK(strstr(txt, "walship_sync_duration_seconds_count{db=\"a.db\",dest=\"near\"} 1\n"));
  CHECK(strstr(txt, "walship_errors_total{db=\"a.db\",dest=\"near + far\",kind=\"store\"} 1\n"));
  CHECK(strstr(txt, "walship_errors_total{db=\"a.db\",dest=\"far\",kind=\"store\"} 1\n"));
  CHECK(strstr(txt, "walship_errors_total{db=\"a.db\",dest=\"near\",kind=\"store\"} 0\n"));
  free(txt);
  ws_stats_free(st);
}

/* Two directory stores behind a fan-out with the stats' observe hook: each
** destination's bytes and objects are its own, the lease-like record is not
** an object, and a destination that cannot commit gets the error. */
static void test_fanout_observe_feeds_each_destination(void) {
  char root[] = "/tmp/ws-statsfan-XXXXXX", a[64], b[64], cmd[128], p[96];
  ws_stats *st = NULL;
  ws_store *fs = NULL;
  ws_err err = WS_ERR_INIT;
  CHECK(mkdtemp(root) != NULL);
  snprintf(a, sizeof(a), "%s/a", root);
  snprintf(b, sizeof(b), "%s/b", root);
  CHECK(ws_stats_new(&st, "a.db", "a + b", &err) == WS_OK);
  const char *names[] = {"a", "b"};
  CHECK(ws_stats_set_dests(st, names, 2, &err) == WS_OK);
  ws_dest d[2] = {WS_DEST_INIT, WS_DEST_INIT};
  d[0].url = a;
  d[1].url = b;
  for (int i = 0; i < 2; i++) d[i].observe = ws_stats_dest_observe, d[i].observe_ud = st;
  CHECK(ws_store_fanout_open(&fs, d, 2, &err) == WS_OK);
  CHECK(ws_store_put_buf(fs, "snap/0000000000000001.snap", "0123456789", 10, &err) == WS_OK);
  CHECK(ws_store_put_buf(fs, "lease/writer", "{}", 2, &err) == WS_OK);
  /* b cannot hold seg/ objects: its seg is a file */
  snprintf(p, sizeof(p), "%s/seg", b);
  FILE *f = fopen(p, "w");
  CHECK(f != NULL);
  if (f) fclose(f);
  CHECK(ws_store_put_buf(fs, "seg/0000000000000002-0000000000000003.seg", "abc", 3, &err) != WS_OK);
  ws_stats_dest_view va, vb;
  CHECK(ws_stats_get_dest(&va, st, 0) && ws_stats_get_dest(&vb, st, 1));
  CHECK_EQ(vb.uploaded_bytes, 10);  /* the snapshot; not the lease record */
  CHECK_EQ(vb.objects, 1);
  CHECK_EQ(vb.errors_total, 1);
  CHECK(strstr(vb.last_error, "seg") != NULL);
  CHECK_EQ(va.errors_total, 0);
  CHECK_EQ(va.objects, va.uploaded_bytes == 13 ? 2 : 1);  /* a may have committed seg */
  ws_store_close(fs);
  ws_stats_free(st);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
  CHECK(system(cmd) == 0);
}

typedef struct snapcall {
  const char *path;
  char *reply;
  atomic_int lines;
  char line[128];
  int rc;
} snapcall;

static void on_progress_line(void *ud, const char *line) {
  snapcall *c = ud;
  snprintf(c->line, sizeof(c->line), "%s", line);
  atomic_fetch_add(&c->lines, 1);
}

static void *snapcall_main(void *ud) {
  snapcall *c = ud;
  ws_err err = WS_ERR_INIT;
  c->rc = ws_control_call_ex(&c->reply, c->path, "snapshot -1 progress", 30000,
                             on_progress_line, c, &err);
  return NULL;
}

/* "snapshot TIMEOUT progress": the sidecar's progress reaches the client as
** lines before the answer; the answer is as without them. */
static void test_control_snapshot_progress_lines(void) {
  char dir[] = "/tmp/ws-ctlprog-XXXXXX", db[64], sock[80], cmd[96];
  ws_stats *st = NULL;
  ws_control *ctl = NULL;
  ws_err err = WS_ERR_INIT;
  CHECK(mkdtemp(dir) != NULL);
  snprintf(db, sizeof(db), "%s/a.db", dir);
  snprintf(sock, sizeof(sock), "%s/a.sock", dir);
  FILE *f = fopen(db, "w");
  CHECK(f != NULL);
  if (f) fclose(f);
  CHECK(ws_stats_new(&st, db, "store", &err) == WS_OK);
  CHECK(ws_control_start(&ctl, sock, db, st, &err) == WS_OK);
  snapcall c = {sock, NULL, 0, "", -1};
  pthread_t t;
  CHECK(pthread_create(&t, NULL, snapcall_main, &c) == 0);
  int i;
  for (i = 0; i < 1000 && !ws_stats_snapshot_wanted(st); i++) usleep(10000);
  CHECK(i < 1000);                    /* the request arrived */
  ws_stats_snapshot_progress(st, 4096, 8192);
  for (i = 0; i < 1000 && atomic_load(&c.lines) == 0; i++) usleep(10000);
  CHECK(strcmp(c.line, "progress done=4096 total=8192") == 0);
  ws_stats_snapshot_progress(st, 0, 0);
  ws_stats_snapshot(st, 5, 1000, "snap/0000000000000005.snap");
  pthread_join(t, NULL);
  CHECK_EQ(c.rc, WS_OK);
  CHECK(c.reply && strcmp(c.reply, "ok txid=5 name=snap/0000000000000005.snap") == 0);
  CHECK_EQ(atomic_load(&c.lines), 1);  /* the numbers moved once */
  free(c.reply);
  ws_control_stop(ctl);
  ws_stats_free(st);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
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
  RUN(test_render_per_destination_series);
  RUN(test_fanout_observe_feeds_each_destination);
  RUN(test_control_snapshot_progress_lines);
  RUN(test_metrics_loopback_only_unless_allowed);
  RUN(test_control_path_fits_sun_path);
  T_EXIT();
}
