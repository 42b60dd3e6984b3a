/*
** CLI helpers shared by every command: the log hook (text or JSON lines, to
** stderr or --log-file, one write per line), parsers for
** durations and byte sizes, and the mapping from library codes to exit
** codes.  Parsers are strict (a trailing unit typo is an error, not a
** default) and check for overflow.
*/
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
static const char *const level_json[] = {"error", "warn", "info", "debug"};

/* Where log lines go: stderr, or --log-file (reopened in place on SIGHUP by
** dup2, so threads logging meanwhile never see a closed descriptor). */
static int log_fd = 2;
static int log_json;
static int log_level = WS_LOG_INFO;
static int log_hooked;
static char *log_path;
static __thread const char *log_db; /* the database this thread replicates */

/* "text key=value ...": the key=value tokens as JSON fields (numbers as
** numbers), the whole line as "msg". */
static void json_fields(json_object *o, const char *msg) {
  const char *p = msg;
  while (*p) {
    while (*p == ' ') p++;
    const char *tok = p;
    while (*p && *p != ' ') p++;
    const char *eq = memchr(tok, '=', (size_t)(p - tok));
    if (!eq || eq == tok || eq - tok > 40) continue;
    char key[48];
    int ok = 1;
    for (const char *k = tok; k < eq; k++)
      if (!((*k >= 'a' && *k <= 'z') || *k == '_' || (k > tok && *k >= '0' && *k <= '9')))
        ok = 0;
    if (!ok) continue;
    memcpy(key, tok, (size_t)(eq - tok));
    key[eq - tok] = 0;
    if (!strcmp(key, "time") || !strcmp(key, "level") || !strcmp(key, "component") ||
        !strcmp(key, "msg") || !strcmp(key, "db"))
      continue;
    size_t vl = (size_t)(p - eq - 1);
    char val[512];
    if (vl >= sizeof(val)) vl = sizeof(val) - 1;
    memcpy(val, eq + 1, vl);
    val[vl] = 0;
    int num = vl > 0 && vl < 19;
    for (size_t i = 0; i < vl; i++)
      if (val[i] < '0' || val[i] > '9') num = 0;
    json_object_object_add(o, key, num ? json_object_new_int64(strtoll(val, NULL, 10))
                                       : json_object_new_string(val));
  }
}

static void log_hook(void *ud, int level, const char *component, const char *msg) {
  struct timespec ts;
  struct tm tm;
  char when[48], line[2048], clean[1100];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + strlen(when), 16, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
  if (level < 0 || level > 3) level = 0;
  /* one event, one line */
  snprintf(clean, sizeof(clean), "%s", msg);
  for (char *c = clean; *c; c++)
    if (*c == '\n' || *c == '\r') *c = ' ';
  int n;
  if (log_json) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "time", json_object_new_string(when));
    json_object_object_add(o, "level", json_object_new_string(level_json[level]));
    json_object_object_add(o, "component", json_object_new_string(component));
    if (log_db) json_object_object_add(o, "db", json_object_new_string(log_db));
    json_object_object_add(o, "msg", json_object_new_string(clean));
    json_fields(o, clean);
    n = snprintf(line, sizeof(line), "%s\n",
                 json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
  } else {
    n = snprintf(line, sizeof(line), "%s %s %s: %s%s%s\n", when, level_names[level],
                 component, clean, log_db ? " db=" : "", log_db ? log_db : "");
  }
  if (n < 0) return;
  if ((size_t)n >= sizeof(line)) {
    n = sizeof(line) - 1;
    line[n - 1] = '\n';
  }
  /* one write per line keeps lines whole when threads log together */
  ssize_t w = write(log_fd, line, (size_t)n);
  (void)w;
}

int cli_set_log_level(const char *name) {
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(name, level_names[i]) == 0 ||
        (i == 1 && strcasecmp(name, "warning") == 0)) {
      /* unchanged on a reload: do not rewrite what worker threads read */
      if (log_level == i && log_hooked) return 0;
      log_level = i;
      log_hooked = 1;
      ws_set_log(log_hook, NULL, i);
      return 0;
    }
  }
  return -1;
}

int cli_log_setup(const char *format, const char *file, char *msg, size_t msglen) {
  if (format) {
    if (strcmp(format, "text") && strcmp(format, "json")) {
      snprintf(msg, msglen, "log format '%s': want text or json", format);
      return -1;
    }
    log_json = !strcmp(format, "json");
  }
  if (file && (!log_path || strcmp(file, log_path))) {
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
      snprintf(msg, msglen, "log file %s: %s", file, strerror(errno));
      return -1;
    }
    char *dup = strdup(file);
    if (!dup) {
      close(fd);
      snprintf(msg, msglen, "log file %s: out of memory", file);
      return -1;
    }
    if (log_fd == 2) {
      log_fd = fd;
    } else {
      dup2(fd, log_fd);
      close(fd);
    }
    free(log_path);
    log_path = dup;
  }
  return 0;
}

int cli_log_reopen(char *msg, size_t msglen) {
  if (!log_path) return 0;
  int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    snprintf(msg, msglen, "reopen log file %s: %s", log_path, strerror(errno));
    return -1;
  }
  if (dup2(fd, log_fd) < 0) {
    snprintf(msg, msglen, "reopen log file %s: %s", log_path, strerror(errno));
    close(fd);
    return -1;
  }
  close(fd);
  return 0;
}

void cli_log_set_db(const char *name) { log_db = name; }

int64_t cli_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cli_log(int level, const char *fmt, ...) {
  if (level > log_level) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  log_hook(NULL, level, "walship", buf);
}

/* "12" or "1.5": an integer part and up to 9 fraction digits; *end after. */
static int parse_decimal(const char *s, uint64_t *ip, uint64_t *frac,
                         uint64_t *scale, const char **end) {
  uint64_t v = 0;
  const char *p = s;
  if (*p < '0' || *p > '9') return -1;
  for (; *p >= '0' && *p <= '9'; p++) {
    uint64_t dgt = (uint64_t)(*p - '0');
    if (v > UINT64_MAX / 10 || v * 10 > UINT64_MAX - dgt) return -1;
    v = v * 10 + dgt;
  }
  *frac = 0;
  *scale = 1;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9') return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
      if (*scale >= 1000000000u) return -1;
      *frac = *frac * 10 + (uint64_t)(*p - '0');
      *scale *= 10;
    }
  }
  *ip = v;
  *end = p;
  return 0;
}

/* ip.frac * unit, rounded down, refusing overflow. */
static int scale_by(uint64_t ip, uint64_t frac, uint64_t scale, uint64_t unit,
                    uint64_t max, uint64_t *out) {
  if (unit && ip > max / unit) return -1;
  uint64_t v = ip * unit;
  /* frac < scale <= 1e9 and unit <= 2^50 would overflow: split the unit */
  uint64_t f = unit / scale * frac + (unit % scale) * frac / scale;
  if (f > max - v) return -1;
  *out = v + f;
  return 0;
}

int cli_parse_duration(const char *s, int64_t *ms) {
  static const struct { const char *u; uint64_t ms; } units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
  };
  uint64_t ip, frac, scale, v;
  const char *end;
  if (parse_decimal(s, &ip, &frac, &scale, &end)) return -1;
  if (!*end) {              /* a bare number is only unambiguous as zero */
    if (ip || frac) return -1;
    *ms = 0;
    return 0;
  }
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if (strcmp(end, units[i].u) == 0) {
      if (scale_by(ip, frac, scale, units[i].ms, INT64_MAX, &v)) return -1;
      *ms = (int64_t)v;
      return 0;
    }
  }
  return -1;
}

int cli_parse_size(const char *s, uint64_t *bytes) {
  static const struct { const char *u; uint64_t n; } units[] = {
    {"", 1}, {"B", 1},
    {"KB", 1000ull}, {"MB", 1000000ull}, {"GB", 1000000000ull}, {"TB", 1000000000000ull},
    {"K", 1ull << 10}, {"M", 1ull << 20}, {"G", 1ull << 30}, {"T", 1ull << 40},
    {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
  };
  uint64_t ip, frac, scale;
  const char *end;
  if (parse_decimal(s, &ip, &frac, &scale, &end)) return -1;
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
    if (strcasecmp(end, units[i].u) == 0) {
      if (units[i].n == 1 && frac) return -1;    /* no fractional bytes */
      return scale_by(ip, frac, scale, units[i].n, UINT64_MAX, bytes);
    }
  return -1;
}

int cli_parse_uint(const char *s, uint64_t max, uint64_t *out) {
  uint64_t ip, frac, scale;
  const char *end;
  if (parse_decimal(s, &ip, &frac, &scale, &end) || *end || scale != 1 || ip > max)
    return -1;
  *out = ip;
  return 0;
}

int cli_exit_code(int code) {
  switch (code) {
  case WS_OK: return CLI_OK;
  case WS_EINVAL: return CLI_USAGE;
  case WS_ECORRUPT: case WS_EGAP: case WS_EVERIFY: case WS_ENOTWAL:
    return CLI_REFUSED;
  case WS_EEXIST: return CLI_EXISTS;
  default: return CLI_RUNTIME;
  }
}

int cli_fail(const char *cmd, const ws_err *err) {
  fprintf(stderr, "walship: %s: %s\n", cmd,
          err->msg[0] ? err->msg : ws_strerror(err->code));
  return cli_exit_code(err->code ? err->code : WS_ERROR);
}

int cli_usage(const char *cmd, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "walship: %s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nsee 'walship %s --help'\n", cmd);
  return CLI_USAGE;
}

void cli_human_bytes(char *out, size_t n, double b) {
  static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (b >= 1024 && i < 4) { b /= 1024; i++; }
  snprintf(out, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

int cli_one_store(const char *cmd, int nargs) {
  if (nargs == 1) return CLI_OK;
  return nargs ? cli_usage(cmd, "expected one STORE, got %d arguments", nargs)
               : cli_usage(cmd, "missing STORE");
}

int cli_bad_option(const char *cmd, int optopt_, char **argv, int optind_) {
  /* getopt reports a long option's missing value with optopt = its code */
  if (optopt_ > 0 && optopt_ < 128)
    return cli_usage(cmd, "bad or incomplete option -%c", optopt_);
  return cli_usage(cmd, "bad or incomplete option %s", argv[optind_ - 1]);
}

static volatile int *stop_target;

static void on_stop_signal(int sig) {
  (void)sig;
  if (stop_target) *stop_target = 1;
}

int cli_on_stop_signals(volatile int *flag) {
  struct sigaction sa;
  stop_target = flag;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
    perror("walship: sigaction");
    return -1;
  }
  return 0;
}

int cli_store_option(ws_store_opts *so, const char *cmd, int ch, const char *arg) {
  uint64_t n;
  switch (ch) {
  case CLI_O_ENDPOINT:
    if (strncmp(arg, "http://", 7) != 0 && strncmp(arg, "https://", 8) != 0) {
      cli_usage(cmd, "--endpoint wants an http:// or https:// URL, got '%s'", arg);
      return -1;
    }
    so->endpoint = arg;
    return 1;
  case CLI_O_REGION: so->region = arg; return 1;
  case CLI_O_PATH_STYLE: so->path_style = 1; return 1;
  case CLI_O_VHOST: so->path_style = 2; return 1;
  case CLI_O_STORAGE_CLASS: so->storage_class = arg; return 1;
  case CLI_O_CA_BUNDLE: so->ca_bundle = arg; return 1;
  case CLI_O_INSECURE: so->insecure = 1; return 1;
  case CLI_O_KEY_FILE: so->encryption_key_file = arg; return 1;
  case CLI_O_RETRIES:
    if (cli_parse_uint(arg, 1000, &n) || n == 0) {
      cli_usage(cmd, "--max-retries wants a number 1..1000, got '%s'", arg);
      return -1;
    }
    so->max_retries = (int)n;
    return 1;
  }
  return 0;
}

int cli_parse_time(const char *s, int64_t *ms) {
  struct tm tm;
  memset(&tm, 0, sizeof(tm));
  const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!p) p = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
  if (!p) return -1;
  int64_t frac = 0;
  if (*p == '.') { /* milliseconds, extra digits ignored */
    int digits = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, digits++)
      if (digits < 3) frac = frac * 10 + (*p - '0');
    if (digits == 0) return -1;
    for (; digits < 3; digits++) frac *= 10;
  }
  int64_t off = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p == '-' ? -1 : 1, hh, mm;
    if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59) return -1;
    off = sign * (hh * 3600 + mm * 60);
    p += 6;
  }
  if (*p) return -1;
  time_t t = timegm(&tm);
  if (t == (time_t)-1) return -1;
  *ms = ((int64_t)t - off) * 1000 + frac;
  return 0;
}

int cli_common_option(ws_store_opts *so, const char *cmd, int ch, char **argv) {
  if (ch == CLI_O_LOG) {
    if (cli_set_log_level(optarg)) return cli_usage(cmd, "unknown log level '%s'", optarg);
    return -1;
  }
  int r = cli_store_option(so, cmd, ch, optarg);
  if (r < 0) return CLI_USAGE;
  if (r == 0) return cli_bad_option(cmd, optopt, argv, optind);
  return -1;
}
