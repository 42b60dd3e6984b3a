/*
** Observability of the replicate command: the opt-in Prometheus endpoint
** (--metrics) and the per-database control socket (--control) that
** `walship status`, `wait` and `snapshot` talk to (include/walship/stats.h).
**
** cmd_replicate adds CLI_OBS_LONGOPTS to its option table, passes those
** options to cli_obs_option, calls cli_obs_start before its workers run and
** cli_obs_stop after, and wraps each ws_replicate call:
**     cli_obs_db *ob = cli_obs_db_begin(&ro);   (sets ro.stats)
**     rc = ws_replicate(&ro, &err);
**     cli_obs_db_end(ob, &ro);
** Nothing here is fatal to a database: a control socket that cannot be
** created is a warning (the sidecar still ships).
*/
#ifndef WS_CLI_OBSERVE_H
#define WS_CLI_OBSERVE_H

#include "walship/walship.h"

enum { CLI_O_METRICS = 768, CLI_O_METRICS_REMOTE, CLI_O_CONTROL };
#define CLI_OBS_LONGOPTS \
  {"metrics", required_argument, NULL, CLI_O_METRICS}, \
  {"metrics-allow-remote", no_argument, NULL, CLI_O_METRICS_REMOTE}, \
  {"control", required_argument, NULL, CLI_O_CONTROL}
#define CLI_OBS_HELP \
  "  --metrics ADDR            serve Prometheus metrics at http://ADDR/metrics,\n" \
  "                            e.g. 127.0.0.1:9090 (off by default; loopback\n" \
  "                            only unless --metrics-allow-remote)\n" \
  "  --metrics-allow-remote    allow a non-loopback --metrics address (the\n" \
  "                            endpoint has no authentication)\n" \
  "  --control PATH|off        control socket for walship status/wait/snapshot\n" \
  "                            (default: DB-walship.sock next to the database;\n" \
  "                            a PATH serves a single database)\n"

/* Handles CLI_O_* codes: 0 ok, -1 bad value (usage error printed). */
int cli_obs_option(int ch, const char *arg);
/* The configuration file's metrics, metrics-allow-remote and control
** (NULL/0: not set), for what no flag set.  Copied; call before
** cli_obs_start.  A reload does not change them (they need a restart). */
void cli_obs_defaults(const char *metrics, int metrics_remote, const char *control);
/* Start the metrics endpoint if asked; 0, or the exit code of the failure
** (error printed). */
int cli_obs_start(void);
void cli_obs_stop(void);

typedef struct cli_obs_db cli_obs_db;
cli_obs_db *cli_obs_db_begin(ws_replicate_opts *ro);
void cli_obs_db_end(cli_obs_db *ob, ws_replicate_opts *ro);

/* ------------------------------------------------- status, wait, snapshot */
int cmd_status(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);

/* Exit code of wait/snapshot when the time limit passed first. */
enum { CLI_TIMEOUT = 5 };

/* Send request to the sidecar of db (or the socket ctl when not NULL) and
** return its reply line in *reply (free it).  timeout_ms < 0: no limit.
** On failure the error is printed (naming cmd) and the exit code returned. */
int cli_obs_call(char **reply, const char *cmd, const char *db, const char *ctl,
                 const char *request, int64_t timeout_ms);
/* The same; lines sent before the answer go to on_line (ws_control_call_ex). */
int cli_obs_call_ex(char **reply, const char *cmd, const char *db, const char *ctl,
                    const char *request, int64_t timeout_ms,
                    void (*on_line)(void *ud, const char *line), void *ud);

#endif
