/*
** walship: command dispatch.  Each command lives in its own cmd_*.c and
** uses only the public API; this file knows the list and the exit codes.
*/
#include "cli.h"
#include "observe.h"

#include <stdio.h>
#include <string.h>

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *what;
} commands[] = {
  {"replicate", cmd_replicate, "ship a WAL-mode database to a store, continuously"},
  {"restore", cmd_restore, "rebuild a database from a store"},
  {"ls", cmd_ls, "list the snapshots and segments in a store"},
  {"status", cmd_status, "show a running sidecar's position, lag and errors"},
  {"wait", cmd_wait, "wait until a committed transaction is durable"},
  {"snapshot", cmd_snapshot, "ask a running sidecar for a snapshot now"},
  {"config", cmd_config, "check a replicate configuration file (config check -c FILE)"},
  {"compact", cmd_compact, "merge segments and apply retention in a store"},
};

static void usage(FILE *f) {
  fprintf(f,
    "usage: walship COMMAND [options] ARGS\n"
    "\n"
    "walship ships the committed transactions of a SQLite WAL-mode database\n"
    "to an object store and rebuilds the database from it.\n"
    "\n"
    "commands:\n");
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].what);
  fprintf(f,
    "  %-10s show this help (or: walship COMMAND --help)\n"
    "\n"
    "stores: a directory (\"/var/backups/app\", \"backups/app\") or file:///abs/dir\n"
    "\n"
    "examples:\n"
    "  walship replicate /data/app.db /backups/app\n"
    "  walship replicate -c /etc/walship.yml\n"
    "  walship restore /backups/app -o /data/app.db\n"
    "  walship ls /backups/app\n"
    "\n"
    "exit codes:\n"
    "  0  success\n"
    "  1  runtime failure (store, I/O, SQLite)\n"
    "  2  usage error\n"
    "  3  data refused (corrupt object, gap in history, verification failure,\n"
    "     database not in WAL mode)\n"
    "  4  output exists (refused without --force)\n",
    "help");
}

int main(int argc, char **argv) {
  cli_set_log_level("info");
  if (argc < 2) {
    usage(stderr);
    return CLI_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    if (argc > 2 && strcmp(cmd, "help") == 0) {
      /* "walship help restore" == "walship restore --help" */
      for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[2], commands[i].name)) {
          char *av[] = {argv[2], "--help", NULL};
          return commands[i].run(2, av);
        }
    }
    usage(stdout);
    return CLI_OK;
  }
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("walship %s (SQLite WAL shipping)\n", WALSHIP_VERSION);
    return CLI_OK;
  }
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (!strcmp(cmd, commands[i].name))
      return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "walship: unknown command '%s'\n\n", cmd);
  usage(stderr);
  return CLI_USAGE;
}
