/*
** The fan-out store (src/store_fanout.c) over two directory stores: put
** lands in every member, list is the intersection, get falls over to a
** member that has the object, a member that cannot commit fails the put,
** del reaches every member, and the members are exposed in order.
*/
#include "t.h"
#include "walship/dest.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];

static void mkroot(void) {
  snprintf(root, sizeof(root), "/tmp/ws-fanout-XXXXXX");
  if (!mkdtemp(root)) abort();
}

static void rmroot(void) {
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", root);
}

static int open2(ws_store **st, char *a, char *b, size_t n) {
  snprintf(a, n, "%s/a", root);
  snprintf(b, n, "%s/b", root);
  ws_dest d[2] = {WS_DEST_INIT, WS_DEST_INIT};
  d[0].url = a;
  d[1].url = b;
  ws_err err = WS_ERR_INIT;
  return ws_store_fanout_open(st, d, 2, &err);
}

static int has(const char *dir, const char *name) {
  char p[512];
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  return access(p, F_OK) == 0;
}

static void test_fanout_put_reaches_every_member(void) {
  ws_store *st = NULL;
  char a[300], b[300];
  ws_err err = WS_ERR_INIT;
  mkroot();
  CHECK(open2(&st, a, b, sizeof(a)) == WS_OK);
  CHECK(strstr(st->url, " + ") != NULL);
  CHECK(ws_store_put_buf(st, "seg/x", "hello", 5, &err) == WS_OK);
  CHECK(has(a, "seg/x") && has(b, "seg/x"));
  ws_store *const *m;
  size_t n;
  ws_store_fanout_members(st, &m, &n);
  CHECK_EQ(n, 2);
  CHECK(strcmp(m[0]->url, a) == 0 && strcmp(m[1]->url, b) == 0);
  CHECK(st->m->del(st, "seg/x", &err) == WS_OK);
  CHECK(!has(a, "seg/x") && !has(b, "seg/x"));
  ws_store_close(st);
  rmroot();
}

static void test_fanout_list_is_the_intersection(void) {
  ws_store *st = NULL;
  char a[300], b[300];
  ws_err err = WS_ERR_INIT;
  mkroot();
  CHECK(open2(&st, a, b, sizeof(a)) == WS_OK);
  CHECK(ws_store_put_buf(st, "seg/1", "1", 1, &err) == WS_OK);
  CHECK(ws_store_put_buf(st, "seg/2", "2", 1, &err) == WS_OK);
  ws_store *const *m;
  size_t n;
  ws_store_fanout_members(st, &m, &n);
  /* seg/3 only in the first member, seg/2 removed from the second */
  CHECK(ws_store_put_buf(m[0], "seg/3", "3", 1, &err) == WS_OK);
  CHECK(m[1]->m->del(m[1], "seg/2", &err) == WS_OK);
  ws_store_list l = {NULL, 0, 0};
  CHECK(st->m->list(&l, st, "seg/", &err) == WS_OK);
  int ok = l.n == 1 && strcmp(l.v[0].name, "seg/1") == 0;
  ws_store_list_free(&l);
  CHECK(ok);
  ws_store_close(st);
  rmroot();
}

static void test_fanout_get_falls_over_to_a_member_that_has_it(void) {
  ws_store *st = NULL;
  char a[300], b[300];
  ws_err err = WS_ERR_INIT;
  mkroot();
  CHECK(open2(&st, a, b, sizeof(a)) == WS_OK);
  ws_store *const *m;
  size_t n;
  ws_store_fanout_members(st, &m, &n);
  CHECK(ws_store_put_buf(m[1], "seg/only-b", "bbb", 3, &err) == WS_OK);
  void *buf = NULL;
  size_t len = 0;
  CHECK(ws_store_get_buf(&buf, &len, st, "seg/only-b", 0, 0, 1024, &err) == WS_OK);
  int ok = len == 3 && memcmp(buf, "bbb", 3) == 0;
  free(buf);
  CHECK(ok);
  ws_err e2 = WS_ERR_INIT;
  CHECK(ws_store_get_buf(&buf, &len, st, "seg/nowhere", 0, 0, 1024, &e2) != WS_OK);
  ws_store_close(st);
  rmroot();
}

static void test_fanout_put_fails_when_a_member_cannot_commit(void) {
  ws_store *st = NULL;
  char a[300], b[300], p[1024];
  ws_err err = WS_ERR_INIT;
  mkroot();
  CHECK(open2(&st, a, b, sizeof(a)) == WS_OK);
  /* a regular file where the second member's seg/ directory should be */
  snprintf(p, sizeof(p), "mkdir -p '%s' && rm -rf '%s/seg' && : >'%s/seg'", b, b, b);
  CHECK(system(p) == 0);
  snprintf(p, sizeof(p), "%s/seg", b);
  FILE *f = fopen(p, "r");
  CHECK(f != NULL);
  fclose(f);
  CHECK(ws_store_put_buf(st, "seg/y", "why", 3, &err) != WS_OK);
  CHECK(err.msg[0] != 0);
  ws_store_list l = {NULL, 0, 0};
  ws_err e2 = WS_ERR_INIT;
  int rc = st->m->list(&l, st, "seg/", &e2);
  size_t listed = l.n;
  ws_store_list_free(&l);
  /* whatever the broken member lists, seg/y is not durable everywhere */
  CHECK(rc != WS_OK || listed == 0);
  ws_store_close(st);
  rmroot();
}

static void test_fanout_one_destination_is_the_plain_store(void) {
  ws_store *st = NULL;
  char a[300];
  ws_err err = WS_ERR_INIT;
  mkroot();
  snprintf(a, sizeof(a), "%s/a", root);
  ws_dest d = WS_DEST_INIT;
  d.url = a;
  CHECK(ws_store_fanout_open(&st, &d, 1, &err) == WS_OK);
  CHECK(strcmp(st->m->scheme, "file") == 0);
  ws_store *const *m;
  size_t n = 9;
  ws_store_fanout_members(st, &m, &n);
  CHECK_EQ(n, 0);
  ws_store_close(st);
  CHECK(ws_store_fanout_open(&st, &d, 0, &err) == WS_EINVAL);
  rmroot();
}

int main(void) {
  RUN(test_fanout_put_reaches_every_member);
  RUN(test_fanout_list_is_the_intersection);
  RUN(test_fanout_get_falls_over_to_a_member_that_has_it);
  RUN(test_fanout_put_fails_when_a_member_cannot_commit);
  RUN(test_fanout_one_destination_is_the_plain_store);
  T_EXIT();
}
