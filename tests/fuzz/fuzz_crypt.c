/*
** libFuzzer target: the decryptor of the encrypting store (src/store_crypt.c)
** as restore reads objects — whole and by ranges.
**
** Input: five control bytes, then an object.  Byte 0, bit 0: the rest is a
** plaintext, which is encrypted first (so the fuzzer reaches the chunk
** walk with authentic objects), then bit 1 flips the byte at offset
** (bytes 3..4, times 13) of the ciphertext and bit 2 truncates it there,
** and bit 3 repeats a plaintext of at most 400 bytes 600 times (several
** chunks from a small seed); without bit 0 the rest is fed as a stored
** object.  Bytes 1..2: the plaintext
** range offset in units of 509 bytes, byte 3..4 (when not a mutation
** offset) its length in units of 1021 (0 = to the end).  The decryptor
** must never crash or over-read; it may hand out plaintext only for an
** authentic object, and then exactly the plaintext of the range asked for;
** an authentic, unmodified object always decrypts, and a stored object
** that decrypts whole is as long as its size says; every failure has a
** message.
*/
#include "crypt.h"
#include "common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *ring_text =
    "k1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
    "k0 1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100\n";
static const char *NAME = "seg/0000000000000002-0000000000000009.seg";

typedef struct acc {
  uint8_t *p;
  size_t n, cap;
} acc;

static int sink(void *ud, const void *buf, size_t len, ws_err *err) {
  acc *a = ud;
  if (a->n + len > a->cap) {
    size_t cap = (a->n + len) * 2;
    uint8_t *q = realloc(a->p, cap);
    if (!q) return ws_fail(err, WS_ENOMEM, "fuzz: out of memory");
    a->p = q;
    a->cap = cap;
  }
  memcpy(a->p + a->n, buf, len);
  a->n += len;
  return WS_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static ws_keyring *kr;
  ws_err err = WS_ERR_INIT;
  if (!kr && ws_keyring_parse(&kr, ring_text, strlen(ring_text), "fuzz", &err)) abort();
  if (size < 5 || size > (4u << 20)) return 0;
  uint8_t flags = data[0];
  uint64_t off = (uint64_t)ws_get16(data + 1) * 509;
  uint16_t b34 = ws_get16(data + 3);
  const uint8_t *in = data + 5;
  size_t n = size - 5;
  void *obj = NULL;
  size_t olen = 0;
  int authentic = 0;
  uint8_t *big = NULL;
  if ((flags & 9) == 9 && n > 0 && n <= 400) {
    /* small seeds, several chunks: the plaintext repeated 600 times */
    if (!(big = malloc(n * 600))) return 0;
    for (size_t i = 0; i < 600; i++) memcpy(big + i * n, in, n);
    in = big;
    n *= 600;
  }
  if (flags & 1) {
    if (ws_crypt_encrypt_buf(&obj, &olen, kr, NAME, in, n, &err)) abort();
    authentic = 1;
    size_t at = (size_t)b34 * 13;
    if ((flags & 2) && at < olen) {
      ((uint8_t *)obj)[at] ^= (uint8_t)(1u << (flags >> 5));
      authentic = 0;
    }
    if ((flags & 4) && at < olen) {
      olen = at;
      authentic = 0;
    }
  } else {
    obj = malloc(n ? n : 1);
    if (!obj) return 0;
    memcpy(obj, in, n);
    olen = n;
  }
  uint64_t len = (flags & 6) == 0 ? (uint64_t)b34 * 1021 : 0;
  acc a = {NULL, 0, 0};
  int rc = ws_crypt_decrypt_buf(kr, NAME, obj, olen, off, len, sink, &a, &err);
  if (rc != WS_OK && !err.msg[0]) abort();
  if (authentic) {
    /* the whole plaintext was in: exactly its range comes out */
    if (rc != WS_OK) abort();
    size_t want = off >= n ? 0 : len == 0 || len > n - off ? n - (size_t)off : (size_t)len;
    if (a.n != want || (want && memcmp(a.p, in + off, want) != 0)) abort();
    uint64_t ps;
    if (ws_crypt_plain_size(olen, &ps) || ps != n) abort();
  } else if (!(flags & 1) && rc == WS_OK && off == 0 && len == 0) {
    /* a stored object that decrypts whole has the size listings report */
    uint64_t ps;
    if (ws_crypt_plain_size(olen, &ps) || ps != a.n) abort();
  }
  free(a.p);
  free(obj);
  free(big);
  return 0;
}
