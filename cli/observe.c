/*
** --metrics and --control for the replicate command (observe.h).  The
** settings are process-wide (one command line); the metrics endpoint is one
** per process and serves every database's stats, each registered by the
** worker that runs it for as long as it runs.
*/
#include "observe.h"
#include "cli.h"
#include "walship/dest.h"
#include "walship/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *metrics_addr;   /* NULL: no endpoint */
static int metrics_remote;
static const char *control_path;   /* NULL: derived from each database */
static int control_off;
static ws_metrics *metrics;
static int metrics_flag, control_flag; /* set by a flag: the file does not override */
static char *file_metrics, *file_control; /* cli_obs_defaults' copies */

struct cli_obs_db {
  ws_stats *st;
  ws_control *ctl;
  ws_dest *dests;                  /* ro->dests with the observe hooks, or NULL */
  const ws_dest *orig;             /* ro->dests as given, put back at the end */
};

int cli_obs_option(int ch, const char *arg) {
  switch (ch) {
  case CLI_O_METRICS:
    if (!strchr(arg, ':')) {
      cli_usage("replicate", "--metrics: want HOST:PORT, e.g. 127.0.0.1:9090, got '%s'", arg);
      return -1;
    }
    metrics_addr = arg;
    metrics_flag = 1;
    return 0;
  case CLI_O_METRICS_REMOTE: metrics_remote = 1; return 0;
  case CLI_O_CONTROL:
    control_off = !strcmp(arg, "off");
    control_path = control_off ? NULL : arg;
    control_flag = 1;
    return 0;
  }
  return -1;
}

void cli_obs_defaults(const char *m, int remote, const char *ctl) {
  if (m && !metrics_flag) {
    free(file_metrics);
    metrics_addr = file_metrics = strdup(m);
  }
  if (remote) metrics_remote = 1;
  if (ctl && !control_flag) {
    free(file_control);
    file_control = strdup(ctl);
    control_off = file_control && !strcmp(file_control, "off");
    control_path = control_off ? NULL : file_control;
  }
}

int cli_obs_start(void) {
  ws_err err = WS_ERR_INIT;
  if (!metrics_addr || metrics) return 0;
  if (ws_metrics_start(&metrics, metrics_addr, metrics_remote, &err))
    return cli_fail("replicate", &err);
  return 0;
}

void cli_obs_stop(void) {
  ws_metrics_stop(metrics);
  metrics = NULL;
  if (metrics_addr == file_metrics) metrics_addr = NULL;
  if (control_path == file_control) control_path = NULL;
  free(file_metrics);
  free(file_control);
  file_metrics = file_control = NULL;
}

/* "url" or "name1 + name2": the destination label of the metrics. */
static char *dest_label(const ws_replicate_opts *ro) {
  size_t n = 1;
  for (size_t i = 0; i < ro->ndests; i++)
    n += strlen(ro->dests[i].name ? ro->dests[i].name : ro->dests[i].url) + 3;
  if (!ro->ndests) n += ro->store_url ? strlen(ro->store_url) : 0;
  char *s = calloc(1, n);
  if (!s) return NULL;
  if (!ro->ndests && ro->store_url) strcpy(s, ro->store_url);
  for (size_t i = 0; i < ro->ndests; i++) {
    if (i) strcat(s, " + ");
    strcat(s, ro->dests[i].name ? ro->dests[i].name : ro->dests[i].url);
  }
  return s;
}

/* Several destinations: per-destination counters, fed by the fan-out's
** observe hooks on a copy of ro->dests.  0, or -1 (out of memory). */
static int observe_dests(cli_obs_db *ob, ws_replicate_opts *ro, ws_err *err) {
  size_t n = ro->ndests;
  if (n < 2) return 0;
  const char **names = calloc(n, sizeof(*names));
  ob->dests = calloc(n, sizeof(*ob->dests));
  if (!names || !ob->dests) {
    free(names);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    ob->dests[i] = ro->dests[i];
    ob->dests[i].observe = ws_stats_dest_observe;
    ob->dests[i].observe_ud = ob->st;
    names[i] = ro->dests[i].name ? ro->dests[i].name : ro->dests[i].url;
  }
  int rc = ws_stats_set_dests(ob->st, names, n, err);
  free(names);
  if (rc) return -1;
  ob->orig = ro->dests;
  ro->dests = ob->dests;
  return 0;
}

cli_obs_db *cli_obs_db_begin(ws_replicate_opts *ro) {
  ws_err err = WS_ERR_INIT;
  ro->stats = NULL;
  if (control_off && !metrics) return NULL;
  cli_obs_db *ob = calloc(1, sizeof(*ob));
  char *dest = dest_label(ro);
  if (!ob || !dest || ws_stats_new(&ob->st, ro->db_path, dest, &err) ||
      observe_dests(ob, ro, &err)) {
    cli_log(WS_LOG_WARN, "%s: no metrics or control socket: out of memory", ro->db_path);
    if (ob) ws_stats_free(ob->st);
    if (ob) free(ob->dests);
    free(ob);
    free(dest);
    return NULL;
  }
  free(dest);
  if (!control_off && ws_control_start(&ob->ctl, control_path, ro->db_path, ob->st, &err)) {
    /* a live default socket means another sidecar, a missing database is
    ** not replicated either: ws_replicate says so, once.  An explicit
    ** --control PATH can only serve one database of a -c FILE. */
    if ((err.code != WS_ELOCKED || control_path) && err.code != WS_ENOTFOUND)
      cli_log(WS_LOG_WARN, "%s; walship status/wait/snapshot will not reach this sidecar",
              err.msg);
    ob->ctl = NULL;
  }
  if (metrics && ws_metrics_add(metrics, ob->st, &err))
    cli_log(WS_LOG_WARN, "metrics: %s", err.msg);
  ro->stats = ob->st;
  return ob;
}

void cli_obs_db_end(cli_obs_db *ob, ws_replicate_opts *ro) {
  if (!ob) return;
  ws_stats_stopped(ob->st);
  ws_control_stop(ob->ctl);
  if (metrics) ws_metrics_remove(metrics, ob->st);
  ws_stats_free(ob->st);
  ro->stats = NULL;
  if (ob->dests) ro->dests = ob->orig;
  free(ob->dests);
  free(ob);
}

/* ------------------------------------------------------------- clients */

int cli_obs_call(char **reply, const char *cmd, const char *db, const char *ctl,
                 const char *request, int64_t timeout_ms) {
  return cli_obs_call_ex(reply, cmd, db, ctl, request, timeout_ms, NULL, NULL);
}

int cli_obs_call_ex(char **reply, const char *cmd, const char *db, const char *ctl,
                    const char *request, int64_t timeout_ms,
                    void (*on_line)(void *ud, const char *line), void *ud) {
  char path[4200];
  ws_err err = WS_ERR_INIT;
  if (!ctl) {
    if (ws_control_path(path, sizeof(path), db, &err)) return cli_fail(cmd, &err);
    ctl = path;
  }
  if (ws_control_call_ex(reply, ctl, request, timeout_ms, on_line, ud, &err)) {
    if (err.code == WS_ENOTFOUND && db) {
      fprintf(stderr, "walship: %s: no walship sidecar is running for %s (nothing listens "
              "on %s)\n", cmd, db, ctl);
      return CLI_RUNTIME;
    }
    return cli_fail(cmd, &err);
  }
  return CLI_OK;
}
