/*
** walship snapshot DB: ask the running sidecar of DB for a full snapshot
** now, wait until it is durable, print its object name.  On a terminal (or
** with --progress) it asks the sidecar for progress lines while the
** snapshot reads the database and shows them (src/control.c).
*/
#include "cli.h"
#include "observe.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void) {
  printf(
    "usage: walship snapshot [options] DB\n"
    "\n"
    "Ask the walship sidecar replicating DB for a full snapshot at its next\n"
    "sync, wait until the snapshot is durable in every destination, and print\n"
    "its object name and TXID.  A snapshot shortens every later restore (it\n"
    "replays only what follows it).  The sidecar takes it once everything\n"
    "committed is shipped, so under a writer that never pauses it can wait.\n"
    "\n"
    "options:\n"
    "  --timeout DUR      give up after DUR and exit 5 (default: no limit)\n"
    "  --progress         show the snapshot's progress (bytes, rate, ETA) while\n"
    "                     it reads the database: a bar on a terminal (the\n"
    "                     default there), else a line per update on stderr\n"
    "  --no-progress      do not\n"
    "  --control PATH     the sidecar's control socket, when it was started\n"
    "                     with --control PATH (DB may then be omitted)\n"
    "  -h, --help         show this help\n"
    "\n"
    "exit codes: 0 durable; 5 timed out; 1 no sidecar runs for DB, or it\n"
    "stopped first; 2 usage error.\n"
    "\n"
    "example:\n"
    "  walship snapshot /data/app.db\n");
}

typedef struct prog {
  int tty;                 /* draw a bar on stderr, else a line per update */
  int drawn;               /* a bar is on screen: end it with a newline */
  int64_t t0;              /* first progress line, cli_now_ms() */
  unsigned long long done0;
} prog;

/* "progress done=N total=M" from the sidecar */
static void on_line(void *ud, const char *line) {
  prog *g = ud;
  unsigned long long done, total;
  if (sscanf(line, "progress done=%llu total=%llu", &done, &total) != 2 || !total) return;
  int64_t now = cli_now_ms();
  if (!g->t0) g->t0 = now, g->done0 = done;
  double secs = (double)(now - g->t0) / 1000.0;
  double rate = secs > 0.05 && done > g->done0 ? (double)(done - g->done0) / secs : 0;
  double pct = 100.0 * (double)done / (double)total;
  double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;
  char d[32], t[32], r[32];
  cli_human_bytes(d, sizeof(d), (double)done);
  cli_human_bytes(t, sizeof(t), (double)total);
  cli_human_bytes(r, sizeof(r), rate);
  if (g->tty) {
    fprintf(stderr, "\r\033[Ksnapshot: %s / %s %3.0f%%  %s/s  ETA %.0fs", d, t, pct, r, eta);
    g->drawn = 1;
  } else {
    fprintf(stderr, "walship: snapshot: progress done_bytes=%llu total_bytes=%llu "
            "percent=%.1f rate_bytes_s=%.0f eta_s=%.1f\n", done, total, pct, rate, eta);
  }
  fflush(stderr);
}

int cmd_snapshot(int argc, char **argv) {
  enum { O_TIMEOUT = 256, O_CONTROL, O_PROGRESS, O_NOPROGRESS };
  static const struct option longopts[] = {
    {"help", no_argument, NULL, 'h'},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"control", required_argument, NULL, O_CONTROL},
    {"progress", no_argument, NULL, O_PROGRESS},
    {"no-progress", no_argument, NULL, O_NOPROGRESS},
    {NULL, 0, NULL, 0},
  };
  int64_t timeout = -1;
  const char *ctl = NULL;
  prog g = {isatty(2), 0, 0, 0};
  int progress = g.tty;
  int ch;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'h': help(); return CLI_OK;
    case O_TIMEOUT:
      if (cli_parse_duration(optarg, &timeout))
        return cli_usage("snapshot", "--timeout: bad duration '%s' (examples: 30s, 5m)",
                         optarg);
      break;
    case O_CONTROL: ctl = optarg; break;
    case O_PROGRESS: progress = 1; break;
    case O_NOPROGRESS: progress = 0; break;
    default: return cli_bad_option("snapshot", optopt, argv, optind);
    }
  }
  int npos = argc - optind;
  if (npos > 1 || (npos == 0 && !ctl))
    return cli_usage("snapshot", "expected DB, got %d arguments", npos);
  const char *db = npos ? argv[optind] : NULL;
  char req[64], *reply = NULL;
  snprintf(req, sizeof(req), "snapshot %lld%s", (long long)timeout,
           progress ? " progress" : "");
  int rc = cli_obs_call_ex(&reply, "snapshot", db, ctl, req, timeout < 0 ? -1 : timeout + 10000,
                           progress ? on_line : NULL, &g);
  if (g.drawn) fputc('\n', stderr);
  if (rc) return rc;
  char name[128];
  unsigned long long txid;
  if (sscanf(reply, "ok txid=%llu name=%127s", &txid, name) == 2) {
    printf("%s txid=%llu\n", name, txid);
    rc = CLI_OK;
  } else if (!strcmp(reply, "timeout")) {
    fprintf(stderr, "walship: snapshot: timed out before the snapshot was durable\n");
    rc = CLI_TIMEOUT;
  } else if (!strcmp(reply, "stopped")) {
    fprintf(stderr, "walship: snapshot: the sidecar stopped first\n");
    rc = CLI_RUNTIME;
  } else {
    fprintf(stderr, "walship: snapshot: %s\n", reply);
    rc = CLI_RUNTIME;
  }
  free(reply);
  return rc;
}
