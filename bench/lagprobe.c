/*
** lagprobe: replication lag of walship, commit -> durable in the store.
**
** It creates a fresh WAL-mode database (one table, one commit), starts the
** sidecar given after "--" with its stderr on a pipe, waits for the first
** snapshot, then commits one small INSERT per transaction at a fixed rate
** (synchronous=NORMAL) and records the wall time of every commit.  Two
** threads watch the store meanwhile:
**   - the sidecar's log (it must run with --log-level debug, which logs every
**     segment): "... durable txid=N ..." is printed after the segment's
**     rename and the fsync of its directory, so its arrival time is when
**     TXID N became durable (plus a pipe hop of microseconds);
**   - inotify on STORE/seg: the time each seg/<first>-<last>.seg was renamed
**     into place (visible, not yet durable: the directory fsync follows).
** Commit k (k = 1..N) is TXID 1 + k: the schema commit is the first snapshot,
** TXID 1, and each INSERT is one transaction.  That mapping is verified:
** the sidecar's final "stopped: durable txid=N" must equal 1 + commits and
** the first snapshot must be TXID 1, else lagprobe exits 3 and prints no lag.
** Lag of commit k = first time a durable (or visible) TXID >= 1 + k was seen
** minus the time COMMIT returned.  All times are CLOCK_MONOTONIC, one process.
**
** usage: lagprobe --db PATH --store DIR --rate TXS --duration S
**                 [--raw FILE] [--log FILE] -- WALSHIP replicate ... DB STORE
** Output: "lagprobe: key=value ..." lines on stdout (see report()).
*/
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#define MAX_EVENTS (1 << 22) /* durable/visible events kept; more is an error */

typedef struct event {
  uint64_t txid; /* last TXID made durable/visible */
  int64_t t;     /* ns, CLOCK_MONOTONIC */
} event;

typedef struct evlog { /* append-only, written by one thread */
  event *v;
  size_t n;
  pthread_mutex_t mu;
} evlog;

static evlog g_durable = {NULL, 0, PTHREAD_MUTEX_INITIALIZER};
static evlog g_visible = {NULL, 0, PTHREAD_MUTEX_INITIALIZER};
static uint64_t g_first_snap;  /* TXID of the first "snapshot durable" line */
static uint64_t g_stopped = 0; /* TXID of "stopped: durable txid=N" */
static FILE *g_logf;

static void die(const char *msg) {
  fprintf(stderr, "lagprobe: %s\n", msg);
  exit(1);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t t) {
  struct timespec ts = {(time_t)(t / 1000000000), (long)(t % 1000000000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

static void ev_add(evlog *l, uint64_t txid, int64_t t) {
  pthread_mutex_lock(&l->mu);
  if (l->n == MAX_EVENTS) die("too many events");
  l->v[l->n++] = (event){txid, t};
  pthread_mutex_unlock(&l->mu);
}

static uint64_t ev_max(evlog *l) {
  uint64_t m = 0;
  pthread_mutex_lock(&l->mu);
  for (size_t i = 0; i < l->n; i++) if (l->v[i].txid > m) m = l->v[i].txid;
  pthread_mutex_unlock(&l->mu);
  return m;
}

/* ---------------------------------------------------------- watchers */
static void *log_reader(void *arg) {
  FILE *f = arg;
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    int64_t t = now_ns();
    if (g_logf) fputs(line, g_logf);
    char *p = strstr(line, " durable txid=");
    if (!p) continue;
    uint64_t txid = strtoull(p + strlen(" durable txid="), NULL, 10);
    if (strstr(line, "snapshot durable") && g_first_snap == 0) g_first_snap = txid;
    if (strstr(line, "stopped: durable")) g_stopped = txid;
    ev_add(&g_durable, txid, t);
  }
  return NULL;
}

static void *seg_watcher(void *arg) {
  int fd = *(int *)arg;
  char buf[64 * 1024] __attribute__((aligned(8)));
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    int64_t t = now_ns();
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return NULL; /* fd closed */
    }
    for (char *p = buf; p < buf + n;) {
      struct inotify_event *e = (struct inotify_event *)p;
      unsigned long long first, last;
      char dot[8];
      if (e->len && sscanf(e->name, "%16llx-%16llx%4s", &first, &last, dot) == 3 &&
          strcmp(dot, ".seg") == 0)
        ev_add(&g_visible, last, t);
      p += sizeof *e + e->len;
    }
  }
}

/* ---------------------------------------------------------- statistics */
static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct_ms(const int64_t *s, size_t n, double p) {
  size_t i = (size_t)(p / 100.0 * (double)n + 0.999999);
  if (i < 1) i = 1;
  if (i > n) i = n;
  return (double)s[i - 1] / 1e6;
}

static void print_dist(const char *name, int64_t *v, size_t n) {
  if (n == 0) { printf("lagprobe: %s n=0\n", name); return; }
  qsort(v, n, sizeof *v, cmp_i64);
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)v[i];
  printf("lagprobe: %s n=%zu min=%.2f p50=%.2f p90=%.2f p99=%.2f max=%.2f mean=%.2f\n",
         name, n, (double)v[0] / 1e6, pct_ms(v, n, 50), pct_ms(v, n, 90), pct_ms(v, n, 99),
         (double)v[n - 1] / 1e6, sum / (double)n / 1e6);
}

/* For each commit k, the first event time with txid >= base + k, minus the
** commit time.  Events are in arrival order and their TXIDs never decrease
** (one shipping thread), so one forward walk suffices. */
static size_t lags(evlog *l, const int64_t *commit, size_t n, uint64_t base, int64_t *out,
                   int64_t *at) {
  size_t j = 0, m = 0;
  for (size_t k = 1; k <= n; k++) {
    while (j < l->n && l->v[j].txid < base + k) j++;
    if (j == l->n) break;
    out[m++] = l->v[j].t - commit[k - 1];
    if (at) at[k - 1] = l->v[j].t;
  }
  return m;
}

/* ---------------------------------------------------------- the writer */
static sqlite3 *open_db(const char *path) {
  sqlite3 *db = NULL;
  char *msg = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL))
    die("cannot open the database");
  sqlite3_busy_timeout(db, 10000);
  if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                   "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v INTEGER, note BLOB);",
                   NULL, NULL, &msg) != SQLITE_OK) {
    fprintf(stderr, "lagprobe: setup: %s\n", msg ? msg : "?");
    exit(1);
  }
  return db;
}

int main(int argc, char **argv) {
  static const struct option lo[] = {
    {"db", 1, 0, 'd'}, {"store", 1, 0, 's'}, {"rate", 1, 0, 'r'},
    {"duration", 1, 0, 'D'}, {"raw", 1, 0, 'R'}, {"log", 1, 0, 'l'}, {0, 0, 0, 0}};
  const char *dbpath = NULL, *store = NULL, *rawpath = NULL, *logpath = NULL;
  double rate = 100, duration = 20;
  int c;
  while ((c = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
    switch (c) {
    case 'd': dbpath = optarg; break;
    case 's': store = optarg; break;
    case 'r': rate = atof(optarg); break;
    case 'D': duration = atof(optarg); break;
    case 'R': rawpath = optarg; break;
    case 'l': logpath = optarg; break;
    default: return 2;
    }
  }
  if (!dbpath || !store || rate <= 0 || duration <= 0 || optind >= argc) {
    fputs("usage: lagprobe --db PATH --store DIR --rate TXS --duration S [--raw FILE]"
          " [--log FILE] -- WALSHIP replicate --log-level debug ... DB STORE\n", stderr);
    return 2;
  }
  if (access(dbpath, F_OK) == 0) die("--db must not exist (the TXID mapping needs a fresh db)");
  if (access(store, F_OK) == 0) die("--store must not exist (the TXID mapping needs an empty store)");
  if (logpath && !(g_logf = fopen(logpath, "w"))) die("cannot open --log");
  size_t maxn = (size_t)(rate * duration * 1.1) + 16;
  int64_t *commit = malloc(maxn * sizeof *commit), *lat = malloc(maxn * sizeof *lat);
  g_durable.v = malloc(MAX_EVENTS * sizeof(event));
  g_visible.v = malloc(MAX_EVENTS * sizeof(event));
  if (!commit || !lat || !g_durable.v || !g_visible.v) die("out of memory");

  sqlite3 *db = open_db(dbpath);

  /* STORE/seg exists before the sidecar starts so inotify sees every segment. */
  char segdir[4096];
  snprintf(segdir, sizeof segdir, "%s/seg", store);
  if (mkdir(store, 0755) || mkdir(segdir, 0755)) die("cannot create the store directories");
  int ifd = inotify_init1(IN_CLOEXEC);
  if (ifd < 0 || inotify_add_watch(ifd, segdir, IN_MOVED_TO | IN_CREATE) < 0) die("inotify");
  pthread_t tw, tl;
  pthread_create(&tw, NULL, seg_watcher, &ifd);

  int pfd[2];
  if (pipe(pfd)) die("pipe");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    dup2(pfd[1], 2);
    close(pfd[0]);
    close(pfd[1]);
    execvp(argv[optind], argv + optind);
    _exit(127);
  }
  close(pfd[1]);
  FILE *lf = fdopen(pfd[0], "r");
  pthread_create(&tl, NULL, log_reader, lf);

  /* Wait for the first snapshot (up to 30 s). */
  for (int i = 0; ev_max(&g_durable) == 0; i++) {
    if (i > 30000) die("no snapshot after 30 s (is --log-level debug set?)");
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) die("the sidecar exited early");
    usleep(1000);
  }
  usleep(200000); /* let it settle into its steady state */

  /* The fixed-rate writer: one INSERT per transaction (autocommit). */
  sqlite3_stmt *ins;
  if (sqlite3_prepare_v2(db, "INSERT INTO t(v, note) VALUES(?1, randomblob(32))", -1, &ins, NULL))
    die("prepare");
  int64_t t0 = now_ns(), period = (int64_t)(1e9 / rate), end = t0 + (int64_t)(duration * 1e9);
  size_t n = 0;
  for (; n < maxn; n++) {
    int64_t due = t0 + (int64_t)n * period;
    if (due >= end) break;
    sleep_until(due); /* behind schedule: no sleep, the next ones catch up */
    int64_t s = now_ns();
    sqlite3_bind_int64(ins, 1, (sqlite3_int64)n);
    int rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    if (rc != SQLITE_DONE) {
      fprintf(stderr, "lagprobe: insert: %s\n", sqlite3_errmsg(db));
      kill(pid, SIGTERM);
      return 1;
    }
    commit[n] = now_ns();
    lat[n] = commit[n] - s;
  }
  double elapsed = (double)(now_ns() - t0) / 1e9;
  sqlite3_finalize(ins);
  sqlite3_close(db);

  /* Wait until the last commit is durable (30 s at most), then stop it. */
  for (int i = 0; ev_max(&g_durable) < 1 + n && i < 30000; i++) usleep(1000);
  int64_t tterm = now_ns();
  kill(pid, SIGTERM);
  int st = 0;
  struct rusage ru;
  if (wait4(pid, &st, 0, &ru) != pid) die("wait4");
  int64_t texit = now_ns();
  pthread_join(tl, NULL);
  close(ifd); /* ends the watcher's read (or it is simply left blocked) */
  if (g_logf) fclose(g_logf);

  double user_ms = (double)ru.ru_utime.tv_sec * 1e3 + (double)ru.ru_utime.tv_usec / 1e3;
  double sys_ms = (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3;
  double cpu_ms = user_ms + sys_ms;
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  printf("lagprobe: rate=%.0f duration=%.1f commits=%zu achieved_tps=%.1f first_snapshot_txid=%" PRIu64
         " final_txid=%" PRIu64 " expected_final_txid=%zu\n",
         rate, duration, n, (double)n / elapsed, g_first_snap, g_stopped, n + 1);
  printf("lagprobe: sidecar exit=%d term_to_exit_ms=%.1f cpu_user_ms=%.1f cpu_sys_ms=%.1f"
         " cpu_ms_per_1000tx=%.2f maxrss_kib=%ld\n", code, (double)(texit - tterm) / 1e6,
         user_ms, sys_ms,
         n ? cpu_ms * 1000.0 / (double)n : 0.0, ru.ru_maxrss);
  if (g_first_snap != 1 || g_stopped != 1 + n) {
    printf("lagprobe: ABORT the TXID mapping commit k -> TXID 1+k does not hold; no lag reported\n");
    return 3;
  }

  int64_t *lag = malloc(n * sizeof *lag), *at = malloc(n * sizeof *at);
  if (!lag || !at) die("out of memory");
  for (size_t k = 0; k < n; k++) at[k] = -1;
  size_t m = lags(&g_durable, commit, n, 1, lag, at);
  FILE *raw = rawpath ? fopen(rawpath, "w") : NULL;
  if (raw) {
    fprintf(raw, "# k commit_s durable_lag_ms writer_commit_ms\n");
    for (size_t k = 0; k < n; k++)
      fprintf(raw, "%zu %.6f %.3f %.3f\n", k + 1, (double)(commit[k] - t0) / 1e9,
              at[k] < 0 ? -1.0 : (double)(at[k] - commit[k]) / 1e6, (double)lat[k] / 1e6);
    fclose(raw);
  }
  print_dist("lag_durable_ms", lag, m);
  m = lags(&g_visible, commit, n, 1, lag, NULL);
  print_dist("lag_visible_ms", lag, m);
  print_dist("writer_commit_ms", lat, n);
  return 0;
}
