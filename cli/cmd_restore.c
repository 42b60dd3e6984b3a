/*
** walship restore STORE -o OUT: rebuild a database file from a store.
** The library does the work (and guarantees OUT is either untouched or a
** complete, verified database); this file parses options and reports.
*/
#include "cli.h"

#include "walship/follow.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static void help(void) {
  printf(
    "usage: walship restore [options] STORE -o OUT\n"
    "\n"
    "Rebuild the database held in STORE into the file OUT: the newest snapshot\n"
    "at or before the target, then every following segment up to the target.\n"
    "Every page and every transaction is verified against its recorded\n"
    "checksum, then SQLite's integrity check runs; OUT is written atomically\n"
    "(a temp file next to it is renamed at the end) and is never left half\n"
    "written.  A gap in the history is refused, never skipped.\n"
    "\n"
    "options:\n"
    "  -o, --output OUT          database file to create (required)\n"
    "  --txid N                  restore the state after transaction N\n"
    "                            (default: the latest the store holds)\n"
    "  --timestamp TIME          restore the last transaction captured at or\n"
    "                            before TIME (UTC ISO-8601, 2026-11-28T10:15:00Z)\n"
    "  --dry-run                 print the plan (objects, sizes, TXID ranges) and\n"
    "                            exit without downloading page data\n"
    "  --force                   overwrite OUT and remove a stale OUT-wal/OUT-shm\n"
    "                            (default: refuse, exit 4)\n"
    "  --if-replica-exists       an empty store is not an error: print a note\n"
    "                            and exit 0 (default: off)\n"
    "  --skip-integrity-check    skip SQLite's PRAGMA integrity_check; the page\n"
    "                            checksum verification still runs (default: off)\n"
    "  --follow                  keep OUT current: apply new segments as they\n"
    "                            appear, until SIGINT/SIGTERM.  Readers may use OUT\n"
    "                            with plain SQLite at any time and see only whole\n"
    "                            transactions; the position is kept in\n"
    "                            OUT-walship-follow and a restart resumes from it\n"
    "  --poll-interval DUR       with --follow: list the store this often\n"
    "                            (default: 1s)\n"
    "  --log-level LEVEL         error, warn, info or debug (default: info)\n"
    "  -h, --help                show this help\n"
    "\n"
    "On success one line goes to stdout:\n"
    "  restored OUT: txid N, P pages of S bytes, K objects, B bytes downloaded\n"
    "\n"
    CLI_STORE_HELP
    "\n"
    "examples:\n"
    "  walship restore /backups/app -o /data/app.db\n"
    "  walship restore file:///backups/app --txid 1200 -o /tmp/app-1200.db\n"
    "  walship restore /backups/app -o /data/app.db --if-replica-exists\n"
    "  walship restore --follow s3://bucket/app -o /srv/replica.db\n");
}

/* --dry-run: the plan as a table, from object headers only. */
static int dry(const ws_restore_opts *opts) {
  ws_objinfo *v = NULL;
  size_t n = 0;
  uint64_t txid = 0, bytes = 0;
  ws_err err = WS_ERR_INIT;
  if (ws_restore_plan(&v, &n, &txid, opts, &err) != WS_OK) return cli_fail("restore", &err);
  printf("%-5s %-35s %12s %9s  %-20s  %s\n", "KIND", "TXIDS", "SIZE", "PAGES", "TIME", "NAME");
  for (size_t i = 0; i < n; i++) {
    char txids[48], when[32];
    if (v[i].txid_first == v[i].txid_last)
      snprintf(txids, sizeof(txids), "%" PRIu64, v[i].txid_first);
    else
      snprintf(txids, sizeof(txids), "%" PRIu64 "-%" PRIu64, v[i].txid_first, v[i].txid_last);
    time_t t = (time_t)(v[i].time_last_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-5s %-35s %12" PRIu64 " %9" PRIu32 "  %-20s  %s\n",
           v[i].kind == WS_KIND_SNAPSHOT ? "snap" : v[i].kind == WS_KIND_MERGED ? "merged" : "seg", txids, v[i].size,
           v[i].db_pages, when, v[i].name);
    bytes += v[i].size;
  }
  printf("plan: %zu objects, %" PRIu64 " bytes to download, restores txid %" PRIu64 "\n",
         n, bytes, txid);
  ws_objinfo_free(v);
  return fflush(stdout) == 0 ? CLI_OK : CLI_RUNTIME;
}

/* Progress: a bar on a terminal (stderr), else a log line every 5 s. */
typedef struct prog {
  int tty;
  int64_t t0, last;           /* cli_now_ms() at start, at the last output */
} prog;

static void on_progress(void *ud, const ws_restore_progress *p) {
  prog *g = ud;
  int64_t now = cli_now_ms();
  if (!p->done && now - g->last < (g->tty ? 200 : 5000)) return;
  if (p->done && !g->tty) return;          /* the "restored" line says it all */
  g->last = now;
  double secs = (double)(now - g->t0) / 1000.0;
  double rate = secs > 0.05 ? (double)p->bytes_done / secs : 0;
  double pct = p->bytes_total ? 100.0 * (double)p->bytes_done / (double)p->bytes_total : 100;
  if (pct > 100) pct = 100;
  double eta = rate > 0 && p->bytes_total > p->bytes_done
      ? (double)(p->bytes_total - p->bytes_done) / rate : 0;
  char done[32], total[32], r[32];
  cli_human_bytes(done, sizeof(done), (double)p->bytes_done);
  cli_human_bytes(total, sizeof(total), (double)p->bytes_total);
  cli_human_bytes(r, sizeof(r), rate);
  if (g->tty) {
    fprintf(stderr, "\r\033[K%s / %s %3.0f%%  %s/s  ETA %.0fs  objects %" PRIu64 "/%" PRIu64,
            done, total, pct, r, eta, p->objects_done, p->objects_total);
    if (p->done) fputc('\n', stderr);
    fflush(stderr);
    return;
  }
  cli_log(WS_LOG_INFO, "restore progress bytes=%" PRIu64 " total=%" PRIu64 " pct=%.0f "
          "rate_bytes_s=%.0f eta_s=%.0f objects=%" PRIu64 "/%" PRIu64 " txid=%" PRIu64,
          p->bytes_done, p->bytes_total, pct, rate, eta, p->objects_done,
          p->objects_total, p->txid);
}

/* --follow: the library loops until a signal; its log lines carry the lag. */
static int run_follow(const ws_restore_opts *ro, int64_t poll_ms) {
  static volatile int stop_flag;
  ws_follow_opts fo = WS_FOLLOW_OPTS_INIT;
  fo.store_url = ro->store_url;
  fo.replica_path = ro->out_path;
  fo.poll_ms = poll_ms;
  fo.force = ro->force;
  fo.stop = &stop_flag;
  fo.store = ro->store;
  ((ws_store_opts *)ro->store)->stop = &stop_flag;
  if (cli_on_stop_signals(&stop_flag) != 0) return CLI_RUNTIME;
  ws_err err = WS_ERR_INIT;
  if (ws_follow(&fo, &err) != WS_OK) return cli_fail("restore", &err);
  return CLI_OK;
}

int cmd_restore(int argc, char **argv) {
  enum { O_TXID = 256, O_FORCE, O_IFX, O_SKIP, O_TIME, O_DRY, O_FOLLOW, O_POLL };
  static const struct option longopts[] = {
    {"help", no_argument, NULL, 'h'},
    {"output", required_argument, NULL, 'o'},
    {"txid", required_argument, NULL, O_TXID},
    {"timestamp", required_argument, NULL, O_TIME},
    {"dry-run", no_argument, NULL, O_DRY},
    {"force", no_argument, NULL, O_FORCE},
    {"if-replica-exists", no_argument, NULL, O_IFX},
    {"skip-integrity-check", no_argument, NULL, O_SKIP},
    {"follow", no_argument, NULL, O_FOLLOW},
    {"poll-interval", required_argument, NULL, O_POLL},
    CLI_COMMON_LONGOPTS,
    {NULL, 0, NULL, 0},
  };
  ws_restore_opts opts = WS_RESTORE_OPTS_INIT;
  ws_store_opts store_opts = WS_STORE_OPTS_INIT;
  int ch, oc, dry_run = 0, follow = 0;
  int64_t poll_ms = 1000;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
    switch (ch) {
    case 'h': help(); return CLI_OK;
    case 'o': opts.out_path = optarg; break;
    case O_TXID:
      if (cli_parse_uint(optarg, UINT64_MAX, &opts.target_txid) || opts.target_txid == 0)
        return cli_usage("restore", "--txid wants a transaction number >= 1, got '%s'",
                         optarg);
      break;
    case O_TIME:
      if (cli_parse_time(optarg, &opts.target_time_ms))
        return cli_usage("restore", "--timestamp wants a UTC time like "
                         "2026-11-28T10:15:00Z, got '%s'", optarg);
      break;
    case O_DRY: dry_run = 1; break;
    case O_FORCE: opts.force = 1; break;
    case O_IFX: opts.if_replica_exists = 1; break;
    case O_SKIP: opts.skip_integrity_check = 1; break;
    case O_FOLLOW: follow = 1; break;
    case O_POLL:
      if (cli_parse_duration(optarg, &poll_ms) || poll_ms <= 0)
        return cli_usage("restore", "--poll-interval wants a duration like 1s or "
                         "250ms, got '%s'", optarg);
      break;
    default:
      if ((oc = cli_common_option(&store_opts, "restore", ch, argv)) >= 0) return oc;
    }
  }
  if ((oc = cli_one_store("restore", argc - optind)) != CLI_OK) return oc;
  if (opts.target_txid && opts.target_time_ms)
    return cli_usage("restore", "give --txid or --timestamp, not both");
  opts.store_url = argv[optind];
  opts.store = &store_opts;
  if (follow && (dry_run || opts.target_txid || opts.target_time_ms))
    return cli_usage("restore", "--follow keeps OUT at the latest state; it does not "
                     "combine with --txid, --timestamp or --dry-run");
  if (dry_run) return dry(&opts);
  if (!opts.out_path || !*opts.out_path)
    return cli_usage("restore", "missing -o OUT (the database file to create)");
  if (follow) return run_follow(&opts, poll_ms);

  ws_restore_result r;
  static volatile int stop_flag;
  opts.stop = &stop_flag;
  store_opts.stop = &stop_flag;
  if (cli_on_stop_signals(&stop_flag) != 0) return CLI_RUNTIME;
  prog g = {isatty(STDERR_FILENO), cli_now_ms(), cli_now_ms()};
  opts.progress = on_progress;
  opts.progress_ud = &g;
  ws_err err = WS_ERR_INIT;
  int rc = ws_restore(&r, &opts, &err);
  if (rc != WS_OK && g.tty && g.last != g.t0) fputc('\n', stderr);  /* end the bar */
  if (rc == WS_EEMPTY && opts.if_replica_exists && !err.msg[0]) {
    fprintf(stderr, "walship: restore: no replica in %s, nothing restored\n",
            opts.store_url);
    return CLI_OK;
  }
  if (rc != WS_OK) return cli_fail("restore", &err);
  printf("restored %s: txid %" PRIu64 ", %" PRIu32 " pages of %" PRIu32
         " bytes, %" PRIu64 " objects, %" PRIu64 " bytes downloaded\n",
         opts.out_path, r.txid, r.db_pages, r.page_size, r.objects,
         r.bytes_downloaded);
  if (fflush(stdout) != 0) {
    perror("walship: restore: write to stdout");
    return CLI_RUNTIME;
  }
  return CLI_OK;
}
