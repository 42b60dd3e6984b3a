/*
** walship replicate: the sidecar, for one database (DB STORE) or every
** database of a configuration file (-c FILE), optionally supervising the
** application itself (--exec).
**
** Process model: one thread per database runs ws_replicate; the main thread
** does nothing but signals, the child and reloads.  Every signal we act on
** is blocked in all threads and taken synchronously by the main thread with
** sigtimedwait, so no handler races a thread and workers never see EINTR
** (they notice their stop flag within their poll interval).
**
**   SIGTERM/SIGINT  without --exec: every worker stops after a final sync;
**                   a second one exits at once.  With --exec: forwarded to
**                   the child; we stop when it exits.
**   SIGHUP          reopen --log-file, reload -c FILE (workers whose
**                   settings changed restart; the position lives in the
**                   store, so they resume), forward to the child.
**   SIGQUIT/USR1/USR2  forwarded to the child (without --exec: ignored,
**                   QUIT stops like TERM).
**
** Exit status: without --exec, 0 when every final sync succeeded, else the
** exit code of the first failure; a worker that fails while running stops
** the whole process (a supervisor restarts it).  With --exec, the child's
** status (128+N when killed by signal N), or 1 when the child exited 0 but
** a final sync failed; a failing worker is restarted after a pause instead,
** because the application must not lose its sidecar for good (nor be
** killed because a store was unreachable).
*/
#include "cli.h"
#include "config.h"
#include "observe.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct worker {
  cfg_db db;                 /* owned: moved out of a loaded cfg */
  char *fp;                  /* cfg_db_fingerprint, for reloads */
  pthread_t th;
  int started;
  volatile int stop;
  atomic_int done;
  int rc;
  ws_err err;
  int64_t restart_at;        /* --exec: when to try again after a failure */
  char last_msg[512];        /* last failure logged (no repeats) */
} worker;

/* What the command line says; it overrides the file (bits in `set`). */
typedef struct cliopts {
  ws_replicate_opts ro;
  unsigned set;
  ws_store_opts so;
  const char *log_level, *log_format, *log_file, *config, *exec;
} cliopts;
enum { S_SYNC = 1, S_SNAP = 2, S_CKPT = 4, S_WALMAX = 8, S_LEVEL = 16, S_POLL = 32,
       S_ONCE = 64, S_RETAIN = 128, S_COMPACT = 256 };

static const int fwd_sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
/* A worker that ends sends this to the supervisor thread, so it sleeps
** until something happens instead of looking every 200 ms (each wake-up
** of an idle sidecar costs ~60 us of CPU on a small VM). */
#define DONE_SIG (SIGRTMIN + 3) /* +4 is src/wlock.c's */
static pthread_t supervisor; /* the thread in run() */

static void help(void) {
  printf(
    "usage: walship replicate [options] DB STORE\n"
    "       walship replicate [options] -c FILE\n"
    "\n"
    "Ship every committed transaction of the WAL-mode SQLite database DB to\n"
    "STORE, as a snapshot followed by segments, until SIGINT or SIGTERM; then\n"
    "ship what is committed and exit 0.  A second signal exits at once.\n"
    "With -c, replicate every database of the configuration file FILE (each to\n"
    "one or more destinations, docs/config.md), one thread per database.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE         databases and destinations from FILE (YAML);\n"
    "                            the options below override its values\n"
    "  --exec \"CMD ARGS\"         run the application as a child (via /bin/sh):\n"
    "                            forward TERM, INT, HUP, QUIT, USR1 and USR2 to it,\n"
    "                            and when it exits ship everything committed and\n"
    "                            exit with its status (128+N if killed by signal N)\n"
    "  --sync-interval DUR       batch commits for this long before shipping;\n"
    "                            0 ships each commit at once (default: 1s)\n"
    "  --snapshot-interval DUR   take a full snapshot this often (default 24h);\n"
    "                            0 = only when a new history starts\n"
    "  --checkpoint-frames N     run a PASSIVE checkpoint past N WAL frames;\n"
    "                            0 = never (default: 1000)\n"
    "  --wal-max SIZE            past this WAL size, briefly block writers so\n"
    "                            the WAL can restart (with a fast store, also\n"
    "                            at a WAL cycle's end if writers never pause);\n"
    "                            0 = never block writers (default: 16MiB;\n"
    "                            at most 4 x --checkpoint-frames frames)\n"
    "  --compress-level N        zlib level 0..9, 0 = store raw (default: 1)\n"
    "  --poll-interval DUR       wake-up period without file events\n"
    "                            (default: 250ms)\n"
    "  --once                    ship what is committed now, then exit\n"
    "  --retention DUR           keep every transaction of the last DUR\n"
    "                            restorable, delete older objects no restore\n"
    "                            needs; off = never delete (default: 24h)\n"
    "  --no-compaction           do not merge segments in the background\n"
    "                            (restores of long histories read more objects)\n"
    CLI_OBS_HELP
    "  --log-level LEVEL         error, warn, info or debug (default: info)\n"
    "  --log-format FORMAT       text (time level component: message key=value)\n"
    "                            or json (one object per line) (default: text)\n"
    "  --log-file PATH           append log lines to PATH instead of stderr;\n"
    "                            SIGHUP reopens it (for logrotate)\n"
    "  -h, --help                show this help\n"
    "\n"
    "signals: TERM/INT final sync and exit; HUP reopen the log file and reload\n"
    "the configuration file (changed databases restart where they left off).\n"
    "\n"
    "DUR is 0 or a number with a unit: 250ms, 1s, 1.5s, 2m, 24h.\n"
    "SIZE is bytes, or with a unit: 64MB (10^6), 64MiB (2^20), 1GiB.\n"
    "\n"
    CLI_STORE_HELP
    "\n"
    "examples:\n"
    "  walship replicate /data/app.db /backups/app\n"
    "  walship replicate --sync-interval 0 /data/app.db file:///backups/app\n"
    "  walship replicate --once /data/app.db /backups/app\n"
    "  walship replicate -c /etc/walship.yml\n"
    "  walship replicate -c /etc/walship.yml --exec \"/usr/bin/app --port 8080\"\n");
}

/* ---------------------------------------------------------- config */

static char *dup_or_keep(char *old, const char *v) {
  if (!v) return old;
  char *d = strdup(v);
  if (!d) {
    fputs("walship: out of memory\n", stderr);
    abort();
  }
  free(old);
  return d;
}

/* Command-line values over file values, for every database/destination. */
static void apply_cli(cfg *c, const cliopts *o) {
  for (size_t i = 0; i < c->ndb; i++) {
    ws_replicate_opts *r = &c->db[i].ro;
    if (o->set & S_SYNC) r->sync_interval_ms = o->ro.sync_interval_ms;
    if (o->set & S_SNAP) r->snapshot_interval_ms = o->ro.snapshot_interval_ms;
    if (o->set & S_CKPT) r->checkpoint_frames = o->ro.checkpoint_frames;
    if (o->set & S_WALMAX) r->wal_max_bytes = o->ro.wal_max_bytes;
    if (o->set & S_LEVEL) r->compress_level = o->ro.compress_level;
    if (o->set & S_POLL) r->poll_ms = o->ro.poll_ms;
    if (o->set & S_ONCE) r->once = 1;
    if (o->set & S_RETAIN) r->retention_ms = o->ro.retention_ms;
    if (o->set & S_COMPACT) r->compaction = o->ro.compaction;
    for (size_t j = 0; j < c->db[i].nd; j++) {
      cfg_dest *d = &c->db[i].d[j];
      d->endpoint = dup_or_keep(d->endpoint, o->so.endpoint);
      d->region = dup_or_keep(d->region, o->so.region);
      d->storage_class = dup_or_keep(d->storage_class, o->so.storage_class);
      d->ca_bundle = dup_or_keep(d->ca_bundle, o->so.ca_bundle);
      /* start from the flags, so store options the file has no key for
      ** still reach every destination; then the file's where no flag is */
      ws_store_opts m = o->so;
      if (!m.path_style) m.path_style = d->so.path_style;
      if (!m.insecure) m.insecure = d->so.insecure;
      if (!m.max_retries) m.max_retries = d->so.max_retries;
      d->so = m;                /* string fields: cfg_finish points them at d's copies */
    }
  }
}

/* The effective configuration: the file (or DB STORE) plus the flags. */
static int build_cfg(cfg *c, const cliopts *o, const char *dbarg, const char *storearg,
                     char *msg, size_t msglen) {
  if (o->config) {
    if (cfg_load(c, o->config, msg, msglen)) return -1;
  } else {
    memset(c, 0, sizeof(*c));
    ws_store_opts none = WS_STORE_OPTS_INIT;
    cfg_add_simple(c, dbarg, storearg, &none);
  }
  apply_cli(c, o);
  return cfg_finish(c, msg, msglen);
}

/* Logging and credentials from the file, unless the flags say otherwise.
** setenv races getenv in other threads (curl reads proxy variables per
** request), so set_env only while no worker runs: callers make sure of it. */
static int apply_process_settings(const cfg *c, const cliopts *o, int set_env, char *msg,
                                  size_t msglen) {
  const char *lvl = o->log_level ? o->log_level : c->log_level;
  if (lvl && cli_set_log_level(lvl)) {
    snprintf(msg, msglen, "unknown log level '%s'", lvl);
    return -1;
  }
  if (cli_log_setup(o->log_format ? o->log_format : c->log_format,
                    o->log_file ? o->log_file : c->log_file, msg, msglen))
    return -1;
  if (!set_env) return 0;
  if (c->aws_key_id) {
    setenv("AWS_ACCESS_KEY_ID", c->aws_key_id, 1);
    setenv("AWS_SECRET_ACCESS_KEY", c->aws_secret, 1);
  }
  if (c->aws_token) setenv("AWS_SESSION_TOKEN", c->aws_token, 1);
  return 0;
}

static int same_str(const char *a, const char *b) {
  return (!a && !b) || (a && b && !strcmp(a, b));
}

static int creds_changed(const cfg *a, const cfg *b) {
  return !same_str(a->aws_key_id, b->aws_key_id) || !same_str(a->aws_secret, b->aws_secret) ||
         !same_str(a->aws_token, b->aws_token);
}

/* A config file with a secret written in it should not be world-readable. */
static void warn_readable(const cfg *c) {
  struct stat st;
  if (c->file && c->literal_secret && stat(c->file, &st) == 0 && (st.st_mode & S_IROTH))
    cli_log(WS_LOG_WARN, "config file %s holds a secret and is world-readable "
            "(chmod 600 %s, or use ${VAR})", c->file, c->file);
}

/* ---------------------------------------------------------- workers */

static void *worker_main(void *arg) {
  worker *w = arg;
  cli_log_set_db(w->db.name ? w->db.name : w->db.path);
  w->err = (ws_err)WS_ERR_INIT;
  cli_obs_db *ob = cli_obs_db_begin(&w->db.ro); /* stats, control socket */
  w->rc = ws_replicate(&w->db.ro, &w->err);
  cli_obs_db_end(ob, &w->db.ro);
  atomic_store(&w->done, 1);
  pthread_kill(supervisor, DONE_SIG); /* wake run(); thread-directed */
  return NULL;
}

static int worker_start(worker *w) {
  w->stop = 0;
  atomic_store(&w->done, 0);
  w->db.ro.stop = &w->stop;
  int e = pthread_create(&w->th, NULL, worker_main, w);
  if (e) {
    cli_log(WS_LOG_ERROR, "cannot start a thread for %s: %s", w->db.path, strerror(e));
    w->rc = WS_ERROR;
    snprintf(w->err.msg, sizeof(w->err.msg), "thread: %s", strerror(e));
    atomic_store(&w->done, 1);
    return -1;
  }
  w->started = 1;
  return 0;
}

static void worker_join(worker *w) {
  if (w->started) pthread_join(w->th, NULL);
  w->started = 0;
}

static worker *worker_new(cfg_db *db) {
  worker *w = calloc(1, sizeof(*w));
  if (!w) {
    fputs("walship: out of memory\n", stderr);
    abort();
  }
  w->db = *db;
  memset(db, 0, sizeof(*db)); /* moved: the cfg no longer owns it */
  w->fp = cfg_db_fingerprint(&w->db);
  return w;
}

static void worker_free(worker *w) {
  if (!w) return;
  cfg_db_free(&w->db);
  free(w->fp);
  free(w);
}

/* Signals that arrive while workers are being stopped (stop_all). */
static sigset_t sigs;          /* every signal we take, blocked everywhere */
static pid_t child = -1;       /* --exec application, while it runs */
static int final_stop;         /* the process is stopping: a stop signal now exits */
static int stop_requested;     /* a stop signal arrived during a reload */

/* Answer signals for up to ms while a stop is in progress: forwarded to the
** application; without one, a second stop signal exits at once (the
** operator will not wait for the final sync), an early one is remembered. */
static void signals_while_stopping(int ms) {
  struct timespec tmo = {0, (long)ms * 1000000};
  siginfo_t si;
  int sig = sigtimedwait(&sigs, &si, &tmo);
  if (sig <= 0 || sig == SIGCHLD || sig == DONE_SIG) return;
  if (child > 0) {
    kill(child, sig);
    return;
  }
  if (sig != SIGTERM && sig != SIGINT && sig != SIGQUIT) return;
  if (final_stop) {
    cli_log(WS_LOG_WARN, "second %s: exiting without waiting for the final sync",
            strsignal(sig));
    _exit(128 + sig);
  }
  stop_requested = 1;
}

/* Workers block every signal we take, so a stop would wait for their poll
** tick; this one (a no-op handler, SA_RESTART so only the waits that are
** never restarted — poll — return early) wakes them at once. */
#define WAKE_SIG (SIGRTMIN + 2)
static void on_wake(int sig) { (void)sig; }

/* Stop (final sync) and join every worker in ws[0..n), in parallel so the
** time to exit is that of the slowest one, answering signals meanwhile.
** Returns the first failure's ws_code, reporting each. */
static int stop_all(worker **ws, size_t n) {
  int first = WS_OK;
  for (size_t i = 0; i < n; i++) {
    __atomic_store_n(&ws[i]->stop, 1, __ATOMIC_RELAXED);
    if (ws[i]->started && !atomic_load(&ws[i]->done)) pthread_kill(ws[i]->th, WAKE_SIG);
  }
  for (;;) {
    size_t busy = 0;
    for (size_t i = 0; i < n; i++) busy += ws[i]->started && !atomic_load(&ws[i]->done);
    if (!busy) break;
    signals_while_stopping(100);
  }
  for (size_t i = 0; i < n; i++) {
    if (!ws[i]->started) continue;
    worker_join(ws[i]);
    if (ws[i]->rc != WS_OK) {
      /* on stderr like every fatal error of the command (the log may be a file) */
      const char *m = ws[i]->err.msg[0] ? ws[i]->err.msg : ws_strerror(ws[i]->rc);
      fprintf(stderr, "walship: replicate: %s%s%s\n", strstr(m, ws[i]->db.path) ? "" : ws[i]->db.path,
              strstr(m, ws[i]->db.path) ? "" : ": ", m);
      if (first == WS_OK) first = ws[i]->rc;
    }
  }
  return first;
}

/* ---------------------------------------------------------- reload */

typedef struct state {
  cliopts *o;
  cfg cur;                   /* process settings of the running config (ndb 0) */
  worker **w;
  size_t nw;
} state;

/* Take the databases of c into workers; c keeps only process settings. */
static void adopt(state *s, cfg *c) {
  s->w = calloc(c->ndb ? c->ndb : 1, sizeof(*s->w));
  if (!s->w) abort();
  for (size_t i = 0; i < c->ndb; i++) s->w[s->nw++] = worker_new(&c->db[i]);
  c->ndb = 0;
  cfg_free_dbs(c);
  s->cur = *c;
  memset(c, 0, sizeof(*c));
}

static void reload(state *s) {
  char msg[600];
  cfg nc;
  if (!s->o->config) return;
  if (build_cfg(&nc, s->o, NULL, NULL, msg, sizeof(msg))) {
    cli_log(WS_LOG_ERROR, "reload failed, keeping the running configuration: %s", msg);
    cfg_free(&nc);
    return;
  }
  int all = creds_changed(&s->cur, &nc);
  worker **nw = calloc(nc.ndb + s->nw + 1, sizeof(*nw));
  if (!nw) abort();
  size_t n = 0, kept = 0, restarted = 0, stopped = 0, added = 0;
  /* 1. stop what goes away or changes (in parallel), keep the rest */
  worker **gone = calloc(s->nw + 1, sizeof(*gone));
  size_t ngone = 0;
  if (!gone) abort();
  for (size_t i = 0; i < s->nw; i++) {
    worker *w = s->w[i];
    size_t j;
    for (j = 0; j < nc.ndb; j++)
      if (nc.db[j].path && !strcmp(nc.db[j].path, w->db.path)) break;
    char *fp = j < nc.ndb ? cfg_db_fingerprint(&nc.db[j]) : NULL;
    if (fp && !all && !strcmp(fp, w->fp) && !atomic_load(&w->done)) {
      nw[n++] = w;                         /* unchanged: keeps running */
      cfg_db_free(&nc.db[j]);
      kept++;
    } else {
      gone[ngone++] = w;
      if (fp) restarted++;
      else stopped++;
    }
    free(fp);
  }
  if (ngone) stop_all(gone, ngone);
  for (size_t i = 0; i < ngone; i++) worker_free(gone[i]);
  free(gone);
  /* 2. if the credentials changed, every worker is stopped: the environment
  ** may change (all); otherwise kept workers run and it must not */
  if (apply_process_settings(&nc, s->o, all, msg, sizeof(msg)))
    cli_log(WS_LOG_ERROR, "reload: %s", msg);
  warn_readable(&nc);
  /* 3. start the new and the changed */
  for (size_t j = 0; j < nc.ndb; j++) {
    if (!nc.db[j].path) continue;          /* kept above */
    worker *w = worker_new(&nc.db[j]);
    nw[n++] = w;
    worker_start(w);
    added++;
  }
  free(s->w);
  s->w = nw;
  s->nw = n;
  nc.ndb = 0;
  cfg_free_dbs(&nc);
  cfg_free(&s->cur);
  s->cur = nc;
  cli_log(WS_LOG_INFO, "configuration reloaded from %s: unchanged=%zu restarted=%zu "
          "stopped=%zu started=%zu", s->o->config, kept, restarted, stopped,
          added - restarted);
}

/* ---------------------------------------------------------- child */

static pid_t spawn_child(const char *cmd) {
  posix_spawnattr_t at;
  sigset_t none, dfl;
  pid_t pid;
  sigemptyset(&none);
  sigemptyset(&dfl);
  for (size_t i = 0; i < sizeof(fwd_sigs) / sizeof(fwd_sigs[0]); i++)
    sigaddset(&dfl, fwd_sigs[i]);
  sigaddset(&dfl, SIGCHLD);
  posix_spawnattr_init(&at);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &dfl);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  /* "exec": the shell becomes the application, so our signals reach it */
  char *full = malloc(strlen(cmd) + 6);
  if (!full) abort();
  strcpy(full, "exec ");
  strcat(full, cmd);
  char *argv[] = {"sh", "-c", full, NULL};
  int e = posix_spawn(&pid, "/bin/sh", NULL, &at, argv, environ);
  posix_spawnattr_destroy(&at);
  free(full);
  if (e) {
    cli_log(WS_LOG_ERROR, "cannot start '%s': %s", cmd, strerror(e));
    return -1;
  }
  cli_log(WS_LOG_INFO, "started application pid=%d cmd=\"%s\"", (int)pid, cmd);
  return pid;
}

/* ---------------------------------------------------------- main */

/* Before any thread exists (the --metrics server's included), so every
** thread inherits the mask and only the supervisor's sigtimedwait takes
** these signals: one landing on a library's thread would be lost (SIGCHLD)
** or kill the process (DONE_SIG's default action). */
static void block_signals(void) {
  sigemptyset(&sigs);
  for (size_t i = 0; i < sizeof(fwd_sigs) / sizeof(fwd_sigs[0]); i++)
    sigaddset(&sigs, fwd_sigs[i]);
  sigaddset(&sigs, SIGCHLD);
  sigaddset(&sigs, DONE_SIG);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  supervisor = pthread_self();
}

static int run(state *s) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_wake;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(WAKE_SIG, &sa, NULL);

  for (size_t i = 0; i < s->nw; i++) worker_start(s->w[i]);
  int child_status = -1, stopping = 0, rc = WS_OK, once = (s->o->set & S_ONCE) != 0;
  if (s->o->exec && (child = spawn_child(s->o->exec)) < 0) {
    final_stop = 1;
    stop_all(s->w, s->nw);
    return CLI_RUNTIME;
  }
  for (;;) {
    /* Woken by a signal, a worker's end (DONE_SIG) or the application's
    ** (SIGCHLD); the timeout only bounds a restart's delay. */
    int64_t wait_ms = 5000, now = cli_now_ms();
    for (size_t i = 0; i < s->nw; i++)
      if (!s->w[i]->started && s->w[i]->restart_at) {
        int64_t d = s->w[i]->restart_at - now;
        if (d < wait_ms) wait_ms = d < 0 ? 0 : d;
      }
    struct timespec tmo = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000000};
    siginfo_t si;
    int sig = sigtimedwait(&sigs, &si, &tmo);
    if (sig > 0 && sig != SIGCHLD && sig != DONE_SIG) {
      if (child > 0) kill(child, sig);
      if (sig == SIGHUP) {
        char msg[300];
        if (cli_log_reopen(msg, sizeof(msg))) cli_log(WS_LOG_ERROR, "%s", msg);
        cli_log(WS_LOG_INFO, "SIGHUP: reopening logs%s",
                s->o->config ? ", reloading the configuration" : "");
        reload(s);
        if (stop_requested && child <= 0) {
          cli_log(WS_LOG_INFO, "stop requested during the reload: final sync, then exit");
          break;
        }
      } else if (child <= 0 && (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)) {
        if (stopping) {
          cli_log(WS_LOG_WARN, "second %s: exiting without waiting for the final sync",
                  strsignal(sig));
          _exit(128 + sig);
        }
        cli_log(WS_LOG_INFO, "%s: final sync, then exit", strsignal(sig));
        stopping = 1;
        break;
      }
    }
    if (child > 0) {
      int st;
      pid_t p = waitpid(child, &st, WNOHANG);
      if (p == child) {
        child_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        cli_log(WS_LOG_INFO, "application exited status=%d; final sync", child_status);
        child = -1;
        break;
      }
    }
    /* workers that ended on their own */
    int running = 0;
    for (size_t i = 0; i < s->nw; i++) {
      worker *w = s->w[i];
      if (!w->started) {
        if (w->restart_at && cli_now_ms() >= w->restart_at) {
          w->restart_at = 0;
          worker_start(w);
        }
        running++;
        continue;
      }
      if (!atomic_load(&w->done)) {
        running++;
        continue;
      }
      worker_join(w);
      if (w->rc == WS_OK) continue;       /* --once finished */
      const char *m = w->err.msg[0] ? w->err.msg : ws_strerror(w->rc);
      if (!s->o->exec) {
        fprintf(stderr, "walship: replicate: %s\n", m);
        if (rc == WS_OK) rc = w->rc;
        stopping = 1;
        continue;
      }
      /* the app keeps running: try again (a database that does not exist
      ** yet because the app creates it is the common case) */
      int64_t pause = w->rc == WS_ENOTFOUND || w->rc == WS_ENOTWAL ? 1000 : 5000;
      if (strncmp(w->last_msg, m, sizeof(w->last_msg) - 1))
        cli_log(WS_LOG_WARN, "%s%s%s; retrying every %llds", strstr(m, w->db.path) ? "" : w->db.path,
                strstr(m, w->db.path) ? "" : ": ", m, (long long)pause / 1000);
      memcpy(w->last_msg, m, strnlen(m, sizeof(w->last_msg) - 1));
      w->last_msg[strnlen(m, sizeof(w->last_msg) - 1)] = 0;
      w->restart_at = cli_now_ms() + pause;
      running++;
    }
    if (stopping) break;
    if (!running && once) break;
    if (!running && !s->o->exec) break;
  }
  final_stop = 1;
  int frc = stop_all(s->w, s->nw);
  if (rc == WS_OK) rc = frc;
  if (child > 0) { /* we are stopping for our own reasons: take the app down too */
    int st;
    kill(child, SIGTERM);
    if (waitpid(child, &st, 0) == child)
      child_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  if (s->o->exec) {
    if (child_status > 0) return child_status;
    return rc == WS_OK ? CLI_OK : CLI_RUNTIME;
  }
  return cli_exit_code(rc);
}

int cmd_replicate(int argc, char **argv) {
  enum { O_SYNC = 256, O_SNAP, O_CKPT, O_WALMAX, O_LEVEL, O_POLL, O_ONCE, O_EXEC,
         O_LOGFMT, O_LOGFILE, O_RETAIN, O_NOCOMPACT };
  static const struct option longopts[] = {
    {"help", no_argument, NULL, 'h'},
    {"config", required_argument, NULL, 'c'},
    {"exec", required_argument, NULL, O_EXEC},
    {"sync-interval", required_argument, NULL, O_SYNC},
    {"snapshot-interval", required_argument, NULL, O_SNAP},
    {"checkpoint-frames", required_argument, NULL, O_CKPT},
    {"wal-max", required_argument, NULL, O_WALMAX},
    {"compress-level", required_argument, NULL, O_LEVEL},
    {"poll-interval", required_argument, NULL, O_POLL},
    {"once", no_argument, NULL, O_ONCE},
    {"retention", required_argument, NULL, O_RETAIN},
    {"no-compaction", no_argument, NULL, O_NOCOMPACT},
    {"log-format", required_argument, NULL, O_LOGFMT},
    {"log-file", required_argument, NULL, O_LOGFILE},
    CLI_OBS_LONGOPTS,
    CLI_COMMON_LONGOPTS,
    {NULL, 0, NULL, 0},
  };
  static cliopts o;
  ws_replicate_opts init = WS_REPLICATE_OPTS_INIT;
  ws_store_opts sinit = WS_STORE_OPTS_INIT;
  memset(&o, 0, sizeof(o));
  o.ro = init;
  o.so = sinit;
  uint64_t u;
  int ch, r;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "hc:", longopts, NULL)) != -1) {
    switch (ch) {
    case 'h': help(); return CLI_OK;
    case 'c': o.config = optarg; break;
    case O_EXEC:
      if (!*optarg) return cli_usage("replicate", "--exec: empty command");
      o.exec = optarg;
      break;
    case O_LOGFMT:
      if (strcmp(optarg, "text") && strcmp(optarg, "json"))
        return cli_usage("replicate", "--log-format: want text or json, got '%s'", optarg);
      o.log_format = optarg;
      break;
    case O_LOGFILE: o.log_file = optarg; break;
    case O_SYNC:
      if (cli_parse_duration(optarg, &o.ro.sync_interval_ms))
        return cli_usage("replicate", "--sync-interval: bad duration '%s' "
                         "(examples: 0, 250ms, 1s, 2m)", optarg);
      o.set |= S_SYNC;
      break;
    case O_SNAP:
      if (cli_parse_duration(optarg, &o.ro.snapshot_interval_ms))
        return cli_usage("replicate", "--snapshot-interval: bad duration '%s' "
                         "(examples: 0, 30m, 24h)", optarg);
      o.set |= S_SNAP;
      break;
    case O_CKPT:
      if (cli_parse_uint(optarg, UINT32_MAX, &u))
        return cli_usage("replicate", "--checkpoint-frames: bad number '%s'", optarg);
      o.ro.checkpoint_frames = (uint32_t)u;
      o.set |= S_CKPT;
      break;
    case O_WALMAX:
      if (cli_parse_size(optarg, &o.ro.wal_max_bytes))
        return cli_usage("replicate", "--wal-max: bad size '%s' (examples: 0, "
                         "64MiB, 100MB)", optarg);
      o.set |= S_WALMAX;
      break;
    case O_LEVEL:
      if (cli_parse_uint(optarg, 9, &u))
        return cli_usage("replicate", "--compress-level: want 0..9, got '%s'", optarg);
      o.ro.compress_level = (int)u;
      o.set |= S_LEVEL;
      break;
    case O_POLL:
      if (cli_parse_duration(optarg, &o.ro.poll_ms) || o.ro.poll_ms <= 0)
        return cli_usage("replicate", "--poll-interval: bad duration '%s' "
                         "(must be > 0, e.g. 250ms)", optarg);
      o.set |= S_POLL;
      break;
    case O_ONCE: o.set |= S_ONCE; break;
    case O_RETAIN:
      if (strcmp(optarg, "off") == 0) o.ro.retention_ms = 0;
      else if (cli_parse_duration(optarg, &o.ro.retention_ms) || o.ro.retention_ms <= 0)
        return cli_usage("replicate", "--retention: '%s' is not a positive duration "
                         "(e.g. 24h, 168h) or 'off'", optarg);
      o.set |= S_RETAIN;
      break;
    case O_NOCOMPACT: o.ro.compaction = 0; o.set |= S_COMPACT; break;
    case CLI_O_METRICS: case CLI_O_METRICS_REMOTE: case CLI_O_CONTROL:
      if (cli_obs_option(ch, optarg)) return CLI_USAGE;
      break;
    default:
      if (ch == CLI_O_LOG) o.log_level = optarg;
      if ((r = cli_common_option(&o.so, "replicate", ch, argv)) >= 0) return r;
    }
  }
  int npos = argc - optind;
  if (o.config && npos != 0)
    return cli_usage("replicate", "with -c, databases come from the file (got %d "
                     "extra argument%s)", npos, npos == 1 ? "" : "s");
  if (!o.config && npos != 2)
    return cli_usage("replicate", "expected DB and STORE (or -c FILE), got %d argument%s",
                     npos, npos == 1 ? "" : "s");
  if (o.exec && (o.set & S_ONCE))
    return cli_usage("replicate", "--exec and --once do not go together");

  char msg[600];
  cfg c;
  if (build_cfg(&c, &o, npos ? argv[optind] : NULL, npos ? argv[optind + 1] : NULL,
                msg, sizeof(msg))) {
    cfg_free(&c);
    fprintf(stderr, "walship: replicate: %s\n", msg);
    return CLI_USAGE;
  }
  if (apply_process_settings(&c, &o, 1, msg, sizeof(msg))) {
    cfg_free(&c);
    fprintf(stderr, "walship: replicate: %s\n", msg);
    return CLI_USAGE;
  }
  warn_readable(&c);
  cli_obs_defaults(c.metrics, c.metrics_remote, c.control); /* flags win */
  state s = {&o, {0}, NULL, 0};
  adopt(&s, &c);
  block_signals();
  int rc = cli_obs_start(); /* --metrics */
  if (rc == CLI_OK) rc = run(&s);
  cli_obs_stop();
  for (size_t i = 0; i < s.nw; i++) worker_free(s.w[i]);
  free(s.w);
  cfg_free(&s.cur);
  return rc;
}
