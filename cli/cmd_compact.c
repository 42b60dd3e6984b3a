/*
** walship compact STORE: one maintenance pass by hand — compaction, and
** retention when --retention is given.  The sidecar does the same in the
** background every minute; this command is for stores whose sidecar runs
** with --retention off (credentials without delete rights elsewhere), for
** catching up an old store, and for seeing what a pass would do.
*/
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void help(void) {
  printf(
    "usage: walship compact [options] STORE\n"
    "\n"
    "Merge the segments of completed time windows in STORE into larger ones\n"
    "(levels: 1 minute, 1 hour, 1 day) so that restores read a few objects\n"
    "instead of one per sync, and with --retention delete what no restore\n"
    "inside the window needs.  Nothing a restore to a transaction captured\n"
    "inside the window, or to the latest state, needs is ever deleted; the\n"
    "plans are re-checked against the remaining objects before any delete.\n"
    "Run one maintainer per store: the sidecar already does this every minute\n"
    "unless started with --retention off --no-compaction.\n"
    "\n"
    "options:\n"
    "  --retention DUR     delete what restores inside this window do not need\n"
    "                      (e.g. 24h, 7d; default: delete nothing)\n"
    "  --no-compaction     retention only\n"
    "  --dry-run           print what would be merged and deleted; change nothing\n"
    "  --now TIME          plan as if the time were TIME (ISO 8601, or +DUR/-DUR\n"
    "                      from now); for rehearsals and tests\n"
    "  --log-level LEVEL   error, warn, info or debug (default: info)\n"
    "  -h, --help          show this help\n"
    "\n"
    CLI_STORE_HELP
    "\n"
    "examples:\n"
    "  walship compact /backups/app\n"
    "  walship compact --retention 7d --dry-run s3://bucket/app\n");
}

enum { O_RETENTION = 1024, O_NOCOMPACT, O_DRYRUN, O_NOW };

static int parse_now(const char *s, int64_t *ms) {
  int64_t d;
  if ((s[0] == '+' || s[0] == '-') && cli_parse_duration(s + 1, &d) == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + (s[0] == '+' ? d : -d);
    return 0;
  }
  return cli_parse_time(s, ms);
}

int cmd_compact(int argc, char **argv) {
  static const struct option longopts[] = {
    {"help", no_argument, NULL, 'h'},
    {"retention", required_argument, NULL, O_RETENTION},
    {"no-compaction", no_argument, NULL, O_NOCOMPACT},
    {"dry-run", no_argument, NULL, O_DRYRUN},
    {"now", required_argument, NULL, O_NOW},
    CLI_COMMON_LONGOPTS,
    {NULL, 0, NULL, 0},
  };
  ws_store_opts store_opts = WS_STORE_OPTS_INIT;
  ws_maint_opts mo = WS_MAINT_OPTS_INIT;
  int ch, r;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'h': help(); return CLI_OK;
    case O_RETENTION:
      if (strcmp(optarg, "off") == 0) mo.retention_ms = 0;
      else if (cli_parse_duration(optarg, &mo.retention_ms) || mo.retention_ms <= 0)
        return cli_usage("compact", "--retention: '%s' is not a positive duration "
                         "(e.g. 24h) or 'off'", optarg);
      break;
    case O_NOCOMPACT: mo.compaction = 0; break;
    case O_DRYRUN: mo.dry_run = 1; break;
    case O_NOW:
      if (parse_now(optarg, &mo.now_ms))
        return cli_usage("compact", "--now: '%s' is not a time (2026-11-28T10:15:00Z) "
                         "or +DUR/-DUR", optarg);
      break;
    default:
      if ((r = cli_common_option(&store_opts, "compact", ch, argv)) >= 0) return r;
    }
  }
  if ((r = cli_one_store("compact", argc - optind)) != CLI_OK) return r;
  static volatile int stop;
  cli_on_stop_signals(&stop);
  store_opts.stop = &stop;
  mo.store_url = argv[optind];
  mo.store = &store_opts;
  mo.stop = &stop;
  ws_maint_result res;
  ws_err err = WS_ERR_INIT;
  if (ws_maintain(&res, &mo, &err) != WS_OK) return cli_fail("compact", &err);
  printf("%s merged=%" PRIu64 " inputs=%" PRIu64 " merged_bytes=%" PRIu64
          " deleted=%" PRIu64 " deleted_bytes=%" PRIu64 " window_from_txid=%" PRIu64 "\n",
         mo.dry_run ? "dry run:" : "done", res.merged, res.merged_inputs,
         res.merged_bytes, res.deleted, res.deleted_bytes, res.window_txid);
  return CLI_OK;
}
