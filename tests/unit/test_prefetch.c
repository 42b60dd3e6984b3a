/*
** Prefetch: objects arrive whole and in order through a FIFO much smaller
** than they are; a download error reaches the consumer at its object; a
** consumer that gives up mid-object stops the producer (free joins).
*/
#include "t.h"
#include "common.h"
#include "prefetch.h"

#include <sys/stat.h>
#include <unistd.h>

static char root_[256];

static void put_file(const char *name, size_t size, unsigned seed) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", root_, name);
  FILE *f = fopen(path, "wb");
  for (size_t i = 0; i < size; i++) fputc((int)((i * 31 + seed) & 0xff), f);
  fclose(f);
}

static void ent(ws_catent *e, const char *name, uint64_t size) {
  memset(e, 0, sizeof(*e));
  snprintf(e->name, sizeof(e->name), "%s", name);
  e->size = size;
}

typedef struct got {
  size_t n;
  unsigned seed;
  int bad;
  size_t stop_after;  /* 0: never */
} got;

static int sink(void *ud, const void *buf, size_t len, ws_err *err) {
  got *g = ud;
  const unsigned char *b = buf;
  for (size_t i = 0; i < len; i++, g->n++)
    if (b[i] != (unsigned char)((g->n * 31 + g->seed) & 0xff)) g->bad = 1;
  if (g->stop_after && g->n >= g->stop_after)
    return ws_fail(err, WS_ESTOPPED, "enough");
  return WS_OK;
}

static void test_prefetch_delivers_objects_in_order(void) {
  static const size_t size[3] = {3u << 20, 1, 5u << 20};
  ws_catent e[3];
  const ws_catent *v[3] = {&e[0], &e[1], &e[2]};
  char name[3][16];
  for (int i = 0; i < 3; i++) {
    snprintf(name[i], sizeof(name[i]), "obj%d", i);
    put_file(name[i], size[i], (unsigned)i * 7);
    ent(&e[i], name[i], size[i]);
  }
  ws_err err = WS_ERR_INIT;
  ws_prefetch *p = NULL;
  CHECK_EQ(ws_prefetch_start(&p, root_, NULL, v, 3, 256u << 10, &err), WS_OK);
  for (int i = 0; i < 3; i++) {
    got g = {0, (unsigned)i * 7, 0, 0};
    CHECK_EQ(ws_prefetch_get(p, (size_t)i, sink, &g, &err), WS_OK);
    CHECK_EQ(g.n, size[i]);
    CHECK(!g.bad);
  }
  ws_prefetch_free(p);
}

static void test_prefetch_error_reaches_its_object(void) {
  ws_catent e[2];
  const ws_catent *v[2] = {&e[0], &e[1]};
  put_file("ok", 1000, 1);
  ent(&e[0], "ok", 1000);
  ent(&e[1], "missing", 1000);
  ws_err err = WS_ERR_INIT;
  ws_prefetch *p = NULL;
  CHECK_EQ(ws_prefetch_start(&p, root_, NULL, v, 2, 4096, &err), WS_OK);
  got g = {0, 1, 0, 0};
  CHECK_EQ(ws_prefetch_get(p, 0, sink, &g, &err), WS_OK);
  CHECK_EQ(g.n, 1000);
  got g2 = {0, 0, 0, 0};
  CHECK_EQ(ws_prefetch_get(p, 1, sink, &g2, &err), WS_ENOTFOUND);
  CHECK(strstr(err.msg, "missing") != NULL);
  ws_prefetch_free(p);
}

static void test_prefetch_consumer_stop_joins_producer(void) {
  ws_catent e[2];
  const ws_catent *v[2] = {&e[0], &e[1]};
  put_file("big0", 4u << 20, 3);
  put_file("big1", 4u << 20, 4);
  ent(&e[0], "big0", 4u << 20);
  ent(&e[1], "big1", 4u << 20);
  ws_err err = WS_ERR_INIT;
  ws_prefetch *p = NULL;
  CHECK_EQ(ws_prefetch_start(&p, root_, NULL, v, 2, 64u << 10, &err), WS_OK);
  got g = {0, 3, 0, 100000};
  CHECK_EQ(ws_prefetch_get(p, 0, sink, &g, &err), WS_ESTOPPED);
  CHECK(!g.bad);
  ws_prefetch_free(p);   /* must not hang on a producer blocked on a full FIFO */
}

int main(void) {
  snprintf(root_, sizeof(root_), "/tmp/ws-test-prefetch.%ld", (long)getpid());
  mkdir(root_, 0755);
  RUN(test_prefetch_delivers_objects_in_order);
  RUN(test_prefetch_error_reaches_its_object);
  RUN(test_prefetch_consumer_stop_joins_producer);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", root_);
  if (system(cmd) != 0) return 1;
  T_EXIT();
}
