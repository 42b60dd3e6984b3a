/*
** walship snapshot DB: ask the running sidecar of DB for a full snapshot
** now, wait until it is durable, print its object name.
*/
#include "cli.h"
#include "observe.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int cmd_snapshot(int argc, char **argv) {
  enum { O_TIMEOUT = 256, O_CONTROL };
  static const struct option longopts[] = {
    {"help", no_argument, NULL, 'h'},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"control", required_argument, NULL, O_CONTROL},
    {NULL, 0, NULL, 0},
  };
  int64_t timeout = -1;
  const char *ctl = NULL;
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
    default: return cli_bad_option("snapshot", optopt, argv, optind);
    }
  }
  int npos = argc - optind;
  if (npos > 1 || (npos == 0 && !ctl))
    return cli_usage("snapshot", "expected DB, got %d arguments", npos);
  const char *db = npos ? argv[optind] : NULL;
  char req[64], *reply = NULL;
  snprintf(req, sizeof(req), "snapshot %lld", (long long)timeout);
  int rc = cli_obs_call(&reply, "snapshot", db, ctl, req, timeout < 0 ? -1 : timeout + 10000);
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
