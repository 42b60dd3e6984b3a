/*
** Shared pieces of the walship command-line tool: one file per command,
** all of them thin wrappers over include/walship/walship.h.
**
** Exit codes (documented in `walship --help`): 0 ok, 1 runtime failure,
** 2 usage, 3 data refused, 4 output exists.
*/
#ifndef WS_CLI_H
#define WS_CLI_H

#include <stdint.h>
#include "walship/walship.h"

enum {
  CLI_OK = 0,
  CLI_RUNTIME = 1,   /* store, I/O, SQLite */
  CLI_USAGE = 2,
  CLI_REFUSED = 3,   /* corrupt object, gap, verification, not WAL mode */
  CLI_EXISTS = 4     /* output exists (refused without --force) */
};

int cmd_replicate(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_ls(int argc, char **argv);

/* Install the stderr log hook at level ("error|warn|info|debug"); returns
** 0, or -1 for an unknown level name. */
int cli_set_log_level(const char *name);

/* "0", "250ms", "1s", "1.5s", "2m", "24h" -> milliseconds. */
int cli_parse_duration(const char *s, int64_t *ms);
/* "1048576", "64MB" (10^6), "64MiB" (2^20), "1.5GiB", ... -> bytes. */
int cli_parse_size(const char *s, uint64_t *bytes);
/* Decimal unsigned integer no larger than max. */
int cli_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* ws_code -> process exit code. */
int cli_exit_code(int code);

/* "walship: CMD: MESSAGE" on stderr; returns cli_exit_code(err->code). */
int cli_fail(const char *cmd, const ws_err *err);
/* One-line usage error plus the pointer to --help; returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* SIGINT/SIGTERM set *flag (no SA_RESTART, so blocking waits return EINTR
** and the library notices promptly); SA_RESETHAND makes a second signal
** act the default way, for an operator who will not wait. -1 on failure. */
int cli_on_stop_signals(volatile int *flag);

/* getopt_long "?" handling shared by the commands. */
int cli_bad_option(const char *cmd, int optopt_, char **argv, int optind_);

#endif
