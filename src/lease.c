/*
** Single-writer fencing: a lease record at WS_LEASE_NAME in the store.
**
** The record is a small JSON object (owner "host:pid:random", host, pid,
** db, epoch, renewed_ms, expires_ms) written through the store like any
** object, so it is encrypted when the store is.
**
** Conditional writes are used when the store offers them
** (ws_store_can_put_if: the file store on a local file system, s3 unless
** WALSHIP_S3_CONDITIONAL_WRITES=0, and the encrypting / fan-out stores over
** them) and a probe at acquire shows the store honours them: a server
** behind an s3 store may ignore If-None-Match / If-Match (s3rver does) and
** turn every conditional write into a plain one, with no read-back.  The
** probe writes a scratch object lease/probe-RANDOM, asks put_if to create
** it again ("must not exist": must be refused), then to replace it
** if-match a token it cannot have (must be refused), and deletes it — per
** destination of a fan-out, through any encryption, so each destination
** answers for itself.  On S3 that is four requests once per sidecar start
** (three when the first condition is already ignored); ls and restore
** never take a lease and pay nothing.  A store error during the probe is
** the acquire's error, not a verdict.  WALSHIP_S3_CONDITIONAL_WRITES=1
** trusts the store's offer without probing.
**
** Protocol with conditional writes:
**   acquire  take the record's version token, then read the record; a live
**            record of another owner refuses (unless its process is gone,
**            below); otherwise put_if ours with epoch + 1: "must not exist"
**            when there was no record, else "if-match" the token taken
**            before the read.  Of two sidecars racing, exactly one put_if
**            succeeds; the other's fails (WS_EEXIST), it reads again and
**            refuses naming the winner.  A takeover after expiry is thus a
**            compare-and-swap on the expired record: it cannot overwrite a
**            successor that took over in between.
**   tick     once a third of the TTL has passed, put_if a new expiry
**            if-match the token of our last write; a failed condition means
**            someone else wrote the record: read it, stop (WS_ELOCKED).
**            (Only if the record still names us with our epoch — a partial
**            fan-out write, a token changed by the file system — is its
**            current token adopted and the renewal retried once: nobody
**            else writes our owner string.)
** Protocol without them (http, s3 on a server that ignores them, file on
** a network file system, and any store wrapping one):
**   acquire  read the record; a live record (expires_ms in the future) of
**            another owner refuses, unless it names a process of this host
**            that no longer exists (a crashed sidecar restarted at once);
**            otherwise write ours with epoch + 1, wait a settle time (twice
**            the write's latency, at least SETTLE_MIN_MS), read it back:
**            if another owner's record replaced ours meanwhile, that owner
**            won the race and we refuse.
**   tick     before every upload: once a third of the TTL has passed, read
**            (still ours? else stop: WS_ELOCKED) and write a new expiry.  A
**            sidecar that was paused past its expiry therefore checks
**            before its next upload.
**   release  (both) on a clean stop: delete the record (if still ours), so
**            a successor takes over at once and a stopped store holds only
**            snap/ and seg/ objects.  Epochs therefore count takeovers
**            since the last clean stop.  The delete is not conditional: a
**            successor can only have written in between if our lease had
**            expired, and then its own next renewal fails and it stops.
** What remains without conditional writes is a read-check-write window:
** two writers that both read "free" and both write within the settle time
** can each see its own record on read-back only if the store reorders or
** caches reads.  With or without them, a writer paused in the middle of an
** upload can land that one object after it lost the lease (a lease fences
** the writer's decisions, not each object).  docs/SECURITY.md says so per
** store type.
*/
#include "lease.h"
#include "common.h"
#include "walship/dest.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SETTLE_MIN_MS 200
#define REC_MAX 4096

struct ws_lease {
  ws_store *st;
  char db[256];
  uint64_t epoch;
  int64_t ttl_ms;
  int64_t renewed_mono;      /* when we last wrote our record */
  int cond;                  /* the store offers conditional writes */
  char etag[WS_STORE_ETAG_MAX]; /* cond: token of our last write */
};

static char self_[128], host_[64];
static pthread_once_t self_once_ = PTHREAD_ONCE_INIT;

static void self_init(void) {
  uint8_t r[6] = {0};
  if (gethostname(host_, sizeof(host_) - 1) != 0) strcpy(host_, "unknown");
  host_[sizeof(host_) - 1] = 0;
  ws_random_id(r, sizeof(r));
  snprintf(self_, sizeof(self_), "%s:%ld:%02x%02x%02x%02x%02x%02x", host_, (long)getpid(),
           r[0], r[1], r[2], r[3], r[4], r[5]);
}

static const char *self(void) {
  pthread_once(&self_once_, self_init);
  return self_;
}

static int64_t ttl_ms(void) {
  const char *e = getenv("WALSHIP_LEASE_TTL_MS");
  char *end;
  long long v = e && *e ? strtoll(e, &end, 10) : 0;
  return e && *e && !*end && v >= 100 ? (int64_t)v : WS_LEASE_TTL_MS;
}

static void copy_str(char *dst, size_t cap, json_object *o, const char *key) {
  json_object *v;
  dst[0] = 0;
  if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
    snprintf(dst, cap, "%s", json_object_get_string(v));
}

static int64_t get_i64(json_object *o, const char *key) {
  json_object *v;
  return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int)
             ? json_object_get_int64(v) : 0;
}

static int read_one(int *found, ws_lease_rec *r, ws_store *st, ws_err *err) {
  void *buf = NULL;
  size_t n = 0;
  ws_err e = WS_ERR_INIT;
  memset(r, 0, sizeof(*r));
  int rc = ws_store_get_buf(&buf, &n, st, WS_LEASE_NAME, 0, 0, REC_MAX, &e);
  if (rc == WS_ENOTFOUND) {
    *found = 0;
    return WS_OK;
  }
  if (rc) {
    *err = e;
    return rc;
  }
  json_tokener *tok = json_tokener_new();
  json_object *o = tok ? json_tokener_parse_ex(tok, buf, (int)n) : NULL;
  if (!o || !json_object_is_type(o, json_type_object) ||
      json_tokener_get_error(tok) != json_tokener_success) {
    rc = ws_fail(err, WS_ECORRUPT, "lease record %s in store %s is not a JSON object",
                 WS_LEASE_NAME, st->url);
  } else {
    copy_str(r->owner, sizeof(r->owner), o, "owner");
    copy_str(r->host, sizeof(r->host), o, "host");
    copy_str(r->db, sizeof(r->db), o, "db");
    r->pid = (long)get_i64(o, "pid");
    r->epoch = (uint64_t)get_i64(o, "epoch");
    r->renewed_ms = get_i64(o, "renewed_ms");
    r->expires_ms = get_i64(o, "expires_ms");
    if (!r->owner[0])
      rc = ws_fail(err, WS_ECORRUPT, "lease record %s in store %s has no owner",
                   WS_LEASE_NAME, st->url);
    else
      *found = 1;
  }
  json_object_put(o);
  if (tok) json_tokener_free(tok);
  free(buf);
  return rc;
}

/* Several destinations: each member's record, not the fan-out's first
** answer, so a foreign lease on any destination counts (and a destination
** without a record is no warning). */
int ws_lease_read(int *found, ws_lease_rec *r, ws_store *st, ws_err *err) {
  ws_store *const *m = NULL;
  size_t n = 0;
  ws_store_fanout_members(st, &m, &n);
  if (n == 0) return read_one(found, r, st, err);
  ws_lease_rec mine, other;
  int have_mine = 0, have_other = 0;
  for (size_t i = 0; i < n; i++) {
    int f = 0;
    ws_lease_rec x;
    int rc = read_one(&f, &x, m[i], err);
    if (rc) return rc;
    if (!f) continue;
    if (strcmp(x.owner, self()) == 0) {
      if (!have_mine) mine = x;
      have_mine = 1;
    } else if (!have_other) {
      other = x;
      have_other = 1;
    }
  }
  *found = have_mine || have_other;
  if (have_other) *r = other;
  else if (have_mine) *r = mine;
  return WS_OK;
}

/* Write our record; with conditional writes, only if the record's token
** is if_match (NULL: only if there is no record), WS_EEXIST otherwise. */
static int write_rec(ws_lease *l, int64_t now, int64_t expires, const char *if_match,
                     ws_err *err) {
  json_object *o = json_object_new_object();
  if (!o) return ws_fail(err, WS_ENOMEM, "lease record: out of memory");
  json_object_object_add(o, "owner", json_object_new_string(self()));
  json_object_object_add(o, "host", json_object_new_string(host_));
  json_object_object_add(o, "pid", json_object_new_int64((int64_t)getpid()));
  json_object_object_add(o, "db", json_object_new_string(l->db));
  json_object_object_add(o, "epoch", json_object_new_int64((int64_t)l->epoch));
  json_object_object_add(o, "renewed_ms", json_object_new_int64(now));
  json_object_object_add(o, "expires_ms", json_object_new_int64(expires));
  const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  int rc;
  if (l->cond) {
    /* l->etag changes only on success (a fan-out fills its token member by
    ** member); if_match may be l->etag itself */
    char out[WS_STORE_ETAG_MAX];
    rc = l->st->m->put_if(l->st, WS_LEASE_NAME, s, strlen(s), if_match, out, err);
    if (rc == WS_OK) memcpy(l->etag, out, sizeof(out));
  } else {
    rc = ws_store_put_buf(l->st, WS_LEASE_NAME, s, strlen(s), err);
  }
  json_object_put(o);
  return rc;
}

static void fmt_time(char *buf, size_t cap, int64_t ms) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int refuse(ws_store *st, const ws_lease_rec *r, int64_t now, const char *what,
                  ws_err *err) {
  char when[40];
  fmt_time(when, sizeof(when), r->expires_ms);
  return ws_fail(err, WS_ELOCKED, "store %s is %s by another sidecar (owner %s, db %s, "
                 "epoch %" PRIu64 "); its lease expires at %s (in %" PRId64 " s): stop "
                 "it, or wait until then", st->url, what, r->owner, r->db[0] ? r->db : "?",
                 r->epoch, when, (r->expires_ms - now + 999) / 1000);
}

/* A record of this host whose process is gone: its sidecar crashed. */
static int owner_dead(const ws_lease_rec *r) {
  pthread_once(&self_once_, self_init);
  return strcmp(r->host, host_) == 0 && r->pid > 0 && r->pid != (long)getpid() &&
         kill((pid_t)r->pid, 0) != 0 && errno == ESRCH;
}

/* The record's token: *have = 0 when there is none. */
static int get_tag(int *have, char *tag, ws_store *st, ws_err *err) {
  ws_err e = WS_ERR_INIT;
  int rc = st->m->etag(st, WS_LEASE_NAME, tag, &e);
  *have = rc == WS_OK;
  if (rc == WS_ENOTFOUND) return WS_OK;
  if (rc) *err = e;
  return rc;
}

/* A token no object can have: the probe's If-Match must fail on it. */
#define PROBE_TOKEN "\"walship-probe-no-such-version\""
#define PROBE_BODY "walship conditional-write probe\n"

/* The probe (top of this file) on one store: *honours = 1 when both
** conditions were refused, else 0 and *ignored names the header whose
** condition was not. */
static int probe_one(int *honours, const char **ignored, ws_store *st, ws_err *err) {
  uint8_t r[8];
  ws_random_id(r, sizeof(r));
  char name[48];
  snprintf(name, sizeof(name), "lease/probe-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1],
           r[2], r[3], r[4], r[5], r[6], r[7]);
  size_t n = strlen(PROBE_BODY);
  int rc = ws_store_put_buf(st, name, PROBE_BODY, n, err);
  if (rc) return rc;           /* put is atomic: nothing to clean up */
  ws_err e = WS_ERR_INIT;
  *ignored = NULL;
  rc = st->m->put_if(st, name, PROBE_BODY, n, NULL, NULL, &e);
  if (rc == WS_OK) {
    *ignored = "If-None-Match";
  } else if (rc == WS_EEXIST) {
    rc = st->m->put_if(st, name, PROBE_BODY, n, PROBE_TOKEN, NULL, &e);
    if (rc == WS_OK) *ignored = "If-Match";
    else if (rc == WS_EEXIST) rc = WS_OK;
  }
  if (rc) *err = e;
  ws_err de = WS_ERR_INIT;
  int drc = st->m->del(st, name, &de);
  if (!rc && drc) {
    rc = drc;
    *err = de;
  } else if (drc) {
    ws_log(WS_LOG_WARN, "lease", "store=%s could not delete the probe object %s: %s",
           st->url, name, de.msg);
  }
  *honours = !*ignored;
  return rc;
}

/* Sets *cond to 0 unless every destination of st honours conditional
** writes (the store offers them: ws_store_can_put_if). */
static int probe_cond(int *cond, ws_store *st, ws_err *err) {
  const char *trust = getenv("WALSHIP_S3_CONDITIONAL_WRITES");
  if (trust && strcmp(trust, "1") == 0) return WS_OK;
  ws_store *const *m = NULL;
  size_t n = 0;
  ws_store_fanout_members(st, &m, &n);
  ws_store *const self_only[1] = {st};
  if (n == 0) {
    m = self_only;
    n = 1;
  }
  for (size_t i = 0; i < n; i++) {
    int honours = 0;
    const char *ignored = NULL;
    int rc = probe_one(&honours, &ignored, m[i], err);
    if (rc) return rc;
    if (!honours) {
      const char *sep = strstr(m[i]->url, "://");
      ws_log(WS_LOG_INFO, "lease", "%.*s store ignores conditional writes (%s); lease uses "
             "read-back fencing store=%s", sep ? (int)(sep - m[i]->url) : 4,
             sep ? m[i]->url : "file", ignored, m[i]->url);
      *cond = 0;
      return WS_OK;
    }
  }
  ws_log(WS_LOG_DEBUG, "lease", "store=%s honours conditional writes (probed)", st->url);
  return WS_OK;
}

/* Acquire by compare-and-swap; a lost race is reported as a refusal. */
static int acquire_cond(ws_lease *l, ws_err *err) {
  ws_store *st = l->st;
  ws_lease_rec r;
  char tag[WS_STORE_ETAG_MAX];
  int lost = 0;
  /* A retry only follows a failed condition, i.e. someone else wrote or
  ** deleted the record meanwhile; three in a row is a storm, not a race. */
  for (int attempt = 0; attempt < 3; attempt++) {
    int have = 0, found = 0;
    int rc = get_tag(&have, tag, st, err);
    if (!rc) rc = ws_lease_read(&found, &r, st, err);
    if (rc) return rc;
    int64_t now = ws_now_ms();
    if (found && strcmp(r.owner, self()) != 0 && r.expires_ms > now && !owner_dead(&r))
      return refuse(st, &r, now, lost ? "taken (it won the race to start)" : "written",
                    err);
    l->epoch = (found ? r.epoch : 0) + 1;
    ws_err e = WS_ERR_INIT;
    rc = write_rec(l, now, now + l->ttl_ms, have ? tag : NULL, &e);
    if (rc == WS_OK) return WS_OK;
    if (rc != WS_EEXIST) {
      *err = e;
      return rc;
    }
    ws_log(WS_LOG_DEBUG, "lease", "store=%s conditional write refused (%s); reading again",
           st->url, e.msg);
    lost = 1;
  }
  return ws_fail(err, WS_ELOCKED, "store %s: the lease record changed under each of three "
                 "conditional writes (other sidecars racing for the store?)", st->url);
}

/* Acquire by write, settle, read back (stores without conditional writes). */
static int acquire_settle(ws_lease *l, ws_err *err) {
  ws_store *st = l->st;
  ws_lease_rec r;
  int found = 0;
  int rc = ws_lease_read(&found, &r, st, err);
  if (rc) return rc;
  int64_t now = ws_now_ms();
  if (found && strcmp(r.owner, self()) != 0 && r.expires_ms > now && !owner_dead(&r))
    return refuse(st, &r, now, "written", err);
  l->epoch = (found ? r.epoch : 0) + 1;
  int64_t t0 = ws_mono_ms();
  if ((rc = write_rec(l, now, now + l->ttl_ms, NULL, err))) return rc;
  int64_t settle = 2 * (ws_mono_ms() - t0);
  if (settle < SETTLE_MIN_MS) settle = SETTLE_MIN_MS;
  struct timespec ts = {(time_t)(settle / 1000), (long)(settle % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  if ((rc = ws_lease_read(&found, &r, st, err))) return rc;
  if (!found)
    return ws_fail(err, WS_ELOCKED, "store %s: our lease record vanished right after we "
                   "wrote it (another sidecar racing for the store?)", st->url);
  if (strcmp(r.owner, self()) != 0)
    return refuse(st, &r, ws_now_ms(), "taken (it won the race to start)", err);
  return WS_OK;
}

int ws_lease_acquire(ws_lease **out, ws_store *st, const char *db_path, ws_err *err) {
  ws_lease *l = ws_calloc(1, sizeof(*l), err);
  if (!l) return WS_ENOMEM;
  l->st = st;
  snprintf(l->db, sizeof(l->db), "%s", db_path ? db_path : "");
  l->ttl_ms = ttl_ms();
  l->cond = ws_store_can_put_if(st);
  int rc = l->cond ? probe_cond(&l->cond, st, err) : WS_OK;
  if (!rc) rc = l->cond ? acquire_cond(l, err) : acquire_settle(l, err);
  if (rc) {
    free(l);
    return rc;
  }
  l->renewed_mono = ws_mono_ms();
  if (l->epoch > 1)
    ws_log(WS_LOG_INFO, "lease", "store=%s epoch=%" PRIu64 " owner=%s ttl_ms=%" PRId64
           " conditional=%d", st->url, l->epoch, self(), l->ttl_ms, l->cond);
  *out = l;
  return WS_OK;
}

static int lost_lease(ws_lease *l, int found, const ws_lease_rec *r, ws_err *err) {
  if (!found)
    return ws_fail(err, WS_ELOCKED, "store %s: our lease record is gone (deleted by "
                   "someone); stopping rather than risk two writers", l->st->url);
  char when[40];
  fmt_time(when, sizeof(when), r->renewed_ms);
  return ws_fail(err, WS_ELOCKED, "store %s: lost the writer lease to %s (db %s, epoch "
                 "%" PRIu64 ", since %s); stopping so the two histories do not "
                 "interleave", l->st->url, r->owner, r->db[0] ? r->db : "?", r->epoch, when);
}

static int ours(const ws_lease *l, int found, const ws_lease_rec *r) {
  return found && strcmp(r->owner, self()) == 0 && r->epoch == l->epoch;
}

int ws_lease_tick(ws_lease *l, ws_err *err) {
  if (!l) return WS_OK;
  if (ws_mono_ms() - l->renewed_mono < l->ttl_ms / 3) return WS_OK;
  ws_lease_rec r;
  int found = 0, rc;
  if (l->cond) {
    ws_err e = WS_ERR_INIT;
    int64_t now = ws_now_ms();
    rc = write_rec(l, now, now + l->ttl_ms, l->etag, &e);
    if (rc == WS_EEXIST) {
      /* Someone wrote the record since our last write; unless it still
      ** names us (see the top of this file), we lost it. */
      char tag[WS_STORE_ETAG_MAX];
      int have = 0;
      if ((rc = get_tag(&have, tag, l->st, err)) ||
          (rc = ws_lease_read(&found, &r, l->st, err)))
        return rc;
      if (!have || !ours(l, found, &r)) return lost_lease(l, found, &r, err);
      now = ws_now_ms();
      rc = write_rec(l, now, now + l->ttl_ms, tag, &e);
      if (rc == WS_EEXIST) {
        if ((rc = ws_lease_read(&found, &r, l->st, err))) return rc;
        return lost_lease(l, found, &r, err);
      }
    }
    if (rc) {
      *err = e;
      return rc;
    }
  } else {
    if ((rc = ws_lease_read(&found, &r, l->st, err))) return rc;
    if (!ours(l, found, &r)) return lost_lease(l, found, &r, err);
    int64_t now = ws_now_ms();
    if ((rc = write_rec(l, now, now + l->ttl_ms, NULL, err))) return rc;
  }
  l->renewed_mono = ws_mono_ms();
  return WS_OK;
}

void ws_lease_release(ws_lease *l) {
  if (!l) return;
  ws_lease_rec r;
  int found = 0;
  ws_err e = WS_ERR_INIT;
  if (ws_lease_read(&found, &r, l->st, &e) == WS_OK && found &&
      strcmp(r.owner, self()) == 0 && r.epoch == l->epoch) {
    if (l->st->m->del(l->st, WS_LEASE_NAME, &e) != WS_OK)
      ws_log(WS_LOG_WARN, "lease", "store %s: could not release the lease (%s); a "
             "successor waits until it expires", l->st->url, e.msg);
  }
  free(l);
}

int ws_lease_check(ws_store *st, ws_err *err) {
  ws_lease_rec r;
  int found = 0;
  int rc = ws_lease_read(&found, &r, st, err);
  if (rc) return rc;
  int64_t now = ws_now_ms();
  if (!found)
    return ws_fail(err, WS_ELOCKED, "store %s holds no writer lease of ours; no "
                   "maintenance", st->url);
  if (strcmp(r.owner, self()) != 0) return refuse(st, &r, now, "written", err);
  if (r.expires_ms <= now)
    return ws_fail(err, WS_ELOCKED, "store %s: our writer lease expired; no maintenance "
                   "until it is renewed", st->url);
  return WS_OK;
}
