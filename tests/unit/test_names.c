/*
** Object names and restore plans: parsing is strict, and a plan either
** reaches its goal contiguously or fails naming the exact missing range.
*/
#include "names.h"
#include "common.h"
/* t.h's RUN puts fflush after an else on one line; -Wall flags that. */
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#include "t.h"

#include <stdint.h>

/* Catalog from names (foreign ones dropped, like ws_catalog_load). */
static ws_catalog cat_of(const char *const *names, size_t n) {
  static ws_catent v[64];
  ws_catalog c = {v, 0};
  for (size_t i = 0; i < n; i++) {
    uint64_t a, b;
    int k = ws_name_parse(names[i], &a, &b);
    if (!k) continue;
    ws_catent *e = &v[c.n++];
    e->kind = k;
    e->first = a;
    e->last = b;
    e->size = 100;
    snprintf(e->name, sizeof(e->name), "%s", names[i]);
  }
  return c;
}

static char S_[16][WS_NAME_MAX];
static int s_i_;
static const char *snap(uint64_t t) { char *p = S_[s_i_++ & 15]; ws_name_snapshot(p, t); return p; }
static const char *seg(uint64_t a, uint64_t b) { char *p = S_[s_i_++ & 15]; ws_name_segment(p, a, b); return p; }

static void test_name_format_roundtrip(void) {
  char n[WS_NAME_MAX];
  uint64_t a = 0, b = 0;
  ws_name_snapshot(n, 0x1234);
  CHECK(strcmp(n, "snap/0000000000001234.snap") == 0);
  CHECK_EQ(ws_name_parse(n, &a, &b), WS_KIND_SNAPSHOT);
  CHECK_EQ(a, 0x1234);
  CHECK_EQ(b, 0x1234);
  ws_name_segment(n, 10, 0xabcdef);
  CHECK(strcmp(n, "seg/000000000000000a-0000000000abcdef.seg") == 0);
  CHECK_EQ(ws_name_parse(n, &a, &b), WS_KIND_SEGMENT);
  CHECK_EQ(a, 10);
  CHECK_EQ(b, 0xabcdef);
  ws_name_segment(n, UINT64_MAX - 1, UINT64_MAX);
  CHECK_EQ(ws_name_parse(n, &a, &b), WS_KIND_SEGMENT);
  CHECK(b == UINT64_MAX);
}

static void test_name_parse_is_strict(void) {
  static const char *const bad[] = {
    "snap/000000000000001A.snap",               /* upper case */
    "snap/00000000000001a.snap",                /* 15 digits */
    "snap/0000000000000001a.snap",              /* 17 digits */
    "snap/0000000000000000.snap",               /* txid 0 */
    "snap/0000000000000001.seg",                /* wrong extension */
    "snap/0000000000000001.snap.tmp",
    "x/snap/0000000000000001.snap",
    "seg/0000000000000001.seg",
    "seg/0000000000000005-0000000000000004.seg", /* first > last */
    "seg/0000000000000000-0000000000000004.seg", /* first 0 */
    "seg/0000000000000001_0000000000000004.seg",
    "seg/0000000000000001-0000000000000004.snap",
    "seg/000000000000000g-0000000000000004.seg",
    "seg/0000000000000001-0000000000000004.seg/",
    "", "snap/", "README",
  };
  uint64_t a, b;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (ws_name_parse(bad[i], &a, &b) != 0) {
      printf("  accepted: %s\n", bad[i]);
      CHECK(!"strict parse");
    }
  }
  CHECK_EQ(ws_name_parse("seg/0000000000000003-0000000000000003.seg", &a, &b),
           WS_KIND_SEGMENT);
}

static void test_plan_simple_chain(void) {
  const char *n[] = {seg(2, 5), snap(1), seg(6, 9), "README", seg(10, 10)};
  ws_catalog c = cat_of(n, 5);
  ws_plan p = {0};
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_plan_build(&p, &c, 0, &e), WS_OK);
  CHECK_EQ(p.n, 4);
  CHECK_EQ(p.txid, 10);
  CHECK_EQ(p.v[0]->kind, WS_KIND_SNAPSHOT);
  CHECK_EQ(p.v[1]->first, 2);
  CHECK_EQ(p.v[2]->first, 6);
  CHECK_EQ(p.v[3]->first, 10);
  ws_plan_free(&p);
}

static void test_plan_gap_names_missing_range(void) {
  const char *n[] = {snap(1), seg(2, 5), seg(9, 12)};
  ws_catalog c = cat_of(n, 3);
  ws_plan p = {0};
  ws_err e = WS_ERR_INIT;
  /* latest: refuse to silently stop at 5 when the store holds 12 */
  CHECK_EQ(ws_plan_build_for(&p, &c, "/st", 0, &e), WS_EGAP);
  CHECK(strstr(e.msg, "missing TXIDs 6..8") != NULL);
  CHECK(strstr(e.msg, "seg/0000000000000002-0000000000000005.seg") != NULL);
  /* a target inside the hole, and one beyond everything */
  e = (ws_err)WS_ERR_INIT;
  CHECK_EQ(ws_plan_build(&p, &c, 7, &e), WS_EGAP);
  CHECK(strstr(e.msg, "missing TXIDs 6..8") != NULL);
  e = (ws_err)WS_ERR_INIT;
  CHECK_EQ(ws_plan_build(&p, &c, 20, &e), WS_EGAP);
  CHECK(strstr(e.msg, "missing TXIDs 6..8") != NULL);
  /* a target before the hole is fine */
  CHECK_EQ(ws_plan_build(&p, &c, 4, &e), WS_OK);
  CHECK_EQ(p.txid, 4);
  CHECK_EQ(p.n, 2);
  ws_plan_free(&p);
}

static void test_plan_target_past_end(void) {
  const char *n[] = {snap(1), seg(2, 5)};
  ws_catalog c = cat_of(n, 2);
  ws_plan p = {0};
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_plan_build(&p, &c, 9, &e), WS_EGAP);
  CHECK(strstr(e.msg, "no object after txid 5") != NULL);
}

static void test_plan_target_inside_chain(void) {
  const char *n[] = {snap(1), seg(2, 5), seg(6, 9), seg(10, 12)};
  ws_catalog c = cat_of(n, 4);
  ws_plan p = {0};
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_plan_build(&p, &c, 7, &e), WS_OK);
  CHECK_EQ(p.txid, 7);
  CHECK_EQ(p.n, 3);          /* stops inside seg 6-9 */
  CHECK_EQ(p.v[2]->last, 9);
  ws_plan_free(&p);
  CHECK_EQ(ws_plan_build(&p, &c, 1, &e), WS_OK);
  CHECK_EQ(p.n, 1);
  CHECK_EQ(p.txid, 1);
  ws_plan_free(&p);
}

static void test_plan_target_before_first_snapshot(void) {
  const char *n[] = {snap(5), seg(6, 9)};
  ws_catalog c = cat_of(n, 2);
  ws_plan p = {0};
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_plan_build(&p, &c, 3, &e), WS_EGAP);
  CHECK(strstr(e.msg, "snap/0000000000000005.snap") != NULL);
}

static void test_plan_empty_store(void) {
  const char *n[] = {seg(2, 5), "other/file"};
  ws_catalog c = cat_of(n, 2);
  ws_plan p = {0};
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_plan_build_for(&p, &c, "/srv/st", 0, &e), WS_EEMPTY);
  CHECK(strstr(e.msg, "store /srv/st holds no snapshot") != NULL);
  ws_catalog none = {NULL, 0};
  CHECK_EQ(ws_plan_build(&p, &none, 0, &e), WS_EEMPTY);
}

static void test_plan_starts_at_newest_snapshot(void) {
  const char *n[] = {snap(1), seg(2, 5), seg(6, 10), snap(10), seg(11, 12), snap(5)};
  ws_catalog c = cat_of(n, 6);
  ws_plan p = {0};
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_plan_build(&p, &c, 0, &e), WS_OK);
  CHECK_EQ(p.n, 2);
  CHECK_EQ(p.v[0]->kind, WS_KIND_SNAPSHOT);
  CHECK_EQ(p.v[0]->last, 10);
  CHECK_EQ(p.txid, 12);
  ws_plan_free(&p);
  /* with a target, the newest snapshot at or before it */
  CHECK_EQ(ws_plan_build(&p, &c, 8, &e), WS_OK);
  CHECK_EQ(p.v[0]->last, 5);
  CHECK_EQ(p.n, 2);
  CHECK_EQ(p.txid, 8);
  ws_plan_free(&p);
}

static void test_plan_overlapping_picks_farthest(void) {
  /* 2-3 and 2-8 both start at 2 (a compaction); 2-20 runs past target. */
  const char *n[] = {snap(1), seg(2, 3), seg(4, 8), seg(2, 8), seg(2, 20),
                     seg(9, 12), seg(5, 12)};
  ws_catalog c = cat_of(n, 7);
  ws_plan p = {0};
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_plan_build(&p, &c, 12, &e), WS_OK);
  CHECK_EQ(p.n, 3);
  CHECK_EQ(p.v[1]->first, 2);
  CHECK_EQ(p.v[1]->last, 8);
  CHECK_EQ(p.v[2]->first, 9);
  ws_plan_free(&p);
  /* latest: the store reaches 20 through 2-20 */
  CHECK_EQ(ws_plan_build(&p, &c, 0, &e), WS_OK);
  CHECK_EQ(p.n, 2);
  CHECK_EQ(p.v[1]->last, 20);
  CHECK_EQ(p.txid, 20);
  ws_plan_free(&p);
  /* all candidates overshoot target 2..: take the shortest, stop inside */
  const char *m[] = {snap(1), seg(2, 20), seg(2, 9)};
  c = cat_of(m, 3);
  CHECK_EQ(ws_plan_build(&p, &c, 5, &e), WS_OK);
  CHECK_EQ(p.n, 2);
  CHECK_EQ(p.v[1]->last, 9);
  CHECK_EQ(p.txid, 5);
  ws_plan_free(&p);
}

static void test_plan_straddling_segment_is_not_cut(void) {
  /* From snap 6, seg 5-9 cannot be applied (it starts before 7). */
  const char *n[] = {snap(6), seg(5, 9)};
  ws_catalog c = cat_of(n, 2);
  ws_plan p = {0};
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_plan_build(&p, &c, 0, &e), WS_EGAP);
  CHECK(strstr(e.msg, "no object starts at txid 7") != NULL);
}

static void test_plan_older_snapshot_through_compaction(void) {
  const char *n[] = {snap(4), seg(5, 9), snap(6), seg(10, 11)};
  ws_catalog c = cat_of(n, 4);
  ws_plan p = {0};
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_plan_build(&p, &c, 0, &e), WS_OK);
  CHECK_EQ(p.v[0]->last, 4);
  CHECK_EQ(p.n, 3);
  CHECK_EQ(p.txid, 11);
  ws_plan_free(&p);
}

int main(void) {
  RUN(test_name_format_roundtrip);
  RUN(test_name_parse_is_strict);
  RUN(test_plan_simple_chain);
  RUN(test_plan_gap_names_missing_range);
  RUN(test_plan_target_past_end);
  RUN(test_plan_target_inside_chain);
  RUN(test_plan_target_before_first_snapshot);
  RUN(test_plan_empty_store);
  RUN(test_plan_starts_at_newest_snapshot);
  RUN(test_plan_overlapping_picks_farthest);
  RUN(test_plan_straddling_segment_is_not_cut);
  RUN(test_plan_older_snapshot_through_compaction);
  T_EXIT();
}
