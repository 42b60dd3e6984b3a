/*
** The replicate configuration file: YAML -> cfg (config.h, docs/config.md).
**
** Every scalar goes through env expansion first, then a strict parser for
** its key (the same ones the command-line flags use).  A failure stops at
** the first error and names FILE:LINE:COL (1-based, from libyaml's marks)
** and the key.  Out of memory aborts: this is configuration loading in the
** CLI, before any database is touched.
*/
#include "config.h"
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

typedef struct ld {
  yaml_document_t doc;
  const char *file;
  char *msg;
  size_t msglen;
  int literal_secret;
} ld;

static void *xcalloc(size_t n, size_t sz) {
  void *p = calloc(n ? n : 1, sz);
  if (!p) {
    fputs("walship: out of memory loading the configuration\n", stderr);
    abort();
  }
  return p;
}

static char *xstrdup(const char *s) {
  char *p = xcalloc(strlen(s) + 1, 1);
  memcpy(p, s, strlen(s) + 1);
  return p;
}

__attribute__((format(printf, 4, 5)))
static int bad(ld *l, const yaml_node_t *n, const char *key, const char *fmt, ...) {
  size_t k = (size_t)snprintf(l->msg, l->msglen, "%s:%zu:%zu: %s%s", l->file,
                              n ? n->start_mark.line + 1 : 1,
                              n ? n->start_mark.column + 1 : 1, key ? key : "",
                              key ? ": " : "");
  if (k < l->msglen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->msg + k, l->msglen - k, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static yaml_node_t *node(ld *l, int i) { return yaml_document_get_node(&l->doc, i); }

/* ${VAR}, ${VAR:-default}, $$ -> $.  Anything else after '$' is literal. */
static int expand(ld *l, const yaml_node_t *n, const char *key, const char *in, char **out) {
  size_t cap = strlen(in) + 1, len = 0;
  char *o = xcalloc(cap, 1);
  for (const char *p = in; *p;) {
    const char *add = p;
    size_t addlen = 1;
    char var[256];
    if (p[0] == '$' && p[1] == '$') {
      p += 2;
    } else if (p[0] == '$' && p[1] == '{') {
      const char *e = strchr(p, '}');
      if (!e) {
        free(o);
        return bad(l, n, key, "unterminated ${ in '%s'", in);
      }
      const char *dflt = NULL, *ve = e;
      const char *colon = strstr(p, ":-");
      if (colon && colon < e) dflt = colon + 2, ve = colon;
      size_t vl = (size_t)(ve - (p + 2));
      if (vl == 0 || vl >= sizeof(var)) {
        free(o);
        return bad(l, n, key, "bad variable name in '%s'", in);
      }
      memcpy(var, p + 2, vl);
      var[vl] = 0;
      for (size_t i = 0; i < vl; i++)
        if (!((var[i] >= 'A' && var[i] <= 'Z') || (var[i] >= 'a' && var[i] <= 'z') ||
              (var[i] >= '0' && var[i] <= '9') || var[i] == '_')) {
          free(o);
          return bad(l, n, key, "bad variable name '%s'", var);
        }
      const char *v = getenv(var);
      if (v && !*v && dflt) v = NULL;   /* :- also replaces an empty value */
      if (!v && !dflt) {
        free(o);
        return bad(l, n, key, "environment variable %s is not set (write ${%s:-DEFAULT} "
                   "for a default)", var, var);
      }
      add = v ? v : dflt;
      addlen = v ? strlen(v) : (size_t)(e - dflt);
      p = e + 1;
    } else {
      p++;
    }
    if (len + addlen + 1 > cap) {
      cap = (len + addlen + 1) * 2;
      char *g = realloc(o, cap);
      if (!g) {
        free(o);
        return bad(l, n, key, "out of memory");
      }
      o = g;
    }
    memcpy(o + len, add, addlen);
    len += addlen;
    o[len] = 0;
  }
  *out = o;
  return 0;
}

/* The expanded scalar value of n, or an error naming key. */
static int scalar(ld *l, const yaml_node_t *n, const char *key, char **out) {
  if (n->type != YAML_SCALAR_NODE)
    return bad(l, n, key, "expected a single value, got a %s",
               n->type == YAML_MAPPING_NODE ? "mapping" : "list");
  return expand(l, n, key, (const char *)n->data.scalar.value, out);
}

static int get_str(ld *l, const yaml_node_t *n, const char *key, char **dst) {
  char *v;
  if (scalar(l, n, key, &v)) return -1;
  if (!*v) {
    free(v);
    return bad(l, n, key, "empty value");
  }
  free(*dst);
  *dst = v;
  return 0;
}

static int get_secret(ld *l, const yaml_node_t *n, const char *key, char **dst) {
  if (n->type == YAML_SCALAR_NODE && !strstr((const char *)n->data.scalar.value, "${"))
    l->literal_secret = 1;
  return get_str(l, n, key, dst);
}

static int get_dur(ld *l, const yaml_node_t *n, const char *key, int64_t *dst, int pos) {
  char *v;
  if (scalar(l, n, key, &v)) return -1;
  int64_t ms;
  int r = cli_parse_duration(v, &ms);
  if (r || (pos && ms <= 0))
    r = bad(l, n, key, "bad duration '%s' (examples: %s1s, 250ms, 2m, 24h, 7d)", v,
            pos ? "" : "0, ");
  else
    *dst = ms;
  free(v);
  return r;
}

static int get_uint(ld *l, const yaml_node_t *n, const char *key, uint64_t max,
                    uint64_t min, uint64_t *dst) {
  char *v;
  if (scalar(l, n, key, &v)) return -1;
  uint64_t u;
  int r = 0;
  if (cli_parse_uint(v, max, &u) || u < min)
    r = bad(l, n, key, "want a whole number %llu..%llu, got '%s'", (unsigned long long)min,
            (unsigned long long)max, v);
  else
    *dst = u;
  free(v);
  return r;
}

static int get_bool(ld *l, const yaml_node_t *n, const char *key, int *dst) {
  char *v;
  if (scalar(l, n, key, &v)) return -1;
  int r = 0;
  if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
    *dst = 1;
  else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off"))
    *dst = 0;
  else
    r = bad(l, n, key, "want true or false, got '%s'", v);
  free(v);
  return r;
}

/* A mapping, with no key given twice (YAML forbids it; libyaml does not
** check, and last-wins would silently drop the first value). */
static int is_map(ld *l, const yaml_node_t *n, const char *key) {
  if (n->type != YAML_MAPPING_NODE)
    return bad(l, n, key, "expected a mapping of keys to values");
  for (yaml_node_pair_t *a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top; a++) {
    const yaml_node_t *ka = node(l, a->key);
    if (ka->type != YAML_SCALAR_NODE) continue;
    for (yaml_node_pair_t *b = n->data.mapping.pairs.start; b < a; b++) {
      const yaml_node_t *kb = node(l, b->key);
      if (kb->type == YAML_SCALAR_NODE &&
          strcmp((const char *)ka->data.scalar.value, (const char *)kb->data.scalar.value) == 0)
        return bad(l, ka, (const char *)ka->data.scalar.value,
                   "given twice in one mapping (first at line %zu)",
                   (size_t)kb->start_mark.line + 1);
    }
  }
  return 0;
}

#define FOR_PAIRS(mapnode, kn, vn, k)                                              \
  for (yaml_node_pair_t *pr_ = (mapnode)->data.mapping.pairs.start;                 \
       pr_ < (mapnode)->data.mapping.pairs.top &&                                   \
       ((kn) = node(l, pr_->key), (vn) = node(l, pr_->value),                      \
        (k) = (kn)->type == YAML_SCALAR_NODE ? (const char *)(kn)->data.scalar.value \
                                             : "?", 1);                             \
       pr_++)

/* Database settings, allowed per database and at the top level (defaults).
** 1: handled, 0: not a database key, -1: error. */
static int db_key(ld *l, ws_replicate_opts *ro, const char *k, const yaml_node_t *v) {
  uint64_t u;
  int b;
  if (!strcmp(k, "sync-interval")) return get_dur(l, v, k, &ro->sync_interval_ms, 0) ? -1 : 1;
  if (!strcmp(k, "snapshot-interval"))
    return get_dur(l, v, k, &ro->snapshot_interval_ms, 0) ? -1 : 1;
  if (!strcmp(k, "poll-interval")) return get_dur(l, v, k, &ro->poll_ms, 1) ? -1 : 1;
  if (!strcmp(k, "retention")) return get_dur(l, v, k, &ro->retention_ms, 0) ? -1 : 1;
  if (!strcmp(k, "checkpoint-frames")) {
    if (get_uint(l, v, k, UINT32_MAX, 0, &u)) return -1;
    ro->checkpoint_frames = (uint32_t)u;
    return 1;
  }
  if (!strcmp(k, "compress-level")) {
    if (get_uint(l, v, k, 9, 0, &u)) return -1;
    ro->compress_level = (int)u;
    return 1;
  }
  if (!strcmp(k, "compaction")) {
    if (get_bool(l, v, k, &b)) return -1;
    ro->compaction = b;
    return 1;
  }
  if (!strcmp(k, "wal-max")) {
    char *s;
    if (scalar(l, v, k, &s)) return -1;
    int r = cli_parse_size(s, &ro->wal_max_bytes)
                ? bad(l, v, k, "bad size '%s' (examples: 0, 16MiB, 100MB)", s) : 1;
    free(s);
    return r;
  }
  return 0;
}

static int load_dest(ld *l, cfg_dest *d, const yaml_node_t *m) {
  yaml_node_t *kn, *vn;
  const char *k;
  ws_store_opts init = WS_STORE_OPTS_INIT;
  d->so = init;
  d->retention_ms = -1;
  if (is_map(l, m, "destinations")) return -1;
  FOR_PAIRS(m, kn, vn, k) {
    uint64_t u;
    int b;
    if (!strcmp(k, "url")) {
      if (get_str(l, vn, k, &d->url)) return -1;
    } else if (!strcmp(k, "name")) {
      if (get_str(l, vn, k, &d->name)) return -1;
    } else if (!strcmp(k, "endpoint")) {
      if (get_str(l, vn, k, &d->endpoint)) return -1;
      if (strncmp(d->endpoint, "http://", 7) && strncmp(d->endpoint, "https://", 8))
        return bad(l, vn, k, "want an http:// or https:// URL, got '%s'", d->endpoint);
    } else if (!strcmp(k, "region")) {
      if (get_str(l, vn, k, &d->region)) return -1;
    } else if (!strcmp(k, "storage-class")) {
      if (get_str(l, vn, k, &d->storage_class)) return -1;
    } else if (!strcmp(k, "ca-bundle")) {
      if (get_str(l, vn, k, &d->ca_bundle)) return -1;
    } else if (!strcmp(k, "encryption-key-file")) {
      if (get_str(l, vn, k, &d->key_file)) return -1;
    } else if (!strcmp(k, "addressing")) {
      char *s;
      if (scalar(l, vn, k, &s)) return -1;
      if (!strcmp(s, "auto")) d->so.path_style = 0;
      else if (!strcmp(s, "path")) d->so.path_style = 1;
      else if (!strcmp(s, "virtual-host")) d->so.path_style = 2;
      else {
        bad(l, vn, k, "want auto, path or virtual-host, got '%s'", s);
        free(s);
        return -1;
      }
      free(s);
    } else if (!strcmp(k, "insecure")) {
      if (get_bool(l, vn, k, &b)) return -1;
      d->so.insecure = b;
    } else if (!strcmp(k, "max-retries")) {
      if (get_uint(l, vn, k, 1000, 1, &u)) return -1;
      d->so.max_retries = (int)u;
    } else if (!strcmp(k, "retention")) {
      if (get_dur(l, vn, k, &d->retention_ms, 0)) return -1;
    } else if (!strcmp(k, "sync-interval")) {
      return bad(l, kn, k, "is a database setting: one capture loop ships to every "
                 "destination at once (docs/config.md)");
    } else {
      return bad(l, kn, k, "unknown destination key (known: url, name, endpoint, region, "
                 "addressing, storage-class, ca-bundle, insecure, max-retries, retention, "
                 "encryption-key-file)");
    }
  }
  if (!d->url) return bad(l, m, "destinations", "a destination needs a url");
  return 0;
}

static int load_db(ld *l, cfg_db *db, const ws_replicate_opts *defaults, const yaml_node_t *m) {
  yaml_node_t *kn, *vn;
  const char *k;
  db->ro = *defaults;
  if (is_map(l, m, "databases")) return -1;
  FOR_PAIRS(m, kn, vn, k) {
    int r;
    if (!strcmp(k, "path")) {
      if (get_str(l, vn, k, &db->path)) return -1;
    } else if (!strcmp(k, "name")) {
      if (get_str(l, vn, k, &db->name)) return -1;
    } else if (!strcmp(k, "destinations")) {
      if (vn->type != YAML_SEQUENCE_NODE || vn->data.sequence.items.top == vn->data.sequence.items.start)
        return bad(l, vn, k, "expected a list of one or more destinations");
      size_t n = (size_t)(vn->data.sequence.items.top - vn->data.sequence.items.start);
      db->d = xcalloc(n, sizeof(*db->d));
      for (size_t i = 0; i < n; i++) {
        db->nd = i + 1;
        if (load_dest(l, &db->d[i], node(l, vn->data.sequence.items.start[i]))) return -1;
      }
    } else if ((r = db_key(l, &db->ro, k, vn)) != 0) {
      if (r < 0) return -1;
    } else {
      return bad(l, kn, k, "unknown database key (known: path, name, destinations, "
                 "sync-interval, snapshot-interval, checkpoint-frames, wal-max, "
                 "compress-level, poll-interval, retention, compaction)");
    }
  }
  if (!db->path) return bad(l, m, "databases", "a database needs a path");
  if (!db->nd) return bad(l, m, "databases", "database %s has no destinations", db->path);
  return 0;
}

static int load_aws(ld *l, cfg *c, const yaml_node_t *m) {
  yaml_node_t *kn, *vn;
  const char *k;
  if (is_map(l, m, "aws")) return -1;
  FOR_PAIRS(m, kn, vn, k) {
    if (!strcmp(k, "access-key-id")) {
      if (get_str(l, vn, k, &c->aws_key_id)) return -1;
    } else if (!strcmp(k, "secret-access-key")) {
      if (get_secret(l, vn, k, &c->aws_secret)) return -1;
    } else if (!strcmp(k, "session-token")) {
      if (get_secret(l, vn, k, &c->aws_token)) return -1;
    } else {
      return bad(l, kn, k, "unknown aws key (known: access-key-id, secret-access-key, "
                 "session-token)");
    }
  }
  if (!c->aws_key_id != !c->aws_secret)
    return bad(l, m, "aws", "access-key-id and secret-access-key go together");
  return 0;
}

/* 0 if s is HOST:PORT with a numeric port (the address itself is resolved
** when the endpoint starts). */
static int check_hostport(const char *s) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || !colon[1] || strlen(colon + 1) > 5) return -1;
  for (const char *p = colon + 1; *p; p++)
    if (*p < '0' || *p > '9') return -1;
  return atoi(colon + 1) > 65535 ? -1 : 0;
}

static int load_top(ld *l, cfg *c, const yaml_node_t *root) {
  yaml_node_t *kn, *vn;
  const char *k;
  ws_replicate_opts defaults = WS_REPLICATE_OPTS_INIT;
  const yaml_node_t *dbs = NULL, *ctl = NULL;
  if (!root) return bad(l, NULL, NULL, "empty configuration");
  if (is_map(l, root, NULL)) return -1;
  /* Settings first, whatever their order in the file: databases inherit the
  ** top-level database settings as defaults. */
  FOR_PAIRS(root, kn, vn, k) {
    int r;
    if (!strcmp(k, "databases")) {
      dbs = vn;
    } else if (!strcmp(k, "log-level")) {
      if (get_str(l, vn, k, &c->log_level)) return -1;
      if (strcasecmp(c->log_level, "error") && strcasecmp(c->log_level, "warn") &&
          strcasecmp(c->log_level, "warning") && strcasecmp(c->log_level, "info") &&
          strcasecmp(c->log_level, "debug"))
        return bad(l, vn, k, "want error, warn, info or debug, got '%s'", c->log_level);
    } else if (!strcmp(k, "log-format")) {
      if (get_str(l, vn, k, &c->log_format)) return -1;
      if (strcmp(c->log_format, "text") && strcmp(c->log_format, "json"))
        return bad(l, vn, k, "want text or json, got '%s'", c->log_format);
    } else if (!strcmp(k, "log-file")) {
      if (get_str(l, vn, k, &c->log_file)) return -1;
    } else if (!strcmp(k, "aws")) {
      if (load_aws(l, c, vn)) return -1;
    } else if (!strcmp(k, "metrics")) {
      if (get_str(l, vn, k, &c->metrics)) return -1;
      if (check_hostport(c->metrics))
        return bad(l, vn, k, "want HOST:PORT (e.g. 127.0.0.1:9090, port 0..65535), got '%s'",
                   c->metrics);
    } else if (!strcmp(k, "metrics-allow-remote")) {
      if (get_bool(l, vn, k, &c->metrics_remote)) return -1;
    } else if (!strcmp(k, "control")) {
      if (get_str(l, vn, k, &c->control)) return -1;
      ctl = vn;
    } else if ((r = db_key(l, &defaults, k, vn)) != 0) {
      if (r < 0) return -1;
    } else {
      return bad(l, kn, k, "unknown key (known: databases, log-level, log-format, "
                 "log-file, aws, metrics, metrics-allow-remote, control, and database "
                 "settings as defaults)");
    }
  }
  if (!dbs) return bad(l, root, "databases", "missing: list the databases to replicate");
  if (dbs->type != YAML_SEQUENCE_NODE || dbs->data.sequence.items.top == dbs->data.sequence.items.start)
    return bad(l, dbs, "databases", "expected a list of one or more databases");
  size_t n = (size_t)(dbs->data.sequence.items.top - dbs->data.sequence.items.start);
  /* one socket answers for one sidecar database (its waits and snapshots) */
  if (ctl && strcmp(c->control, "off") && n > 1)
    return bad(l, ctl, "control", "a socket path serves one database, this file has %zu "
               "(leave it out for each database's default socket, or 'off')", n);
  c->db = xcalloc(n, sizeof(*c->db));
  for (size_t i = 0; i < n; i++) {
    c->ndb = i + 1;
    if (load_db(l, &c->db[i], &defaults, node(l, dbs->data.sequence.items.start[i])))
      return -1;
  }
  return 0;
}

int cfg_load(cfg *out, const char *path, char *msg, size_t msglen) {
  yaml_parser_t p;
  ld l;
  memset(out, 0, sizeof(*out));
  memset(&l, 0, sizeof(l));
  l.file = path;
  l.msg = msg;
  l.msglen = msglen;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(msg, msglen, "%s: %s", path, strerror(errno));
    return -1;
  }
  out->file = xstrdup(path);
  if (!yaml_parser_initialize(&p)) {
    fclose(f);
    snprintf(msg, msglen, "%s: cannot initialize the YAML parser", path);
    return -1;
  }
  yaml_parser_set_input_file(&p, f);
  int rc = -1;
  if (!yaml_parser_load(&p, &l.doc)) {
    snprintf(msg, msglen, "%s:%zu:%zu: %s%s%s", path, p.problem_mark.line + 1,
             p.problem_mark.column + 1, p.problem ? p.problem : "invalid YAML",
             p.context ? " " : "", p.context ? p.context : "");
    yaml_parser_delete(&p);
    fclose(f);
    return -1;
  }
  rc = load_top(&l, out, yaml_document_get_root_node(&l.doc));
  out->literal_secret = l.literal_secret;
  yaml_document_delete(&l.doc);
  yaml_parser_delete(&p);
  fclose(f);
  return rc;
}

void cfg_add_simple(cfg *c, const char *db, const char *url, const ws_store_opts *so) {
  cfg_db *v = xcalloc(c->ndb + 1, sizeof(*v));
  if (c->ndb) memcpy(v, c->db, c->ndb * sizeof(*v));
  free(c->db);
  c->db = v;
  cfg_db *d = &c->db[c->ndb++];
  ws_replicate_opts init = WS_REPLICATE_OPTS_INIT;
  d->ro = init;
  d->path = xstrdup(db);
  d->d = xcalloc(1, sizeof(*d->d));
  d->nd = 1;
  d->d->url = xstrdup(url);
  d->d->so = *so;
  d->d->retention_ms = -1;
#define DUP(f) d->d->f = so->f ? xstrdup(so->f) : NULL
  DUP(endpoint);
  DUP(region);
  DUP(storage_class);
  DUP(ca_bundle);
#undef DUP
}

int cfg_finish(cfg *c, char *msg, size_t msglen) {
  for (size_t i = 0; i < c->ndb; i++) {
    cfg_db *db = &c->db[i];
    for (size_t j = 0; j < i; j++)
      if (!strcmp(c->db[j].path, db->path)) {
        snprintf(msg, msglen, "%s: database %s is listed twice", c->file ? c->file : "replicate",
                 db->path);
        return -1;
      }
    free(db->wd);
    db->wd = xcalloc(db->nd, sizeof(*db->wd));
    for (size_t j = 0; j < db->nd; j++) {
      cfg_dest *d = &db->d[j];
      d->so.endpoint = d->endpoint;
      d->so.region = d->region;
      d->so.storage_class = d->storage_class;
      d->so.ca_bundle = d->ca_bundle;
      if (!d->so.encryption_key_file) d->so.encryption_key_file = d->key_file;
      ws_dest w = WS_DEST_INIT;
      w.name = d->name ? d->name : d->url;
      w.url = d->url;
      w.store = &d->so;
      w.retention_ms = d->retention_ms;
      db->wd[j] = w;
    }
    db->ro.db_path = db->path;
    db->ro.store_url = db->d[0].url;
    db->ro.store = &db->d[0].so;
    /* one destination: the plain store, exactly as `replicate DB STORE` */
    db->ro.dests = db->nd > 1 ? db->wd : NULL;
    db->ro.ndests = db->nd > 1 ? db->nd : 0;
  }
  return 0;
}

/* "1h", "90s", "250ms": the largest unit that divides exactly. */
static void fmt_dur(char *b, size_t n, int64_t ms) {
  static const struct { const char *u; int64_t ms; } units[] = {
    {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
  if (ms == 0) {
    snprintf(b, n, "0");
    return;
  }
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
    if (ms % units[i].ms == 0) {
      snprintf(b, n, "%lld%s", (long long)(ms / units[i].ms), units[i].u);
      return;
    }
  snprintf(b, n, "%lldms", (long long)ms);
}

static void fmt_size(char *b, size_t n, uint64_t v) {
  if (v && v % (1u << 30) == 0) snprintf(b, n, "%lluGiB", (unsigned long long)(v >> 30));
  else if (v && v % (1u << 20) == 0) snprintf(b, n, "%lluMiB", (unsigned long long)(v >> 20));
  else if (v && v % (1u << 10) == 0) snprintf(b, n, "%lluKiB", (unsigned long long)(v >> 10));
  else snprintf(b, n, "%llu", (unsigned long long)v);
}

/* A YAML double-quoted scalar (paths and URLs may hold ':' or '#'). */
static void q(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

/* A URL with "user:password@" in its authority has the password masked. */
static void q_url(FILE *f, const char *url, int mask) {
  const char *a = strstr(url, "://"), *at, *colon, *slash;
  if (!mask || !a || !(at = strchr(a + 3, '@')) ||
      ((slash = strchr(a + 3, '/')) && slash < at) ||
      !(colon = memchr(a + 3, ':', (size_t)(at - (a + 3))))) {
    q(f, url);
    return;
  }
  char *m = xcalloc(strlen(url) + 16, 1);
  memcpy(m, url, (size_t)(colon + 1 - url));
  strcat(m, "********");
  strcat(m, at);
  q(f, m);
  free(m);
}

static void print_db(FILE *f, const cfg_db *d, int mask) {
  char b1[32], b2[32], b3[32], b4[32], b5[32];
  fmt_dur(b1, sizeof(b1), d->ro.sync_interval_ms);
  fmt_dur(b2, sizeof(b2), d->ro.snapshot_interval_ms);
  fmt_dur(b3, sizeof(b3), d->ro.poll_ms);
  fmt_dur(b4, sizeof(b4), d->ro.retention_ms);
  fmt_size(b5, sizeof(b5), d->ro.wal_max_bytes);
  fprintf(f, "  - path: ");
  q(f, d->path);
  fprintf(f, "\n");
  if (d->name) {
    fprintf(f, "    name: ");
    q(f, d->name);
    fprintf(f, "\n");
  }
  fprintf(f, "    sync-interval: %s\n    snapshot-interval: %s\n    checkpoint-frames: %u\n"
          "    wal-max: %s\n    compress-level: %d\n    poll-interval: %s\n"
          "    retention: %s\n    compaction: %s\n    destinations:\n",
          b1, b2, d->ro.checkpoint_frames, b5, d->ro.compress_level, b3, b4,
          d->ro.compaction ? "true" : "false");
  for (size_t i = 0; i < d->nd; i++) {
    const cfg_dest *x = &d->d[i];
    fprintf(f, "      - url: ");
    q_url(f, x->url, mask);
    fprintf(f, "\n");
#define S(key, v) if (v) { fprintf(f, "        " key ": "); q(f, v); fprintf(f, "\n"); }
    S("name", x->name);
    S("endpoint", x->endpoint);
    S("region", x->region);
    S("storage-class", x->storage_class);
    S("ca-bundle", x->ca_bundle);
    S("encryption-key-file", x->so.encryption_key_file);
#undef S
    if (x->so.path_style > 0)
      fprintf(f, "        addressing: %s\n", x->so.path_style == 1 ? "path" : "virtual-host");
    if (x->so.insecure) fprintf(f, "        insecure: true\n");
    if (x->so.max_retries) fprintf(f, "        max-retries: %d\n", x->so.max_retries);
    fmt_dur(b1, sizeof(b1), x->retention_ms >= 0 ? x->retention_ms : d->ro.retention_ms);
    fprintf(f, "        retention: %s\n", b1);
  }
}

void cfg_print(FILE *f, const cfg *c, int mask) {
  if (c->log_level) fprintf(f, "log-level: %s\n", c->log_level);
  if (c->log_format) fprintf(f, "log-format: %s\n", c->log_format);
  if (c->log_file) {
    fprintf(f, "log-file: ");
    q(f, c->log_file);
    fprintf(f, "\n");
  }
  if (c->metrics) {
    fprintf(f, "metrics: ");
    q(f, c->metrics);
    fprintf(f, "\n");
  }
  if (c->metrics_remote) fprintf(f, "metrics-allow-remote: true\n");
  if (c->control) {
    fprintf(f, "control: ");
    q(f, c->control);
    fprintf(f, "\n");
  }
  if (c->aws_key_id || c->aws_token) {
    fprintf(f, "aws:\n");
    if (c->aws_key_id) {
      fprintf(f, "  access-key-id: ");
      q(f, c->aws_key_id);
      fprintf(f, "\n  secret-access-key: ");
      q(f, mask ? "********" : c->aws_secret);
      fprintf(f, "\n");
    }
    if (c->aws_token) {
      fprintf(f, "  session-token: ");
      q(f, mask ? "********" : c->aws_token);
      fprintf(f, "\n");
    }
  }
  fprintf(f, "databases:\n");
  for (size_t i = 0; i < c->ndb; i++) print_db(f, &c->db[i], mask);
}

char *cfg_db_fingerprint(const cfg_db *d) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) {
    fputs("walship: out of memory\n", stderr);
    abort();
  }
  print_db(f, d, 0);
  fclose(f);
  return buf;
}

void cfg_db_free(cfg_db *d) {
  for (size_t j = 0; j < d->nd; j++) {
    cfg_dest *x = &d->d[j];
    free(x->name);
    free(x->url);
    free(x->endpoint);
    free(x->region);
    free(x->storage_class);
    free(x->ca_bundle);
    free(x->key_file);
  }
  free(d->d);
  free(d->wd);
  free(d->path);
  free(d->name);
  memset(d, 0, sizeof(*d));
}

void cfg_free_dbs(cfg *c) {
  for (size_t i = 0; i < c->ndb; i++) cfg_db_free(&c->db[i]);
  free(c->db);
  c->db = NULL;
  c->ndb = 0;
}

void cfg_free(cfg *c) {
  if (!c) return;
  cfg_free_dbs(c);
  free(c->file);
  free(c->log_level);
  free(c->log_format);
  free(c->log_file);
  free(c->metrics);
  free(c->control);
  if (c->aws_secret) explicit_bzero(c->aws_secret, strlen(c->aws_secret));
  if (c->aws_token) explicit_bzero(c->aws_token, strlen(c->aws_token));
  free(c->aws_key_id);
  free(c->aws_secret);
  free(c->aws_token);
  memset(c, 0, sizeof(*c));
}
