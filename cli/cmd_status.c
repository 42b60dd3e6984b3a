/*
** walship status DB...: what each running sidecar reports over its control
** socket (observe.h): position, lag, WAL size, uploads, errors, snapshot.
** The databases come from the arguments or from a configuration file (-c).
*/
#include "cli.h"
#include "config.h"
#include "observe.h"

#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void help(void) {
  printf(
    "usage: walship status [options] DB...\n"
    "       walship status [options] -c FILE\n"
    "\n"
    "Ask the walship sidecar of each DB (or of every database in the\n"
    "configuration file FILE) for its state and print it:\n"
    "  durable     last TXID durable in every destination, and when\n"
    "  seen        last committed TXID found in the WAL\n"
    "  lag         committed transactions not durable yet, and the age of the\n"
    "              oldest of them (0 when caught up)\n"
    "  wal         bytes of WAL in use\n"
    "  uploaded    objects and bytes committed to the store since start\n"
    "  snapshot    newest snapshot, its TXID and age\n"
    "  errors      failed syncs since start, and the last error\n"
    "  dest NAME   with several destinations, one line each: the objects and\n"
    "              bytes it committed, time spent uploading, its last error\n"
    "\n"
    "options:\n"
    "  -c, --config FILE  the databases of this configuration file\n"
    "  --json             one JSON object per database instead (as the\n"
    "                     sidecar sends it)\n"
    "  --control PATH     a sidecar started with --control PATH\n"
    "  -h, --help         show this help\n"
    "\n"
    "exit codes: 0 every sidecar answered; 1 at least one database has no\n"
    "running sidecar; 2 usage error.\n"
    "\n"
    "example:\n"
    "  walship status /data/app.db\n");
}

static int64_t geti(json_object *o, const char *k) {
  json_object *v;
  return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}
static double getd(json_object *o, const char *k, int *have) {
  json_object *v;
  *have = json_object_object_get_ex(o, k, &v) && v;
  return *have ? json_object_get_double(v) : 0;
}
static const char *gets_(json_object *o, const char *k) {
  json_object *v;
  return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "";
}

static void human_bytes(char *b, size_t n, double x) {
  const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (x >= 1024 && i < 4) x /= 1024, i++;
  snprintf(b, n, i ? "%.1f %s" : "%.0f %s", x, u[i]);
}

static void human_age(char *b, size_t n, double s) {
  if (s < 60) snprintf(b, n, "%.1fs", s);
  else if (s < 3600) snprintf(b, n, "%dm%02ds", (int)s / 60, (int)s % 60);
  else if (s < 86400) snprintf(b, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
  else snprintf(b, n, "%dd%02dh", (int)s / 86400, (int)s % 86400 / 3600);
}

static void iso(char *b, size_t n, int64_t ms) {
  if (ms <= 0) {
    snprintf(b, n, "-");
    return;
  }
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(b, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_status(json_object *o) {
  char a[64], a_[64], b[64], c[64];
  int have;
  printf("%s -> %s\n", gets_(o, "db"), gets_(o, "dest"));
  printf("  sidecar    pid %lld, %s\n", (long long)geti(o, "pid"),
         geti(o, "running") ? "running" : "stopping");
  iso(a, sizeof(a), geti(o, "durable_time_ms"));
  printf("  durable    txid %lld at %s\n", (long long)geti(o, "durable_txid"), a);
  printf("  seen       txid %lld\n", (long long)geti(o, "seen_txid"));
  printf("  lag        %lld transactions, %.3fs\n", (long long)geti(o, "lag_transactions"),
         getd(o, "lag_seconds", &have));
  human_bytes(a, sizeof(a), (double)geti(o, "wal_bytes"));
  printf("  wal        %s\n", a);
  human_bytes(a, sizeof(a), (double)geti(o, "uploaded_bytes"));
  printf("  uploaded   %lld objects, %s\n", (long long)geti(o, "objects"), a);
  double age = getd(o, "snapshot_age_seconds", &have);
  if (have) {
    human_age(b, sizeof(b), age);
    const char *nm = gets_(o, "snapshot_name");
    printf("  snapshot   txid %lld, %s old%s%s\n", (long long)geti(o, "snapshot_txid"), b,
           *nm ? ", " : "", nm);
  } else {
    printf("  snapshot   none yet\n");
  }
  const char *le = gets_(o, "last_error");
  if (*le) {
    iso(c, sizeof(c), geti(o, "last_error_time_ms"));
    printf("  errors     %lld since start; last at %s: %s\n",
           (long long)geti(o, "errors_total"), c, le);
  } else {
    printf("  errors     none\n");
  }
  /* several destinations: one line each (position and lag above are shared:
  ** an object is durable only once every destination has it) */
  json_object *arr;
  if (!json_object_object_get_ex(o, "dests", &arr) || !json_object_is_type(arr, json_type_array))
    return;
  for (size_t i = 0; i < json_object_array_length(arr); i++) {
    json_object *d = json_object_array_get_idx(arr, i);
    human_bytes(a_, sizeof(a_), (double)geti(d, "uploaded_bytes"));
    printf("  dest %s: uploaded %lld objects, %s in %.3fs; ", gets_(d, "name"),
           (long long)geti(d, "objects"), a_, getd(d, "upload_seconds", &have));
    const char *dle = gets_(d, "last_error");
    if (*dle) {
      iso(c, sizeof(c), geti(d, "last_error_time_ms"));
      printf("errors %lld, last at %s: %s\n", (long long)geti(d, "errors_total"), c, dle);
    } else {
      printf("errors none\n");
    }
  }
}

static int one(const char *db, const char *ctl, int json) {
  char *reply = NULL;
  int rc = cli_obs_call(&reply, "status", db, ctl, "status", 10000);
  if (rc) return rc;
  json_object *o = strncmp(reply, "ok ", 3) ? NULL : json_tokener_parse(reply + 3);
  if (!o) {
    fprintf(stderr, "walship: status: %s: unexpected answer: %.200s\n", db ? db : ctl, reply);
    free(reply);
    return CLI_RUNTIME;
  }
  if (json) printf("%s\n", reply + 3);
  else print_status(o);
  json_object_put(o);
  free(reply);
  return CLI_OK;
}

int cmd_status(int argc, char **argv) {
  enum { O_JSON = 256, O_CONTROL };
  static const struct option longopts[] = {
    {"help", no_argument, NULL, 'h'},
    {"config", required_argument, NULL, 'c'},
    {"json", no_argument, NULL, O_JSON},
    {"control", required_argument, NULL, O_CONTROL},
    {NULL, 0, NULL, 0},
  };
  const char *conf = NULL, *ctl = NULL;
  int json = 0, ch, rc = CLI_OK;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "hc:", longopts, NULL)) != -1) {
    switch (ch) {
    case 'h': help(); return CLI_OK;
    case 'c': conf = optarg; break;
    case O_JSON: json = 1; break;
    case O_CONTROL: ctl = optarg; break;
    default: return cli_bad_option("status", optopt, argv, optind);
    }
  }
  int npos = argc - optind;
  if (ctl) {
    if (npos > 1 || conf) return cli_usage("status", "--control names one sidecar");
    return one(npos ? argv[optind] : NULL, ctl, json);
  }
  if (conf) {
    if (npos) return cli_usage("status", "with -c, databases come from the file");
    cfg c;
    char msg[600];
    if (cfg_load(&c, conf, msg, sizeof(msg))) {
      cfg_free(&c);
      fprintf(stderr, "walship: status: %s\n", msg);
      return CLI_USAGE;
    }
    /* the file's control socket path (it then names one database) */
    const char *fctl = c.control && strcmp(c.control, "off") ? c.control : NULL;
    for (size_t i = 0; i < c.ndb; i++) {
      int r = one(c.db[i].path, fctl, json);
      if (r && rc == CLI_OK) rc = r;
    }
    cfg_free(&c);
    return rc;
  }
  if (npos == 0) return cli_usage("status", "name at least one database (or -c FILE)");
  for (int i = optind; i < argc; i++) {
    int r = one(argv[i], NULL, json);
    if (r && rc == CLI_OK) rc = r;
  }
  return rc;
}
