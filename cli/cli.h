/*
** Shared pieces of the walship command-line tool: one file per command,
** all of them thin wrappers over include/walship/walship.h.
**
** Exit codes (documented in `walship --help`): 0 ok, 1 runtime failure,
** 2 usage, 3 data refused, 4 output exists.
*/
#ifndef WS_CLI_H
#define WS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include "walship/walship.h"
#include "walship/store.h"

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
int cmd_config(int argc, char **argv);
int cmd_compact(int argc, char **argv);

/* Install the stderr log hook at level ("error|warn|info|debug"); returns
** 0, or -1 for an unknown level name. */
int cli_set_log_level(const char *name);
/* Log format ("text" or "json", NULL = unchanged) and destination (a file
** opened for append, NULL = unchanged; stderr until one is set).  -1 and a
** one-line msg on a bad format or an unopenable file. */
int cli_log_setup(const char *format, const char *file, char *msg, size_t msglen);
/* Reopen the log file at its path (after logrotate moved it; SIGHUP). */
int cli_log_reopen(char *msg, size_t msglen);
/* Label every line this thread logs with db=NAME (NULL: none). */
void cli_log_set_db(const char *name);
/* Monotonic clock, milliseconds. */
int64_t cli_now_ms(void);
/* A line from the CLI itself, component "walship", through the same hook. */
void cli_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "0", "250ms", "1s", "1.5s", "2m", "24h" -> milliseconds. */
int cli_parse_duration(const char *s, int64_t *ms);
/* "1048576", "64MB" (10^6), "64MiB" (2^20), "1.5GiB", ... -> bytes. */
int cli_parse_size(const char *s, uint64_t *bytes);
/* "2026-11-28T10:15:00Z", "2026-11-28T10:15:00.250Z", "...+01:00",
** "2026-11-28 10:15:00" (UTC) -> unix ms. */
int cli_parse_time(const char *s, int64_t *ms);
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

/* Store options shared by replicate, restore and ls: add CLI_STORE_LONGOPTS
** to the command's option table, pass unknown option codes through
** cli_store_option (1: handled, 0: not a store option, -1: bad value, the
** usage error already printed), and print CLI_STORE_HELP in --help.
** Credentials are never options (docs/stores.md). */
enum { CLI_O_ENDPOINT = 512, CLI_O_REGION, CLI_O_PATH_STYLE, CLI_O_VHOST,
       CLI_O_STORAGE_CLASS, CLI_O_CA_BUNDLE, CLI_O_INSECURE, CLI_O_RETRIES,
       CLI_O_LOG, CLI_O_KEY_FILE };
#define CLI_STORE_LONGOPTS \
  {"endpoint", required_argument, NULL, CLI_O_ENDPOINT}, \
  {"region", required_argument, NULL, CLI_O_REGION}, \
  {"path-style", no_argument, NULL, CLI_O_PATH_STYLE}, \
  {"virtual-host", no_argument, NULL, CLI_O_VHOST}, \
  {"storage-class", required_argument, NULL, CLI_O_STORAGE_CLASS}, \
  {"ca-bundle", required_argument, NULL, CLI_O_CA_BUNDLE}, \
  {"insecure", no_argument, NULL, CLI_O_INSECURE}, \
  {"max-retries", required_argument, NULL, CLI_O_RETRIES}, \
  {"encryption-key-file", required_argument, NULL, CLI_O_KEY_FILE}
#define CLI_STORE_HELP \
  "store options (s3:// and http(s):// stores; see docs/stores.md):\n" \
  "  --endpoint URL            S3-compatible endpoint, e.g. http://127.0.0.1:9000\n" \
  "                            (default: AWS, https://s3.REGION.amazonaws.com)\n" \
  "  --region R                (default: $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1)\n" \
  "  --path-style              bucket in the path (default with --endpoint)\n" \
  "  --virtual-host            bucket in the host name (default for AWS)\n" \
  "  --storage-class C         S3 storage class of uploads (default: STANDARD)\n" \
  "  --ca-bundle FILE          CA certificates for https (default: system)\n" \
  "  --insecure                skip TLS verification (warned at every start)\n" \
  "  --max-retries N           attempts per request on 5xx/429/network errors\n" \
  "                            (default: 8, exponential backoff with jitter)\n" \
  "credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN], or\n" \
  "AWS_PROFILE in AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials.\n" \
  "encryption (any store; see docs/SECURITY.md):\n" \
  "  --encryption-key-file F   encrypt/decrypt every object with the keys in F\n" \
  "                            (lines \"[ID] KEY\", KEY 64 hex digits or base64 of\n" \
  "                            32 bytes; the first encrypts, all decrypt); default:\n" \
  "                            the same text in $WALSHIP_ENCRYPTION_KEY, if set\n"
int cli_store_option(ws_store_opts *so, const char *cmd, int ch, const char *arg);

/* Every command's option table ends with CLI_COMMON_LONGOPTS (--log-level
** and the store options), and its switch's default case is
**   default: if ((r = cli_common_option(&store_opts, CMD, ch, argv)) >= 0) return r;
** which handles those options (-1: handled, go on) or returns the exit code
** of a usage error, unknown options included. */
#define CLI_COMMON_LONGOPTS \
  {"log-level", required_argument, NULL, CLI_O_LOG}, \
  CLI_STORE_LONGOPTS
int cli_common_option(ws_store_opts *so, const char *cmd, int ch, char **argv);

/* getopt_long "?" handling shared by the commands. */
int cli_bad_option(const char *cmd, int optopt_, char **argv, int optind_);
/* Commands taking exactly one STORE argument: CLI_OK, or the usage error. */
int cli_one_store(const char *cmd, int nargs);
/* 1536 -> "1.5 KiB" (progress bars). */
void cli_human_bytes(char *out, size_t n, double bytes);

#endif
