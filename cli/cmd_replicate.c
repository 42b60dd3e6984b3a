/*
** walship replicate DB STORE: the sidecar.  Runs until SIGINT/SIGTERM,
** then ships what is committed and exits 0 (cli_on_stop_signals).
*/
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* sig_atomic_t is int on every platform we build on; the library wants a
** volatile int *. */
static volatile int stop_flag;

static void help(void) {
  printf(
    "usage: walship replicate [options] DB STORE\n"
    "\n"
    "Ship every committed transaction of the WAL-mode SQLite database DB to\n"
    "STORE, as a snapshot followed by segments, until SIGINT or SIGTERM; then\n"
    "ship what is committed and exit 0.  A second signal exits at once.\n"
    "\n"
    "options:\n"
    "  --sync-interval DUR       batch commits for this long before shipping;\n"
    "                            0 ships each commit at once (default: 1s)\n"
    "  --snapshot-interval DUR   take a full snapshot this often (default 24h);\n"
    "                            0 = only when a new history starts\n"
    "  --checkpoint-frames N     run a PASSIVE checkpoint past N WAL frames;\n"
    "                            0 = never (default: 1000)\n"
    "  --wal-max SIZE            past this WAL size, briefly block writers so\n"
    "                            the WAL can restart; 0 = off (default: 16MiB)\n"
    "  --compress-level N        zlib level 0..9, 0 = store raw (default: 1)\n"
    "  --poll-interval DUR       wake-up period without file events\n"
    "                            (default: 250ms)\n"
    "  --once                    ship what is committed now, then exit\n"
    "  --log-level LEVEL         error, warn, info or debug (default: info)\n"
    "  -h, --help                show this help\n"
    "\n"
    "DUR is 0 or a number with a unit: 250ms, 1s, 1.5s, 2m, 24h.\n"
    "SIZE is bytes, or with a unit: 64MB (10^6), 64MiB (2^20), 1GiB.\n"
    "\n"
    CLI_STORE_HELP
    "\n"
    "examples:\n"
    "  walship replicate /data/app.db /backups/app\n"
    "  walship replicate --sync-interval 0 /data/app.db file:///backups/app\n"
    "  walship replicate --once /data/app.db /backups/app\n");
}

int cmd_replicate(int argc, char **argv) {
  enum { O_SYNC = 256, O_SNAP, O_CKPT, O_WALMAX, O_LEVEL, O_POLL, O_ONCE };
  static const struct option longopts[] = {
    {"help", no_argument, NULL, 'h'},
    {"sync-interval", required_argument, NULL, O_SYNC},
    {"snapshot-interval", required_argument, NULL, O_SNAP},
    {"checkpoint-frames", required_argument, NULL, O_CKPT},
    {"wal-max", required_argument, NULL, O_WALMAX},
    {"compress-level", required_argument, NULL, O_LEVEL},
    {"poll-interval", required_argument, NULL, O_POLL},
    {"once", no_argument, NULL, O_ONCE},
    CLI_COMMON_LONGOPTS,
    {NULL, 0, NULL, 0},
  };
  ws_replicate_opts opts = WS_REPLICATE_OPTS_INIT;
  uint64_t u;
  ws_store_opts store_opts = WS_STORE_OPTS_INIT;
  int ch, r;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'h': help(); return CLI_OK;
    case O_SYNC:
      if (cli_parse_duration(optarg, &opts.sync_interval_ms))
        return cli_usage("replicate", "--sync-interval: bad duration '%s' "
                         "(examples: 0, 250ms, 1s, 2m)", optarg);
      break;
    case O_SNAP:
      if (cli_parse_duration(optarg, &opts.snapshot_interval_ms))
        return cli_usage("replicate", "--snapshot-interval: bad duration '%s' "
                         "(examples: 0, 30m, 24h)", optarg);
      break;
    case O_CKPT:
      if (cli_parse_uint(optarg, UINT32_MAX, &u))
        return cli_usage("replicate", "--checkpoint-frames: bad number '%s'", optarg);
      opts.checkpoint_frames = (uint32_t)u;
      break;
    case O_WALMAX:
      if (cli_parse_size(optarg, &opts.wal_max_bytes))
        return cli_usage("replicate", "--wal-max: bad size '%s' (examples: 0, "
                         "64MiB, 100MB)", optarg);
      break;
    case O_LEVEL:
      if (cli_parse_uint(optarg, 9, &u))
        return cli_usage("replicate", "--compress-level: want 0..9, got '%s'", optarg);
      opts.compress_level = (int)u;
      break;
    case O_POLL:
      if (cli_parse_duration(optarg, &opts.poll_ms) || opts.poll_ms <= 0)
        return cli_usage("replicate", "--poll-interval: bad duration '%s' "
                         "(must be > 0, e.g. 250ms)", optarg);
      break;
    case O_ONCE: opts.once = 1; break;
    default:
      if ((r = cli_common_option(&store_opts, "replicate", ch, argv)) >= 0) return r;
    }
  }
  if (argc - optind != 2)
    return cli_usage("replicate", "expected DB and STORE, got %d argument%s",
                     argc - optind, argc - optind == 1 ? "" : "s");
  opts.db_path = argv[optind];
  opts.store_url = argv[optind + 1];
  opts.stop = &stop_flag;
  /* Not store_opts.stop: the first signal asks for a final sync, which must
  ** be allowed to finish its uploads (a second signal kills at once). */
  opts.store = &store_opts;

  if (cli_on_stop_signals(&stop_flag) != 0) return CLI_RUNTIME;

  ws_err err = WS_ERR_INIT;
  int rc = ws_replicate(&opts, &err);
  if (rc == WS_OK) return CLI_OK;
  return cli_fail("replicate", &err);
}
