/*
** walship ls STORE: one line per snapshot and segment, in restore order.
*/
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

static void help(void) {
  printf(
    "usage: walship ls [options] STORE\n"
    "\n"
    "List the snapshots and segments in STORE, oldest first, as a table:\n"
    "  KIND   snap or seg\n"
    "  TXIDS  transactions covered (first-last)\n"
    "  SIZE   bytes in the store\n"
    "  PAGES  database size in pages after the object\n"
    "  TIME   capture time of its last transaction (UTC)\n"
    "  NAME   object name in the store\n"
    "Objects whose header cannot be read show '?' (a warning names the cause).\n"
    "An empty store prints a note on stderr and exits 0.\n"
    "\n"
    "options:\n"
    "  --log-level LEVEL   error, warn, info or debug (default: info)\n"
    "  -h, --help          show this help\n"
    "\n"
    CLI_STORE_HELP
    "\n"
    "example:\n"
    "  walship ls /backups/app\n");
}

static void iso_time(char *buf, size_t n, int64_t ms) {
  if (ms <= 0) {
    snprintf(buf, n, "-");
    return;
  }
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int cmd_ls(int argc, char **argv) {
  static const struct option longopts[] = {
    {"help", no_argument, NULL, 'h'},
    CLI_COMMON_LONGOPTS,
    {NULL, 0, NULL, 0},
  };
  ws_store_opts store_opts = WS_STORE_OPTS_INIT;
  int ch, r;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'h': help(); return CLI_OK;
    default:
      if ((r = cli_common_option(&store_opts, "ls", ch, argv)) >= 0) return r;
    }
  }
  if ((r = cli_one_store("ls", argc - optind)) != CLI_OK) return r;
  const char *url = argv[optind];
  ws_objinfo *v = NULL;
  size_t n = 0;
  ws_err err = WS_ERR_INIT;
  if (ws_ls(&v, &n, url, &store_opts, &err) != WS_OK) return cli_fail("ls", &err);
  if (n == 0) {
    fprintf(stderr, "store %s is empty\n", url);
    ws_objinfo_free(v);
    return CLI_OK;
  }
  printf("%-4s  %-27s  %12s  %10s  %-20s  %s\n", "KIND", "TXIDS", "SIZE", "PAGES",
         "TIME", "NAME");
  for (size_t i = 0; i < n; i++) {
    const ws_objinfo *o = &v[i];
    char txids[48], pages[16], when[32];
    if (o->txid_first == o->txid_last)
      snprintf(txids, sizeof(txids), "%" PRIu64, o->txid_last);
    else
      snprintf(txids, sizeof(txids), "%" PRIu64 "-%" PRIu64, o->txid_first, o->txid_last);
    if (o->page_size) {
      snprintf(pages, sizeof(pages), "%" PRIu32, o->db_pages);
      iso_time(when, sizeof(when), o->time_last_ms);
    } else {
      snprintf(pages, sizeof(pages), "?");
      snprintf(when, sizeof(when), "?");
    }
    printf("%-4s  %-27s  %12" PRIu64 "  %10s  %-20s  %s\n",
           o->kind == WS_KIND_SNAPSHOT ? "snap" : o->kind == WS_KIND_MERGED ? "merged" : "seg", txids, o->size, pages,
           when, o->name);
  }
  ws_objinfo_free(v);
  if (fflush(stdout) != 0) {
    perror("walship: ls: write to stdout");
    return CLI_RUNTIME;
  }
  return CLI_OK;
}
