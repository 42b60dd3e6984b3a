/*
** walship wait DB: block until a transaction of DB is durable in every
** destination of its running sidecar (control socket, observe.h).  The
** sidecar keeps its own cadence: waiting adds no upload.
*/
#include "cli.h"
#include "observe.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
  printf(
    "usage: walship wait [options] DB\n"
    "\n"
    "Wait until a committed transaction of DB is durable in every destination\n"
    "of the walship sidecar replicating DB, then print \"durable txid=N\".\n"
    "By default (--now) that is the last transaction committed when wait\n"
    "started: the sidecar reads the WAL at its next sync and that sync's\n"
    "object makes it durable (no extra upload, so expect up to one sync\n"
    "interval plus an upload).\n"
    "\n"
    "options:\n"
    "  --now              wait for the last transaction committed now (default)\n"
    "  --txid N           wait for transaction N\n"
    "  --timeout DUR      give up after DUR and exit 5 (default: no limit)\n"
    "  --control PATH     the sidecar's control socket, when it was started\n"
    "                     with --control PATH (DB may then be omitted)\n"
    "  -h, --help         show this help\n"
    "\n"
    "exit codes: 0 durable; 5 timed out; 1 no sidecar runs for DB, or it\n"
    "stopped before the transaction was durable; 2 usage error.\n"
    "\n"
    "examples:\n"
    "  walship wait /data/app.db\n"
    "  walship wait --txid 1200 --timeout 30s /data/app.db\n");
}

int cmd_wait(int argc, char **argv) {
  enum { O_NOW = 256, O_TXID, O_TIMEOUT, O_CONTROL };
  static const struct option longopts[] = {
    {"help", no_argument, NULL, 'h'},
    {"now", no_argument, NULL, O_NOW},
    {"txid", required_argument, NULL, O_TXID},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"control", required_argument, NULL, O_CONTROL},
    {NULL, 0, NULL, 0},
  };
  uint64_t txid = 0;
  int64_t timeout = -1;
  int have_txid = 0, now = 0, ch;
  const char *ctl = NULL;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'h': help(); return CLI_OK;
    case O_NOW: now = 1; break;
    case O_TXID:
      if (cli_parse_uint(optarg, INT64_MAX, &txid) || txid == 0)
        return cli_usage("wait", "--txid: want a TXID >= 1, got '%s'", optarg);
      have_txid = 1;
      break;
    case O_TIMEOUT:
      if (cli_parse_duration(optarg, &timeout))
        return cli_usage("wait", "--timeout: bad duration '%s' (examples: 500ms, 30s)",
                         optarg);
      break;
    case O_CONTROL: ctl = optarg; break;
    default: return cli_bad_option("wait", optopt, argv, optind);
    }
  }
  if (now && have_txid) return cli_usage("wait", "--now and --txid exclude each other");
  int npos = argc - optind;
  if (npos > 1 || (npos == 0 && !ctl))
    return cli_usage("wait", "expected DB, got %d arguments", npos);
  const char *db = npos ? argv[optind] : NULL;

  char req[96], *reply = NULL;
  if (have_txid) snprintf(req, sizeof(req), "wait %llu %lld", (unsigned long long)txid,
                          (long long)timeout);
  else snprintf(req, sizeof(req), "wait now %lld", (long long)timeout);
  /* the sidecar enforces the limit; ours only guards against a hung one */
  int rc = cli_obs_call(&reply, "wait", db, ctl, req, timeout < 0 ? -1 : timeout + 10000);
  if (rc) return rc;
  if (!strncmp(reply, "ok ", 3)) {
    printf("durable %s\n", reply + 3);
    rc = CLI_OK;
  } else if (!strncmp(reply, "timeout ", 8)) {
    fprintf(stderr, "walship: wait: timed out (%s)\n", reply + 8);
    rc = CLI_TIMEOUT;
  } else if (!strncmp(reply, "stopped ", 8)) {
    fprintf(stderr, "walship: wait: the sidecar stopped first (%s)\n", reply + 8);
    rc = CLI_RUNTIME;
  } else {
    fprintf(stderr, "walship: wait: %s\n", reply);
    rc = CLI_RUNTIME;
  }
  free(reply);
  return rc;
}
