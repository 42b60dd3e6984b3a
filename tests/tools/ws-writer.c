/*
** ws-writer: a load generator and test application for walship.
**
** It plays the part of "the application" next to the sidecar: it opens one
** or more connections to a WAL-mode database (creating it if missing) and
** commits transactions round-robin across them, optionally running its own
** checkpoints of every mode and VACUUM, so the tests can show that nothing
** the application does makes walship lose a committed transaction.
**
** Invariants the tests rely on:
**   - Deterministic given --seed (and --txns): every random choice comes from
**     one PRNG whose state is saved before each transaction and restored when
**     the transaction is retried after SQLITE_BUSY, so two runs with the same
**     options produce databases with the same content hash.
**   - Every write transaction is BEGIN IMMEDIATE, so lock conflicts with other
**     processes surface at BEGIN (retried) and never as a stale-snapshot
**     failure halfway through.
**   - On SIGINT/SIGTERM it finishes the current transaction, stops, and still
**     prints the summary line:  writer: commits=N busy=N checkpoints=N elapsed=S
**
** Workload "checkpoint" is an extra mode for tests: it writes nothing and
** runs `--checkpoint-mode` checkpoints in a loop (one per "transaction").
*/
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#define MAX_CONNS 64
#define MAX_ADDED_COLUMNS 24 /* ALTER TABLE ADD COLUMN stops after this many */

enum { WL_MIXED, WL_INSERT, WL_BLOB, WL_UPDATE, WL_VACUUM, WL_CHECKPOINT };
enum { CK_CYCLE = -1 };

typedef struct opts {
  const char *db;
  int page_size;        /* applied only when the database is created */
  int conns;
  long long txns;       /* -1 = not given */
  double duration;      /* seconds, 0 = not given */
  double rate;          /* tx/s, 0 = unthrottled */
  uint64_t seed;
  int busy_timeout;     /* ms */
  int autocheckpoint;   /* -1 = leave SQLite's default */
  long long ckpt_every; /* 0 = never */
  int ckpt_mode;        /* SQLITE_CHECKPOINT_* or CK_CYCLE */
  int workload;
  long long vacuum_every;
  const char *synchronous;
  double warmup;        /* seconds: steady_* figures count from here, 0 = off */
} opts;

typedef struct stats {
  long long commits, busy, checkpoints, ckpt_busy;
} stats;

static volatile sig_atomic_t g_stop = 0;
static uint64_t g_rng;          /* xorshift64* state */
static unsigned char *g_blob;   /* reused buffer for blob payloads */
static int g_page_size = 4096;

static void on_signal(int sig) { (void)sig; g_stop = 1; }

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "ws-writer: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

/* ------------------------------------------------------------ randomness */
static uint64_t rnd(void) {
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return g_rng * 0x2545F4914F6CDD1DULL;
}
static long long rnd_range(long long lo, long long hi) { /* inclusive */
  return lo + (long long)(rnd() % (uint64_t)(hi - lo + 1));
}
static void rnd_fill(unsigned char *p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) { uint64_t v = rnd(); memcpy(p + i, &v, 8); }
  if (i < n) { uint64_t v = rnd(); memcpy(p + i, &v, n - i); }
}
static void rnd_text(char *out, size_t n) { /* n includes the NUL */
  static const char al[] = "abcdefghijklmnopqrstuvwxyz0123456789 ";
  size_t len = (size_t)rnd_range(1, (long long)n - 1);
  for (size_t i = 0; i < len; i++) out[i] = al[rnd() % (sizeof al - 1)];
  out[len] = 0;
}

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static void sleep_s(double s) {
  if (s <= 0) return;
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !g_stop) {}
}

/* ------------------------------------------------------------ SQL helpers */
/* A statement failed: return 1 if the transaction should be retried. */
static int is_busy(int rc) {
  rc &= 0xff;
  return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

/*
** Run one statement.  Each character of types binds the next variadic
** argument: 'i' long long, 't' const char *, 'b' size_t (a blob of that many
** bytes of g_blob).  When out is non-NULL it receives column 0 of the first
** row.  Returns SQLITE_OK or SQLITE_BUSY; any other failure is fatal.
*/
static int run(sqlite3 *db, long long *out, const char *sql, const char *types, ...) {
  sqlite3_stmt *st = NULL;
  va_list ap;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) {
    if (is_busy(rc)) return SQLITE_BUSY;
    die("prepare %s: %s", sql, sqlite3_errmsg(db));
  }
  va_start(ap, types);
  for (int k = 0; types[k]; k++) {
    switch (types[k]) {
    case 'i': sqlite3_bind_int64(st, k + 1, va_arg(ap, long long)); break;
    case 't': sqlite3_bind_text(st, k + 1, va_arg(ap, const char *), -1, SQLITE_STATIC); break;
    case 'b': sqlite3_bind_blob(st, k + 1, g_blob, (int)va_arg(ap, size_t), SQLITE_STATIC); break;
    }
  }
  va_end(ap);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    if (out) { *out = sqlite3_column_int64(st, 0); out = NULL; }
  sqlite3_finalize(st);
  if (rc == SQLITE_DONE) return SQLITE_OK;
  if (is_busy(rc)) return SQLITE_BUSY;
  die("%s: %s", sql, sqlite3_errmsg(db));
}
#define EXEC(db, sql) run(db, NULL, sql, "")
#define TRY(x) do { int rc_ = (x); if (rc_ != SQLITE_OK) return rc_; } while (0)

/* ----------------------------------------------------------- operations */
static int op_insert(sqlite3 *db) {
  char note[48];
  long long k = (long long)(rnd() >> 1), v = rnd_range(0, 1000000);
  rnd_text(note, sizeof note);
  return run(db, NULL, "INSERT INTO kv(k, v, note) VALUES(?1, ?2, ?3)", "iit", k, v, note);
}

/* A random id in 1..max(id) of table (0 if empty); it may have been deleted. */
static int pick_id(sqlite3 *db, const char *table, long long *id) {
  char sql[64];
  long long mx = 0;
  snprintf(sql, sizeof sql, "SELECT coalesce(max(id), 0) FROM %s", table);
  TRY(run(db, &mx, sql, ""));
  *id = mx > 0 ? rnd_range(1, mx) : 0;
  return SQLITE_OK;
}

static int op_update(sqlite3 *db) {
  long long id, d = rnd_range(1, 100);
  char note[48];
  TRY(pick_id(db, "kv", &id));
  rnd_text(note, sizeof note);
  return run(db, NULL, "UPDATE kv SET v = v + ?1, note = ?2 WHERE id = ?3", "iti", d, note, id);
}

static int op_delete(sqlite3 *db) {
  long long id;
  TRY(pick_id(db, "kv", &id));
  return run(db, NULL, "DELETE FROM kv WHERE id = ?1", "i", id);
}

/* Blobs of 1 byte .. 3x the page size, so most span overflow pages. */
static int op_blob(sqlite3 *db, int insert_only) {
  size_t len = (size_t)rnd_range(1, 3LL * g_page_size);
  int what = insert_only ? 0 : (int)(rnd() % 4);
  long long id;
  rnd_fill(g_blob, len);
  if (what <= 1) return run(db, NULL, "INSERT INTO blobs(b) VALUES(?1)", "b", len);
  TRY(pick_id(db, "blobs", &id));
  if (what == 2) return run(db, NULL, "UPDATE blobs SET b = ?1 WHERE id = ?2", "bi", len, id);
  return run(db, NULL, "DELETE FROM blobs WHERE id = ?1", "i", id);
}

/* Copy some rows into scratch table t if it exists (so a DROP frees pages). */
static int op_scratch_fill(sqlite3 *db, long long t) {
  char sql[128];
  long long n = 0;
  TRY(run(db, &n, "SELECT count(*) FROM sqlite_schema WHERE name = 'scratch_' || ?1", "i", t));
  if (n == 0) return SQLITE_OK;
  snprintf(sql, sizeof sql, "INSERT INTO scratch_%lld(b) SELECT note FROM kv"
           " ORDER BY id DESC LIMIT 50", t);
  return EXEC(db, sql);
}

/* CREATE TABLE/INDEX, ALTER TABLE ADD COLUMN, or DROP TABLE of a scratch table.
** Every statement tolerates a concurrent writer having done the same. */
static int op_schema(sqlite3 *db) {
  char sql[128];
  long long n = 0, t = rnd_range(0, 4);
  switch (rnd() % 4) {
  case 0:
    snprintf(sql, sizeof sql, "CREATE TABLE IF NOT EXISTS scratch_%lld"
             "(a INTEGER PRIMARY KEY, b TEXT)", t);
    TRY(EXEC(db, sql));
    return op_scratch_fill(db, t);
  case 1:
    snprintf(sql, sizeof sql, "CREATE INDEX IF NOT EXISTS kv_idx_%lld ON kv(%s)",
             t % 3, (rnd() & 1) ? "v" : "k, v");
    return EXEC(db, sql);
  case 2: /* column names from the current count: unique even across processes */
    TRY(run(db, &n, "SELECT count(*) FROM pragma_table_info('kv')", ""));
    if (n - 4 >= MAX_ADDED_COLUMNS) return SQLITE_OK;
    snprintf(sql, sizeof sql, "ALTER TABLE kv ADD COLUMN c%lld INTEGER DEFAULT %lld",
             n, t);
    return EXEC(db, sql);
  default:
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS scratch_%lld", t);
    return EXEC(db, sql);
  }
}

/* The body of one transaction of the chosen workload (inside BEGIN..COMMIT). */
static int txn_body(sqlite3 *db, int workload) {
  int nops = (int)rnd_range(1, 4);
  if (workload == WL_MIXED && rnd_range(0, 99) == 0) TRY(op_schema(db));
  for (int i = 0; i < nops; i++) {
    long long p = rnd_range(0, 199);
    switch (workload) {
    case WL_INSERT: TRY(op_insert(db)); break;
    case WL_BLOB: TRY(op_blob(db, 1)); break;
    case WL_UPDATE: TRY(op_update(db)); break;
    case WL_VACUUM:
      TRY(p < 100 ? op_insert(db) : p < 150 ? op_delete(db) : op_blob(db, 0));
      break;
    default: /* mixed; 1 transaction in 100 also changes the schema (above) */
      if (p < 70) TRY(op_insert(db));
      else if (p < 110) TRY(op_update(db));
      else if (p < 135) TRY(op_delete(db));
      else if (p < 185) TRY(op_blob(db, 0));
      else TRY(op_scratch_fill(db, rnd_range(0, 4)));
    }
  }
  return SQLITE_OK;
}

/* One write transaction; on SQLITE_BUSY roll back and report it. */
static int txn_once(sqlite3 *db, int workload) {
  int rc = EXEC(db, "BEGIN IMMEDIATE");
  if (rc != SQLITE_OK) return rc;
  rc = txn_body(db, workload);
  if (rc == SQLITE_OK) rc = EXEC(db, "COMMIT");
  if (rc != SQLITE_OK) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* ------------------------------------------------------------ checkpoints */
static const char *mode_name(int m) {
  switch (m) {
  case SQLITE_CHECKPOINT_PASSIVE: return "passive";
  case SQLITE_CHECKPOINT_FULL: return "full";
  case SQLITE_CHECKPOINT_RESTART: return "restart";
  case SQLITE_CHECKPOINT_TRUNCATE: return "truncate";
  default: return "cycle";
  }
}

/* How long each checkpoint call took (ms): what a sidecar's reader makes a
** blocking checkpoint wait shows here (bench/ckpt_ab.sh). */
static double *g_ck_ms;
static size_t g_ck_n, g_ck_cap;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void checkpoint(sqlite3 *db, int mode, stats *s) {
  static int turn = 0;
  int m = mode == CK_CYCLE ? turn++ % 4 : mode; /* PASSIVE..TRUNCATE are 0..3 */
  int nlog = 0, nckpt = 0;
  double t0 = now_s();
  int rc = sqlite3_wal_checkpoint_v2(db, NULL, m, &nlog, &nckpt);
  if (g_ck_n == g_ck_cap) {
    g_ck_cap = g_ck_cap ? 2 * g_ck_cap : 1024;
    if (!(g_ck_ms = realloc(g_ck_ms, g_ck_cap * sizeof *g_ck_ms))) die("out of memory");
  }
  g_ck_ms[g_ck_n++] = (now_s() - t0) * 1000.0;
  if (rc == SQLITE_OK) s->checkpoints++;
  else if (is_busy(rc)) s->ckpt_busy++;
  else die("wal_checkpoint(%s): %s", mode_name(m), sqlite3_errmsg(db));
}

/* ------------------------------------------------------------------ setup */
static sqlite3 *open_conn(const opts *o, int create) {
  sqlite3 *db = NULL;
  char sql[96];
  int fl = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(o->db, &db, fl, NULL) != SQLITE_OK)
    die("open %s: %s", o->db, db ? sqlite3_errmsg(db) : "out of memory");
  sqlite3_busy_timeout(db, o->busy_timeout);
  if (create) {
    snprintf(sql, sizeof sql, "PRAGMA page_size = %d", o->page_size);
    EXEC(db, sql);
  }
  /* Harmless on a database that is in WAL mode already. */
  while (EXEC(db, "PRAGMA journal_mode = WAL") != SQLITE_OK) sleep_s(0.01);
  snprintf(sql, sizeof sql, "PRAGMA synchronous = %s", o->synchronous);
  EXEC(db, sql);
  if (o->autocheckpoint >= 0) sqlite3_wal_autocheckpoint(db, o->autocheckpoint);
  return db;
}

static void create_schema(sqlite3 *db, stats *s) {
  static const char *ddl =
    "BEGIN IMMEDIATE;"
    "CREATE TABLE IF NOT EXISTS kv(id INTEGER PRIMARY KEY, k INTEGER, v INTEGER, note TEXT);"
    "CREATE TABLE IF NOT EXISTS blobs(id INTEGER PRIMARY KEY, b BLOB);"
    "COMMIT;";
  char *msg = NULL;
  int rc;
  while ((rc = sqlite3_exec(db, ddl, NULL, NULL, &msg)) != SQLITE_OK) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (!is_busy(rc)) die("create schema: %s", msg ? msg : "?");
    sqlite3_free(msg);
    msg = NULL;
    s->busy++;
    sleep_s(0.01);
  }
}

/* --------------------------------------------------------------- options */
static int parse_choice(const char *v, const char *const *names, int n) {
  for (int i = 0; i < n; i++) if (strcmp(v, names[i]) == 0) return i;
  return -1;
}

static void usage(FILE *f) {
  fputs("usage: ws-writer --db PATH [--page-size N] [--conns N] [--txns N]\n"
        "  [--duration SEC] [--rate TXS] [--seed N] [--busy-timeout MS]\n"
        "  [--autocheckpoint N] [--checkpoint-every N]\n"
        "  [--checkpoint-mode passive|full|restart|truncate|cycle]\n"
        "  [--workload mixed|insert|blob|update|vacuum|checkpoint]\n"
        "  [--vacuum-every N] [--synchronous off|normal|full] [--warmup SEC]\n"
        "--txns 0 only creates the database and schema.\n"
        "--warmup: also report commits and this process's CPU (ns clock) after SEC.\n", f);
}

static void parse_opts(opts *o, int argc, char **argv) {
  static const struct option lo[] = {
    {"db", 1, 0, 'd'}, {"page-size", 1, 0, 'p'}, {"conns", 1, 0, 'c'},
    {"txns", 1, 0, 'n'}, {"duration", 1, 0, 'D'}, {"rate", 1, 0, 'r'},
    {"seed", 1, 0, 's'}, {"busy-timeout", 1, 0, 'b'},
    {"autocheckpoint", 1, 0, 'a'}, {"checkpoint-every", 1, 0, 'e'},
    {"checkpoint-mode", 1, 0, 'm'}, {"workload", 1, 0, 'w'},
    {"vacuum-every", 1, 0, 'v'}, {"synchronous", 1, 0, 'S'}, {"warmup", 1, 0, 'W'},
    {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
  static const char *const wl[] = {"mixed", "insert", "blob", "update", "vacuum", "checkpoint"};
  static const char *const ck[] = {"passive", "full", "restart", "truncate", "cycle"};
  static const char *const sy[] = {"off", "normal", "full"};
  int c;
  *o = (opts){NULL, 4096, 1, -1, 0, 0, 1, 5000, -1, 0, CK_CYCLE, WL_MIXED, 0, "normal", 0};
  while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    switch (c) {
    case 'd': o->db = optarg; break;
    case 'p': o->page_size = atoi(optarg); break;
    case 'c': o->conns = atoi(optarg); break;
    case 'n': o->txns = atoll(optarg); break;
    case 'D': o->duration = atof(optarg); break;
    case 'r': o->rate = atof(optarg); break;
    case 's': o->seed = strtoull(optarg, NULL, 0); break;
    case 'b': o->busy_timeout = atoi(optarg); break;
    case 'a': o->autocheckpoint = atoi(optarg); break;
    case 'e': o->ckpt_every = atoll(optarg); break;
    case 'm': o->ckpt_mode = parse_choice(optarg, ck, 5);
      if (o->ckpt_mode == 4) o->ckpt_mode = CK_CYCLE;
      else if (o->ckpt_mode < 0) die("bad --checkpoint-mode %s", optarg);
      break;
    case 'w': o->workload = parse_choice(optarg, wl, 6);
      if (o->workload < 0) die("bad --workload %s", optarg);
      break;
    case 'v': o->vacuum_every = atoll(optarg); break;
    case 'W': o->warmup = atof(optarg); break;
    case 'S': if (parse_choice(optarg, sy, 3) < 0) die("bad --synchronous %s", optarg);
      o->synchronous = optarg; break;
    case 'h': usage(stdout); exit(0);
    default: usage(stderr); exit(2);
    }
  }
  if (!o->db || optind != argc) { usage(stderr); exit(2); }
  if (o->conns < 1 || o->conns > MAX_CONNS) die("--conns must be 1..%d", MAX_CONNS);
  if (o->page_size < 512 || o->page_size > 65536 || (o->page_size & (o->page_size - 1)))
    die("--page-size must be a power of two in 512..65536");
  if (o->txns < 0 && o->duration <= 0) o->txns = 1000;
  if (o->workload == WL_VACUUM && o->vacuum_every == 0) o->vacuum_every = 50;
  if (o->workload == WL_CHECKPOINT && o->ckpt_mode == CK_CYCLE && !o->ckpt_every)
    o->ckpt_mode = SQLITE_CHECKPOINT_TRUNCATE;
}

/* ------------------------------------------------------------------ main */
int main(int argc, char **argv) {
  opts o;
  stats s = {0, 0, 0, 0};
  sqlite3 *conn[MAX_CONNS];
  parse_opts(&o, argc, argv);
  g_rng = o.seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
  if (g_rng == 0) g_rng = 1;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: wake nanosleep */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  int create = access(o.db, F_OK) != 0;
  for (int i = 0; i < o.conns; i++) conn[i] = open_conn(&o, create && i == 0);
  long long ps = 0;
  if (run(conn[0], &ps, "PRAGMA page_size", "") != SQLITE_OK) die("PRAGMA page_size: busy");
  g_page_size = (int)ps;
  if (!(g_blob = malloc(3u * (size_t)g_page_size + 8))) die("out of memory");
  if (o.workload != WL_CHECKPOINT) create_schema(conn[0], &s);

  double t0 = now_s(), cpu_w = -1;
  long long commits_w = 0;
  for (long long n = 0; !g_stop; n++) {
    /* Steady state (bench (b2)): the first seconds grow the WAL file and
    ** warm caches; CLOCK_PROCESS_CPUTIME_ID counts in ns, not 10 ms ticks. */
    if (o.warmup > 0 && cpu_w < 0 && now_s() - t0 >= o.warmup)
      cpu_w = cpu_s(), commits_w = s.commits;
    if (o.txns >= 0 && n >= o.txns) break;
    if (o.duration > 0 && now_s() - t0 >= o.duration) break;
    if (o.rate > 0) sleep_s(t0 + (double)n / o.rate - now_s());
    if (g_stop) break;
    sqlite3 *db = conn[n % o.conns];
    if (o.workload == WL_CHECKPOINT) {
      checkpoint(db, o.ckpt_mode, &s);
      continue;
    }
    uint64_t saved = g_rng;
    int rc;
    while ((rc = txn_once(db, o.workload)) != SQLITE_OK) {
      s.busy++;
      g_rng = saved; /* replay the same transaction */
      sleep_s(0.001 * (double)(1 + s.busy % 8));
    }
    s.commits++;
    if (o.vacuum_every > 0 && s.commits % o.vacuum_every == 0) {
      while (EXEC(db, "VACUUM") != SQLITE_OK) { s.busy++; sleep_s(0.005); }
      s.commits++;
    }
    if (o.ckpt_every > 0 && s.commits % o.ckpt_every == 0) checkpoint(db, o.ckpt_mode, &s);
  }
  double elapsed = now_s() - t0, cpu_end = cpu_s();

  for (int i = 0; i < o.conns; i++)
    if (sqlite3_close(conn[i]) != SQLITE_OK) die("close: %s", sqlite3_errmsg(conn[i]));
  free(g_blob);
  if (s.ckpt_busy)
    fprintf(stderr, "ws-writer: %lld checkpoints returned SQLITE_BUSY\n", s.ckpt_busy);
  printf("writer: commits=%lld busy=%lld checkpoints=%lld elapsed=%.3f",
         s.commits, s.busy, s.checkpoints, elapsed);
  if (cpu_w >= 0)
    printf(" steady_commits=%lld steady_cpu_ms=%.3f", s.commits - commits_w,
           (cpu_end - cpu_w) * 1000.0);
  if (g_ck_n) { /* every call, busy or not */
    qsort(g_ck_ms, g_ck_n, sizeof *g_ck_ms, cmp_double);
    size_t i99 = g_ck_n * 99 / 100;
    printf(" ckpt_calls=%zu ckpt_ms_p50=%.2f ckpt_ms_p99=%.2f ckpt_ms_max=%.2f", g_ck_n,
           g_ck_ms[g_ck_n / 2], g_ck_ms[i99 < g_ck_n ? i99 : g_ck_n - 1], g_ck_ms[g_ck_n - 1]);
  }
  printf("\n");
  free(g_ck_ms);
  return 0;
}
