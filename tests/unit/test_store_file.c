/*
** The file store keeps the store contract: atomic puts, ranged streaming
** gets, listings that never show temp files, idempotent deletes, and
** refusal of every name that could escape the root.
*/
#include "walship/store.h"
#include "walship/dest.h"
#include "names.h"
#include "common.h"
/* t.h's RUN puts fflush after an else on one line; -Wall flags that. */
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#include "t.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char root_[256];

static ws_store *open_tmp(void) {
  snprintf(root_, sizeof(root_), "/tmp/ws-test-store-XXXXXX");
  if (!mkdtemp(root_)) return NULL;
  /* a subdirectory that does not exist yet: open must create it */
  strcat(root_, "/st");
  ws_store *st = NULL;
  ws_err e = WS_ERR_INIT;
  if (ws_store_open(&st, root_, &e) != WS_OK) {
    printf("  open: %s\n", e.msg);
    return NULL;
  }
  return st;
}

static void rm_rf(const char *dir) {
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0) printf("  cleanup of %s failed\n", dir);
}

static void cleanup(ws_store *st) {
  ws_store_close(st);
  char *slash = strrchr(root_, '/');
  *slash = '\0';
  rm_rf(root_);
}

/* Count directory entries, hidden ones included. */
static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
  closedir(d);
  return n;
}

static void test_put_get_list_del_roundtrip(void) {
  ws_store *st = open_tmp();
  CHECK(st != NULL);
  ws_err e = WS_ERR_INIT;
  static uint8_t big[600000];
  for (size_t i = 0; i < sizeof(big); i++) big[i] = (uint8_t)(i * 7 + i / 300);
  CHECK_EQ(ws_store_put_buf(st, "seg/a", big, sizeof(big), &e), WS_OK);
  CHECK_EQ(ws_store_put_buf(st, "snap/b", "hello", 5, &e), WS_OK);
  CHECK_EQ(ws_store_put_buf(st, "top", "", 0, &e), WS_OK);
  CHECK_EQ(ws_store_put_buf(st, "snap/b", "world!", 6, &e), WS_OK); /* replace */

  void *buf = NULL;
  size_t n = 0;
  CHECK_EQ(ws_store_get_buf(&buf, &n, st, "seg/a", 0, 0, SIZE_MAX, &e), WS_OK);
  CHECK_EQ(n, sizeof(big));
  CHECK(memcmp(buf, big, n) == 0);
  free(buf);
  CHECK_EQ(ws_store_get_buf(&buf, &n, st, "snap/b", 0, 0, 100, &e), WS_OK);
  CHECK_EQ(n, 6);
  CHECK(memcmp(buf, "world!", 6) == 0);
  free(buf);
  /* the cap is enforced */
  CHECK_EQ(ws_store_get_buf(&buf, &n, st, "seg/a", 0, 0, 1000, &e), WS_ENOMEM);

  ws_store_list l = {0};
  CHECK_EQ(st->m->list(&l, st, "", &e), WS_OK);
  CHECK_EQ(l.n, 3);
  int seen = 0;
  for (size_t i = 0; i < l.n; i++) {
    if (!strcmp(l.v[i].name, "seg/a")) { seen |= 1; CHECK_EQ(l.v[i].size, sizeof(big)); }
    if (!strcmp(l.v[i].name, "snap/b")) { seen |= 2; CHECK_EQ(l.v[i].size, 6); }
    if (!strcmp(l.v[i].name, "top")) seen |= 4;
    CHECK(l.v[i].mtime_ms > 0);
  }
  CHECK_EQ(seen, 7);
  ws_store_list_free(&l);
  CHECK_EQ(st->m->list(&l, st, "sn", &e), WS_OK);
  CHECK_EQ(l.n, 1);
  CHECK(strcmp(l.v[0].name, "snap/b") == 0);
  ws_store_list_free(&l);

  CHECK_EQ(st->m->del(st, "snap/b", &e), WS_OK);
  CHECK_EQ(st->m->del(st, "snap/b", &e), WS_OK);       /* missing is fine */
  e = (ws_err)WS_ERR_INIT;
  CHECK_EQ(ws_store_get_buf(&buf, &n, st, "snap/b", 0, 0, 100, &e), WS_ENOTFOUND);
  CHECK(strstr(e.msg, "object snap/b not found in store") != NULL);
  cleanup(st);
}

static void test_aborted_put_leaves_nothing(void) {
  ws_store *st = open_tmp();
  CHECK(st != NULL);
  ws_err e = WS_ERR_INIT;
  ws_upload *up = NULL;
  CHECK_EQ(st->m->put_begin(&up, st, "seg/x", &e), WS_OK);
  CHECK_EQ(st->m->put_write(up, "partial", 7, &e), WS_OK);
  /* while in flight, the temp exists but is not an object */
  ws_store_list l = {0};
  CHECK_EQ(st->m->list(&l, st, "", &e), WS_OK);
  CHECK_EQ(l.n, 0);
  ws_store_list_free(&l);
  char dir[300];
  snprintf(dir, sizeof(dir), "%s/seg", root_);
  CHECK_EQ(count_entries(dir), 1);
  st->m->put_abort(up);
  CHECK_EQ(count_entries(dir), 0);
  CHECK_EQ(st->m->list(&l, st, "", &e), WS_OK);
  CHECK_EQ(l.n, 0);
  ws_store_list_free(&l);
  cleanup(st);
}

static void test_ranged_get(void) {
  ws_store *st = open_tmp();
  CHECK(st != NULL);
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_store_put_buf(st, "o", "0123456789", 10, &e), WS_OK);
  void *buf = NULL;
  size_t n = 0;
  CHECK_EQ(ws_store_get_buf(&buf, &n, st, "o", 2, 3, 100, &e), WS_OK);
  CHECK_EQ(n, 3);
  CHECK(memcmp(buf, "234", 3) == 0);
  free(buf);
  CHECK_EQ(ws_store_get_buf(&buf, &n, st, "o", 7, 0, 100, &e), WS_OK);
  CHECK_EQ(n, 3);
  CHECK(memcmp(buf, "789", 3) == 0);
  free(buf);
  /* a range past the end is clamped: the caller sees a short object */
  CHECK_EQ(ws_store_get_buf(&buf, &n, st, "o", 8, 128, 200, &e), WS_OK);
  CHECK_EQ(n, 2);
  free(buf);
  CHECK_EQ(ws_store_get_buf(&buf, &n, st, "o", 50, 10, 200, &e), WS_OK);
  CHECK_EQ(n, 0);
  free(buf);
  cleanup(st);
}

static void test_name_validation(void) {
  static const char *const bad[] = {
    "../x", "/abs", "a//b", "a/./b", "a/../b", "a/", "", ".", "..", "a b",
    "a\\b", "x?y", "caf\xc3\xa9", "a\nb",
  };
  ws_err e = WS_ERR_INIT;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (ws_store_check_name(bad[i], &e) != WS_EINVAL) {
      printf("  accepted: '%s'\n", bad[i]);
      CHECK(!"name rejected");
    }
  }
  char longname[300];
  memset(longname, 'a', 256);
  longname[256] = '\0';
  CHECK_EQ(ws_store_check_name(longname, &e), WS_EINVAL);
  longname[255] = '\0';
  CHECK_EQ(ws_store_check_name(longname, &e), WS_OK);
  CHECK_EQ(ws_store_check_name("seg/0000000000000001-0000000000000002.seg", &e), WS_OK);
  CHECK_EQ(ws_store_check_name("a.b_c-D/9", &e), WS_OK);

  /* and the backend enforces it on every entry point */
  ws_store *st = open_tmp();
  CHECK(st != NULL);
  ws_upload *up = NULL;
  CHECK_EQ(st->m->put_begin(&up, st, "../escape", &e), WS_EINVAL);
  CHECK_EQ(st->m->put_begin(&up, st, "seg/.hidden", &e), WS_EINVAL);
  CHECK_EQ(st->m->del(st, "../x", &e), WS_EINVAL);
  void *buf = NULL;
  size_t n;
  CHECK_EQ(ws_store_get_buf(&buf, &n, st, "/etc/passwd", 0, 0, 100, &e), WS_EINVAL);
  cleanup(st);
}

static void test_open_dispatch(void) {
  ws_store *st = NULL;
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_store_open(&st, "gopher://x/y", &e), WS_EINVAL);
  CHECK(strstr(e.msg, "unsupported store URL scheme 'gopher'") != NULL);
  CHECK_EQ(ws_store_open(&st, "file://relative", &e), WS_EINVAL);
  char dir[] = "/tmp/ws-test-url-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char url[300];
  snprintf(url, sizeof(url), "file://%s/", dir);
  CHECK_EQ(ws_store_open(&st, url, &e), WS_OK);
  CHECK(strcmp(st->url, url) == 0);
  CHECK_EQ(ws_store_put_buf(st, "k", "v", 1, &e), WS_OK);
  ws_store_close(st);
  char path[300];
  snprintf(path, sizeof(path), "%s/k", dir);
  CHECK_EQ(access(path, F_OK), 0);
  rm_rf(dir);
}

static void test_unusable_root_reported_at_put(void) {
  char dir[] = "/tmp/ws-test-root-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char file[300];
  snprintf(file, sizeof(file), "%s/notadir", dir);
  FILE *f = fopen(file, "w");
  CHECK(f != NULL);
  fclose(f);
  ws_store *st = NULL;
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_store_open(&st, file, &e), WS_OK);  /* opens: reads may work */
  CHECK_EQ(ws_store_put_buf(st, "k", "v", 1, &e), WS_EIO);
  CHECK(strstr(e.msg, "is not a directory") != NULL);
  CHECK(strstr(e.msg, file) != NULL);
  ws_store_close(st);
  rm_rf(dir);
}

static void test_catalog_ignores_foreign_names(void) {
  ws_store *st = open_tmp();
  CHECK(st != NULL);
  ws_err e = WS_ERR_INIT;
  const char *names[] = {"seg/0000000000000002-0000000000000005.seg",
                         "snap/0000000000000001.snap", "snap/README",
                         "seg/0000000000000006-0000000000000009.seg.bak", "notes.txt",
                         "snap/0000000000000005.snap"};
  for (size_t i = 0; i < 6; i++)
    CHECK_EQ(ws_store_put_buf(st, names[i], "x", 1, &e), WS_OK);
  ws_catalog c = {0};
  CHECK_EQ(ws_catalog_load(&c, st, &e), WS_OK);
  CHECK_EQ(c.n, 3);
  CHECK_EQ(c.v[0].kind, WS_KIND_SNAPSHOT);
  CHECK_EQ(c.v[0].last, 1);
  CHECK_EQ(c.v[1].kind, WS_KIND_SEGMENT);   /* segment before snapshot at 5 */
  CHECK_EQ(c.v[2].kind, WS_KIND_SNAPSHOT);
  CHECK_EQ(c.v[2].size, 1);
  ws_catalog_free(&c);
  cleanup(st);
}

static int get_str(ws_store *st, const char *name, char *out, size_t cap) {
  void *b = NULL;
  size_t n = 0;
  ws_err e = WS_ERR_INIT;
  int rc = ws_store_get_buf(&b, &n, st, name, 0, 0, cap - 1, &e);
  if (rc) return rc;
  memcpy(out, b, n);
  out[n] = 0;
  free(b);
  return WS_OK;
}

/* put_if: create only when absent, replace only on the current token;
** a failed condition leaves the object as it was and no temp behind. */
static void test_put_if_conditions(void) {
  ws_store *st = open_tmp();
  CHECK(st);
  ws_err e = WS_ERR_INIT;
  char t1[WS_STORE_ETAG_MAX], t2[WS_STORE_ETAG_MAX], cur[WS_STORE_ETAG_MAX], buf[64];
  CHECK(ws_store_can_put_if(st));
  CHECK_EQ(st->m->etag(st, "lease/writer", cur, &e), WS_ENOTFOUND);
  CHECK_EQ(st->m->put_if(st, "lease/writer", "one", 3, NULL, t1, &e), WS_OK);
  CHECK_EQ(st->m->etag(st, "lease/writer", cur, &e), WS_OK);
  CHECK(strcmp(cur, t1) == 0);
  CHECK_EQ(st->m->put_if(st, "lease/writer", "two", 3, NULL, t2, &e), WS_EEXIST);
  CHECK(strstr(e.msg, "already exists"));
  CHECK_EQ(get_str(st, "lease/writer", buf, sizeof(buf)), WS_OK);
  CHECK(strcmp(buf, "one") == 0);
  CHECK_EQ(st->m->put_if(st, "lease/writer", "three", 5, t1, t2, &e), WS_OK);
  CHECK(strcmp(t1, t2) != 0);
  CHECK_EQ(st->m->put_if(st, "lease/writer", "four", 4, t1, cur, &e), WS_EEXIST);
  CHECK(strstr(e.msg, "changed"));
  CHECK_EQ(get_str(st, "lease/writer", buf, sizeof(buf)), WS_OK);
  CHECK(strcmp(buf, "three") == 0);
  CHECK_EQ(st->m->del(st, "lease/writer", &e), WS_OK);
  CHECK_EQ(st->m->put_if(st, "lease/writer", "five", 4, t2, cur, &e), WS_EEXIST);
  CHECK(strstr(e.msg, "gone"));
  CHECK_EQ(get_str(st, "lease/writer", buf, sizeof(buf)), WS_ENOTFOUND);
  /* no temps left in the object's directory; the lock file is not listed */
  char dir[300];
  snprintf(dir, sizeof(dir), "%s/lease", root_);
  CHECK_EQ(count_entries(dir), 0);
  CHECK_EQ(st->m->put_if(st, "x", "x", 1, NULL, NULL, &e), WS_OK);
  ws_store_list l = {NULL, 0, 0};
  CHECK_EQ(st->m->list(&l, st, "", &e), WS_OK);
  CHECK_EQ(l.n, 1);
  ws_store_list_free(&l);
  cleanup(st);
}

/* Processes racing: of 8 creates exactly one succeeds, and 8 x 40
** compare-and-swap increments of one counter lose no update (each
** process opens its own store, as two sidecars would). */
static void test_put_if_races(void) {
  ws_store *st = open_tmp();
  CHECK(st);
  ws_err e = WS_ERR_INIT;
  enum { P = 8, N = 40 };
  pid_t pid[P];
  for (int i = 0; i < P; i++) {
    if ((pid[i] = fork()) == 0) {
      ws_store *s = NULL;
      ws_err e2 = WS_ERR_INIT;
      char tag[WS_STORE_ETAG_MAX], b[32];
      if (ws_store_open(&s, root_, &e2)) _exit(3);
      int won = s->m->put_if(s, "lease/c", "0", 1, NULL, NULL, &e2) == WS_OK;
      if (!won && e2.code != WS_EEXIST) _exit(3);
      for (int k = 0; k < N;) {
        if (s->m->etag(s, "lease/c", tag, &e2) || get_str(s, "lease/c", b, sizeof(b)))
          _exit(3);
        snprintf(b, sizeof(b), "%ld", strtol(b, NULL, 10) + 1);
        int rc = s->m->put_if(s, "lease/c", b, strlen(b), tag, NULL, &e2);
        if (rc == WS_OK) k++;
        else if (rc != WS_EEXIST) _exit(3);
      }
      ws_store_close(s);
      _exit(won ? 0 : 1);
    }
  }
  int winners = 0, errors = 0;
  for (int i = 0; i < P; i++) {
    int status = 0;
    CHECK(waitpid(pid[i], &status, 0) == pid[i]);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) winners++;
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 1) errors++;
  }
  CHECK_EQ(errors, 0);
  CHECK_EQ(winners, 1);
  char b[32];
  CHECK_EQ(get_str(st, "lease/c", b, sizeof(b)), WS_OK);
  CHECK_EQ(strtol(b, NULL, 10), P * N);
  (void)e;
  cleanup(st);
}

/* Fan-out over two file stores: put_if on each member in order; the token
** carries both members' tokens; a member without the object is "create". */
static void test_put_if_fanout(void) {
  ws_store *st = open_tmp();
  CHECK(st);
  ws_store_close(st);
  char a[300], b[300];
  snprintf(a, sizeof(a), "%s/a", root_);
  snprintf(b, sizeof(b), "%s/b", root_);
  ws_dest d[2] = {WS_DEST_INIT, WS_DEST_INIT};
  d[0].url = a;
  d[1].url = b;
  ws_store *f = NULL, *sb = NULL;
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_store_fanout_open(&f, d, 2, &e), WS_OK);
  CHECK_EQ(ws_store_open(&sb, b, &e), WS_OK);
  char t1[WS_STORE_ETAG_MAX], t2[WS_STORE_ETAG_MAX], cur[WS_STORE_ETAG_MAX];
  int ok = ws_store_can_put_if(f) &&
           f->m->etag(f, "lease/w", cur, &e) == WS_ENOTFOUND &&
           f->m->put_if(f, "lease/w", "one", 3, NULL, t1, &e) == WS_OK &&
           strchr(t1, '\n') && f->m->etag(f, "lease/w", cur, &e) == WS_OK &&
           strcmp(cur, t1) == 0 &&
           f->m->put_if(f, "lease/w", "two", 3, NULL, t2, &e) == WS_EEXIST &&
           /* b loses its copy: the token now says "create" there */
           sb->m->del(sb, "lease/w", &e) == WS_OK &&
           f->m->etag(f, "lease/w", cur, &e) == WS_OK && cur[strlen(cur) - 1] == '\n' &&
           /* the old token: a (first) takes the write, b refuses; a keeps it */
           f->m->put_if(f, "lease/w", "three", 5, t1, t2, &e) == WS_EEXIST &&
           f->m->put_if(f, "lease/w", "four", 4, cur, t2, &e) == WS_EEXIST &&
           f->m->etag(f, "lease/w", cur, &e) == WS_OK &&
           f->m->put_if(f, "lease/w", "five", 4, cur, t2, &e) == WS_OK &&
           sb->m->etag(sb, "lease/w", t1, &e) == WS_OK &&
           strcmp(t1, strchr(t2, '\n') + 1) == 0;
  if (!ok) printf("  last error: %s\n", e.msg);
  ws_store_close(sb);
  ws_store_close(f);
  char *slash = strrchr(root_, '/');
  *slash = '\0';
  rm_rf(root_);
  CHECK(ok);
}

int main(void) {
  RUN(test_put_get_list_del_roundtrip);
  RUN(test_aborted_put_leaves_nothing);
  RUN(test_ranged_get);
  RUN(test_name_validation);
  RUN(test_open_dispatch);
  RUN(test_unusable_root_reported_at_put);
  RUN(test_catalog_ignores_foreign_names);
  RUN(test_put_if_conditions);
  RUN(test_put_if_races);
  RUN(test_put_if_fanout);
  T_EXIT();
}
