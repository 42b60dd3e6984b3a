/*
** Encrypting store (src/store_crypt.c) over a file store: round trips of
** every chunk-boundary size, ranged reads, sizes in listings, key rings and
** rotation, and every kind of tampering named at read time.  Then hostile
** store contents (docs/SECURITY.md section 5): names that try to leave the
** store, sizes no object can have, absurd ranges, listings past the cap
** and listings full of hostile names.
*/
#include "t.h"
#include "crypt.h"
#include "common.h"
#include "walship/store.h"
#include "store_int.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define CH WS_CRYPT_CHUNK

static char root_[] = "/tmp/ws-test-crypt.XXXXXX";
static char dir_[300], k1_[300], k12_[300], k2_[300];

static const char *K1 = "k1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
static const char *K2 = "k2 Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=\n";

static void write_file(const char *path, const void *p, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd >= 0) {
    if (write(fd, p, n) != (ssize_t)n) perror(path);
    close(fd);
  }
}

static int setup(void) {
  if (!mkdtemp(root_)) return -1;
  snprintf(dir_, sizeof(dir_), "%s/store", root_);
  snprintf(k1_, sizeof(k1_), "%s/k1", root_);
  snprintf(k2_, sizeof(k2_), "%s/k2", root_);
  snprintf(k12_, sizeof(k12_), "%s/k21", root_);
  write_file(k1_, K1, strlen(K1));
  write_file(k2_, K2, strlen(K2));
  char both[300];
  snprintf(both, sizeof(both), "# current first\n%s\n  %s", K2, K1);
  write_file(k12_, both, strlen(both));
  return mkdir(dir_, 0700);
}

static ws_store *open_with(const char *keyfile) {
  ws_store_opts o = WS_STORE_OPTS_INIT;
  o.encryption_key_file = keyfile;
  ws_store *st = NULL;
  ws_err e = WS_ERR_INIT;
  if (ws_store_open_ex(&st, dir_, &o, &e)) {
    printf("# open: %s\n", e.msg);
    return NULL;
  }
  return st;
}

static uint8_t *pattern(size_t n, unsigned seed) {
  uint8_t *p = malloc(n ? n : 1);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    p[i] = (uint8_t)(x >> 16);
  }
  return p;
}

/* put in pieces of 1000 bytes, to cross chunk boundaries mid-write */
static int put_pieces(ws_store *st, const char *name, const uint8_t *p, size_t n, ws_err *e) {
  ws_upload *up = NULL;
  int rc = st->m->put_begin(&up, st, name, e);
  if (rc) return rc;
  for (size_t i = 0; i < n; i += 1000) {
    size_t k = n - i < 1000 ? n - i : 1000;
    if ((rc = st->m->put_write(up, p + i, k, e))) {
      st->m->put_abort(up);
      return rc;
    }
  }
  return st->m->put_commit(up, e);
}

static void test_crypt_sizes_invert(void) {
  uint64_t p;
  for (uint64_t n = 0; n < 3 * CH + 40; n += (n < 2 * CH - 3 && n > 20 ? 997 : 1)) {
    uint64_t c = ws_crypt_cipher_size(n);
    CHECK(ws_crypt_plain_size(c, &p) == 0);
    CHECK_EQ(p, n);
  }
  /* too short for a header and a tag; a last chunk of only a tag after a
  ** full one cannot exist */
  CHECK(ws_crypt_plain_size(WS_CRYPT_HDR + 15, &p) < 0);
  CHECK(ws_crypt_plain_size(WS_CRYPT_HDR + CH + 16 + 16, &p) < 0);
}

static void test_crypt_roundtrip_every_boundary(void) {
  ws_store *st = open_with(k1_);
  CHECK(st);
  size_t sizes[] = {0, 1, 127, CH - 1, CH, CH + 1, 2 * CH, 3 * CH + 17};
  ws_err e = WS_ERR_INIT;
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    char name[64];
    snprintf(name, sizeof(name), "seg/obj%zu", i);
    uint8_t *p = pattern(sizes[i], (unsigned)i);
    CHECK(put_pieces(st, name, p, sizes[i], &e) == WS_OK);
    void *back = NULL;
    size_t n = 0;
    CHECK(ws_store_get_buf(&back, &n, st, name, 0, 0, 1 << 20, &e) == WS_OK);
    CHECK_EQ(n, sizes[i]);
    CHECK(memcmp(back, p, n) == 0);
    free(back);
    /* ranges: header-like, trailer-like, across a boundary, past the end */
    uint64_t rs[][2] = {{0, 128}, {sizes[i] > 64 ? sizes[i] - 64 : 0, 64},
                        {CH - 5, 10}, {CH, 1}, {2 * CH - 1, CH + 2}, {sizes[i], 10},
                        {sizes[i] + CH + 3, 5}, {5, 0}};
    for (size_t r = 0; r < sizeof(rs) / sizeof(rs[0]); r++) {
      uint64_t off = rs[r][0], len = rs[r][1];
      uint64_t want = off >= sizes[i] ? 0 : len == 0 || len > sizes[i] - off ? sizes[i] - off : len;
      back = NULL;
      if (ws_store_get_buf(&back, &n, st, name, off, len, 1 << 20, &e)) {
        printf("# size %zu range %llu+%llu: %s\n", sizes[i], (unsigned long long)off,
               (unsigned long long)len, e.msg);
        CHECK(0);
      }
      CHECK_EQ(n, want);
      CHECK(n == 0 || memcmp(back, p + off, n) == 0);
      free(back);
    }
    free(p);
  }
  ws_store_list l = {NULL, 0, 0};
  CHECK(st->m->list(&l, st, "seg/", &e) == WS_OK);
  CHECK_EQ(l.n, sizeof(sizes) / sizeof(sizes[0]));
  for (size_t i = 0; i < l.n; i++) {
    size_t k = (size_t)atoi(l.v[i].name + 7);
    CHECK_EQ(l.v[i].size, sizes[k]);
  }
  ws_store_list_free(&l);
  ws_store_close(st);
}

static void test_crypt_store_holds_no_plaintext(void) {
  ws_store *st = open_with(k1_);
  CHECK(st);
  char buf[4000];
  for (size_t i = 0; i < sizeof(buf); i++) buf[i] = "PLAINTEXT-MARKER "[i % 17];
  ws_err e = WS_ERR_INIT;
  CHECK(ws_store_put_buf(st, "snap/marker", buf, sizeof(buf), &e) == WS_OK);
  ws_store_close(st);
  char path[400];
  snprintf(path, sizeof(path), "%s/snap/marker", dir_);
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0);
  static char raw[8192];
  ssize_t n = read(fd, raw, sizeof(raw));
  close(fd);
  CHECK_EQ(n, (ssize_t)ws_crypt_cipher_size(sizeof(buf)));
  CHECK(memmem(raw, (size_t)n, "MARKER", 6) == NULL);
  CHECK(memcmp(raw, "WSE1", 4) == 0);
}

/* Read name through a store with keyfile: the return code and message. */
static int read_err(const char *keyfile, const char *name, ws_err *e) {
  ws_store *st = open_with(keyfile);
  if (!st) return -1;
  void *back = NULL;
  size_t n = 0;
  *e = (ws_err)WS_ERR_INIT;
  int rc = ws_store_get_buf(&back, &n, st, name, 0, 0, 1 << 20, e);
  free(back);
  ws_store_close(st);
  return rc;
}

static void test_crypt_key_rotation(void) {
  ws_store *st = open_with(k1_);
  CHECK(st);
  ws_err e = WS_ERR_INIT;
  uint8_t *p = pattern(CH + 9, 7);
  CHECK(ws_store_put_buf(st, "seg/old", p, CH + 9, &e) == WS_OK);
  ws_store_close(st);
  CHECK((st = open_with(k12_)));  /* k2 current, k1 still listed */
  CHECK(ws_store_put_buf(st, "seg/new", p, 100, &e) == WS_OK);
  ws_store_close(st);
  CHECK_EQ(read_err(k12_, "seg/old", &e), WS_OK);
  CHECK_EQ(read_err(k12_, "seg/new", &e), WS_OK);
  CHECK_EQ(read_err(k2_, "seg/new", &e), WS_OK);
  /* only the new key: the old object names its key id */
  CHECK_EQ(read_err(k2_, "seg/old", &e), WS_EVERIFY);
  CHECK(strstr(e.msg, "seg/old") && strstr(e.msg, "'k1'"));
  CHECK_EQ(read_err(k1_, "seg/new", &e), WS_EVERIFY);
  CHECK(strstr(e.msg, "'k2'"));
  /* same id, other key bytes: authentication fails, naming id and object */
  char wrong[300];
  snprintf(wrong, sizeof(wrong), "%s/wrong", root_);
  const char *w = "k1 ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
  write_file(wrong, w, strlen(w));
  CHECK_EQ(read_err(wrong, "seg/old", &e), WS_ECORRUPT);
  CHECK(strstr(e.msg, "seg/old") && strstr(e.msg, "'k1'") && strstr(e.msg, "chunk 0"));
  free(p);
}

static void copy_obj(const char *from, const char *to, long truncate_to, long flip_at) {
  char a[400], b[400];
  snprintf(a, sizeof(a), "%s/%s", dir_, from);
  snprintf(b, sizeof(b), "%s/%s", dir_, to);
  static uint8_t buf[4 * CH];
  int fd = open(a, O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
  if (fd >= 0) close(fd);
  if (n < 0) return;
  if (truncate_to >= 0 && truncate_to < n) n = truncate_to;
  if (flip_at >= 0 && flip_at < n) buf[flip_at] ^= 0x20;
  write_file(b, buf, (size_t)n);
}

/* A fresh object name, then its stored bytes tampered with in place. */
static int fresh(ws_store *st, const char *name, const uint8_t *p, size_t n,
                 long truncate_to, long flip_at) {
  ws_err e = WS_ERR_INIT;
  if (ws_store_put_buf(st, name, p, n, &e)) return -1;
  copy_obj(name, name, truncate_to, flip_at);
  return 0;
}

static void test_crypt_tampering_named(void) {
  ws_store *st = open_with(k1_);
  CHECK(st);
  ws_err e = WS_ERR_INIT;
  size_t n = 2 * CH + 100;
  uint8_t *p = pattern(n, 9);
  size_t H = WS_CRYPT_HDR, CT = CH + WS_CRYPT_TAG;
  /* a flipped ciphertext byte in chunk 1 */
  CHECK(fresh(st, "seg/t1", p, n, -1, (long)(H + CT + 50)) == 0);
  CHECK_EQ(read_err(k1_, "seg/t1", &e), WS_ECORRUPT);
  CHECK(strstr(e.msg, "seg/t1") && strstr(e.msg, "chunk 1"));
  /* a flipped header byte (the salt): every chunk fails */
  CHECK(fresh(st, "seg/t2", p, n, -1, 10) == 0);
  CHECK_EQ(read_err(k1_, "seg/t2", &e), WS_ECORRUPT);
  CHECK(strstr(e.msg, "chunk 0"));
  /* another object's bytes under this name (swapped objects) */
  CHECK(fresh(st, "seg/t3", p, n, -1, -1) == 0);
  CHECK(fresh(st, "seg/t3b", p, n, -1, -1) == 0);
  copy_obj("seg/t3b", "seg/t3", -1, -1);
  CHECK_EQ(read_err(k1_, "seg/t3", &e), WS_ECORRUPT);
  CHECK(strstr(e.msg, "seg/t3") && strstr(e.msg, "another name"));
  /* truncated at a chunk boundary: the final flag catches it */
  CHECK(fresh(st, "seg/t4", p, n, (long)(H + 2 * CT), -1) == 0);
  CHECK_EQ(read_err(k1_, "seg/t4", &e), WS_ECORRUPT);
  CHECK(strstr(e.msg, "seg/t4") && strstr(e.msg, "truncated"));
  /* truncated mid-chunk, to the bare header, inside the header */
  CHECK(fresh(st, "seg/t5", p, n, (long)(H + CT + 7), -1) == 0);
  CHECK_EQ(read_err(k1_, "seg/t5", &e), WS_ECORRUPT);
  CHECK(fresh(st, "seg/t6", p, n, (long)H, -1) == 0);
  CHECK_EQ(read_err(k1_, "seg/t6", &e), WS_ECORRUPT);
  CHECK(strstr(e.msg, "truncated"));
  CHECK(fresh(st, "seg/t7", p, n, 11, -1) == 0);
  CHECK_EQ(read_err(k1_, "seg/t7", &e), WS_ECORRUPT);
  CHECK(strstr(e.msg, "truncated"));
  /* chunks 0 and 1 exchanged within the object */
  CHECK(fresh(st, "seg/t8", p, n, -1, -1) == 0);
  {
    char path[400];
    static uint8_t b[4 * CH], tmp[CH + 16];
    snprintf(path, sizeof(path), "%s/seg/t8", dir_);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    ssize_t got = read(fd, b, sizeof(b));
    CHECK(got > (ssize_t)(H + 2 * CT));
    memcpy(tmp, b + H, CT);
    memcpy(b + H, b + H + CT, CT);
    memcpy(b + H + CT, tmp, CT);
    CHECK(pwrite(fd, b, (size_t)got, 0) == got);
    close(fd);
  }
  CHECK_EQ(read_err(k1_, "seg/t8", &e), WS_ECORRUPT);
  CHECK(strstr(e.msg, "seg/t8") && strstr(e.msg, "chunk 0"));
  /* an unencrypted object where encryption is on */
  char plain[400];
  snprintf(plain, sizeof(plain), "%s/seg/plain", dir_);
  char hdr[128] = "WALSHIP";
  write_file(plain, hdr, sizeof(hdr));
  CHECK_EQ(read_err(k1_, "seg/plain", &e), WS_ECORRUPT);
  CHECK(strstr(e.msg, "not encrypted"));
  ws_store_close(st);
  free(p);
}

static void test_crypt_key_ring_parsing(void) {
  ws_keyring *kr = NULL;
  ws_err e = WS_ERR_INIT;
  uint8_t raw[32];
  memset(raw, 0x01, sizeof(raw));
  raw[5] = 0x00;
  CHECK(ws_keyring_parse(&kr, raw, 32, "raw", &e) == WS_OK);
  CHECK_EQ(strlen(ws_keyring_current_id(kr)), 8);   /* a fingerprint */
  ws_keyring_free(kr);
  const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  CHECK(ws_keyring_parse(&kr, hex, strlen(hex), "x", &e) == WS_OK);
  ws_keyring_free(kr);
  const char *bad = "k1 00010203040506070809SECRETPART0f101112131415161718191a1b1c1d1e\n";
  CHECK_EQ(ws_keyring_parse(&kr, bad, strlen(bad), "$X", &e), WS_EINVAL);
  CHECK(strstr(e.msg, "line 1") && !strstr(e.msg, "SECRET"));
  char dup[200];
  snprintf(dup, sizeof(dup), "a %s\na %s\n", hex, hex);
  CHECK_EQ(ws_keyring_parse(&kr, dup, strlen(dup), "x", &e), WS_EINVAL);
  CHECK(strstr(e.msg, "twice"));
  char longid[200];
  snprintf(longid, sizeof(longid), "abcdefghijklmnopq %s\n", hex);
  CHECK_EQ(ws_keyring_parse(&kr, longid, strlen(longid), "x", &e), WS_EINVAL);
  CHECK_EQ(ws_keyring_parse(&kr, "# nothing\n", 10, "x", &e), WS_EINVAL);
  CHECK(strstr(e.msg, "no key"));
  CHECK_EQ(ws_keyring_load(&kr, "/nonexistent/key", &e), WS_ENOTFOUND);
}

static void test_hostile_names_refused(void) {
  ws_store *st = open_with(k1_);
  CHECK(st);
  const char *bad[] = {"../escape", "/etc/passwd", "seg/../../escape", "seg//x", "seg/./x",
                       "seg/x\n", "seg/%2e%2e", "seg/x y", ""};
  ws_err e = WS_ERR_INIT;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ws_upload *up = NULL;
    CHECK_EQ(st->m->put_begin(&up, st, bad[i], &e), WS_EINVAL);
    void *b = NULL;
    size_t n = 0;
    CHECK_EQ(ws_store_get_buf(&b, &n, st, bad[i], 0, 0, 1024, &e), WS_EINVAL);
    CHECK(e.msg[0]);
  }
  char path[400];
  snprintf(path, sizeof(path), "%s/escape", root_);
  CHECK(access(path, F_OK) != 0);
  ws_store_close(st);
}

static void test_hostile_sizes_and_ranges(void) {
  ws_store *st = open_with(k1_);
  CHECK(st);
  char path[400];
  snprintf(path, sizeof(path), "%s/snap", dir_);
  mkdir(path, 0700);
  snprintf(path, sizeof(path), "%s/snap/odd", dir_);
  uint8_t junk[45];
  memset(junk, 'x', sizeof(junk));
  memcpy(junk, "WSE1", 4);
  write_file(path, junk, sizeof(junk));  /* 45 bytes: no envelope is that long */
  ws_store_list l = {NULL, 0, 0};
  ws_err e = WS_ERR_INIT;
  CHECK(st->m->list(&l, st, "snap/odd", &e) == WS_OK);
  CHECK_EQ(l.n, 1);
  CHECK_EQ(l.v[0].size, 0);
  ws_store_list_free(&l);
  void *b = NULL;
  size_t n = 0;
  CHECK_EQ(ws_store_get_buf(&b, &n, st, "snap/odd", 0, 0, 1024, &e), WS_ECORRUPT);
  CHECK(strstr(e.msg, "snap/odd"));
  uint8_t *p = pattern(100, 3);
  CHECK(ws_store_put_buf(st, "snap/ok", p, 100, &e) == WS_OK);
  CHECK_EQ(ws_store_get_buf(&b, &n, st, "snap/ok", 1ull << 60, 10, 1024, &e), WS_EINVAL);
  CHECK_EQ(ws_store_get_buf(&b, &n, st, "snap/ok", 0, UINT64_MAX, 1024, &e), WS_EINVAL);
  free(p);
  ws_store_close(st);
}

static void test_hostile_listing_capped(void) {
  /* a listing at the cap refuses one more entry, naming the store */
  ws_store_list l = {NULL, WS_STORE_LIST_MAX, WS_STORE_LIST_MAX};
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_store_list_add(&l, "seg/x", 1, 0, "s3://bucket/p", &e), WS_ENOMEM);
  CHECK(strstr(e.msg, "s3://bucket/p") && strstr(e.msg, "exceeds"));
}

static void test_hostile_http_listing_names_skipped(void) {
  /* 100000 entries, every other one hostile: the good ones listed, the
  ** hostile ones never */
  size_t n = 100000, cap = n * 64 + 16, at = 0;
  char *body = malloc(cap);
  CHECK(body);
  at += (size_t)snprintf(body + at, cap - at, "[");
  for (size_t i = 0; i < n; i++)
    at += (size_t)snprintf(body + at, cap - at, "%s{\"name\":\"%s%zu\",\"type\":\"%s\","
                           "\"size\":9}", i ? "," : "",
                           i % 2 == 0 ? "x" : i % 6 == 1 ? "../x" : i % 6 == 3 ? "..%2f.." : "a\\\\b",
                           i, i % 6 == 3 ? "directory" : "file");
  at += (size_t)snprintf(body + at, cap - at, "]");
  ws_store_list l = {NULL, 0, 0};
  char **subs = NULL;
  size_t nsubs = 0;
  ws_err e = WS_ERR_INIT;
  int rc = ws_store_http_parse_listing(&l, "http://h/p", body, at, "seg/", "seg/", 0,
                                       "http://h/p/seg/", &subs, &nsubs, &e);
  free(body);
  CHECK_EQ(rc, WS_OK);
  CHECK_EQ(l.n, n / 2);
  for (size_t i = 0; i < l.n; i++) CHECK(strstr(l.v[i].name, "..") == NULL);
  ws_store_list_free(&l);
  free(subs);
}

/* put_if through the encrypting store: the record is encrypted, read back
** decrypted, and the conditions hold on the inner (file) store's tokens. */
static void test_crypt_put_if_passes_through(void) {
  ws_store *st = open_with(k1_);
  CHECK(st);
  ws_err e = WS_ERR_INIT;
  char t1[WS_STORE_ETAG_MAX], t2[WS_STORE_ETAG_MAX], cur[WS_STORE_ETAG_MAX];
  CHECK(ws_store_can_put_if(st));
  CHECK_EQ(st->m->put_if(st, "lease/cw", "LEASE-MARKER", 12, NULL, t1, &e), WS_OK);
  CHECK_EQ(st->m->etag(st, "lease/cw", cur, &e), WS_OK);
  CHECK(strcmp(cur, t1) == 0);
  CHECK_EQ(st->m->put_if(st, "lease/cw", "other", 5, NULL, t2, &e), WS_EEXIST);
  CHECK_EQ(st->m->put_if(st, "lease/cw", "LEASE-MARKER2", 13, t1, t2, &e), WS_OK);
  CHECK_EQ(st->m->put_if(st, "lease/cw", "stale", 5, t1, cur, &e), WS_EEXIST);
  void *back = NULL;
  size_t n = 0;
  CHECK_EQ(ws_store_get_buf(&back, &n, st, "lease/cw", 0, 0, 1024, &e), WS_OK);
  int same = n == 13 && memcmp(back, "LEASE-MARKER2", 13) == 0;
  free(back);
  CHECK(same);
  ws_store_close(st);
  char path[400];
  snprintf(path, sizeof(path), "%s/lease/cw", dir_);
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0);
  char raw[512];
  ssize_t r = read(fd, raw, sizeof(raw));
  close(fd);
  CHECK_EQ(r, (ssize_t)ws_crypt_cipher_size(13));
  CHECK(memmem(raw, (size_t)r, "MARKER", 6) == NULL);
}

int main(void) {
  if (setup()) {
    printf("FAIL setup: cannot create %s\n", root_);
    return 1;
  }
  RUN(test_crypt_sizes_invert);
  RUN(test_crypt_roundtrip_every_boundary);
  RUN(test_crypt_store_holds_no_plaintext);
  RUN(test_crypt_key_rotation);
  RUN(test_crypt_tampering_named);
  RUN(test_crypt_key_ring_parsing);
  RUN(test_hostile_names_refused);
  RUN(test_hostile_sizes_and_ranges);
  RUN(test_hostile_listing_capped);
  RUN(test_hostile_http_listing_names_skipped);
  RUN(test_crypt_put_if_passes_through);
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", root_);
  if (system(cmd) != 0) printf("# could not remove %s\n", root_);
  T_EXIT();
}
