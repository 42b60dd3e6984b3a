/*
** walship config check -c FILE: load the replicate configuration exactly as
** `replicate -c FILE` would (env expansion, validation) and print the
** effective configuration, every default filled in, secrets masked.
*/
#include "cli.h"
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void help(void) {
  printf(
    "usage: walship config check -c FILE\n"
    "\n"
    "Validate the replicate configuration FILE (docs/config.md) and print the\n"
    "effective configuration: ${VAR} expanded, defaults filled in, secrets\n"
    "masked.  Exit 0 if valid; 2 with a FILE:LINE:COLUMN: KEY: problem line\n"
    "otherwise.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE   the configuration file\n"
    "  -h, --help          show this help\n"
    "\n"
    "example:\n"
    "  walship config check -c /etc/walship.yml\n");
}

int cmd_config(int argc, char **argv) {
  static const struct option longopts[] = {
    {"help", no_argument, NULL, 'h'},
    {"config", required_argument, NULL, 'c'},
    {NULL, 0, NULL, 0},
  };
  const char *file = NULL;
  int ch;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "hc:", longopts, NULL)) != -1) {
    switch (ch) {
    case 'h': help(); return CLI_OK;
    case 'c': file = optarg; break;
    default: return cli_bad_option("config", optopt, argv, optind);
    }
  }
  if (argc - optind != 1 || strcmp(argv[optind], "check"))
    return cli_usage("config", "expected 'check' (walship config check -c FILE)");
  if (!file) return cli_usage("config", "check: -c FILE is required");
  cfg c;
  char msg[600];
  if (cfg_load(&c, file, msg, sizeof(msg)) || cfg_finish(&c, msg, sizeof(msg))) {
    cfg_free(&c);
    fprintf(stderr, "walship: config: %s\n", msg);
    return CLI_USAGE;
  }
  printf("# %s: valid; effective configuration (secrets masked)\n", file);
  cfg_print(stdout, &c, 1);
  cfg_free(&c);
  return CLI_OK;
}
