/*
** The file store keeps the store contract: atomic puts, ranged streaming
** gets, listings that never show temp files, idempotent deletes, and
** refusal of every name that could escape the root.
*/
#include "walship/store.h"
#include "names.h"
#include "common.h"
/* t.h's RUN puts fflush after an else on one line; -Wall flags that. */
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#include "t.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
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

int main(void) {
  RUN(test_put_get_list_del_roundtrip);
  RUN(test_aborted_put_leaves_nothing);
  RUN(test_ranged_get);
  RUN(test_name_validation);
  RUN(test_open_dispatch);
  RUN(test_unusable_root_reported_at_put);
  RUN(test_catalog_ignores_foreign_names);
  T_EXIT();
}
