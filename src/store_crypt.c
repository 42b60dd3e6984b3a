/*
** The encrypting store: a ws_store that wraps any other (file, http, s3)
** and stores every object's bytes encrypted and authenticated, so a reader
** of the store learns only object names and sizes.  The key ring (the keys
** and their ids) is parsed here too.
**
** Envelope (docs/FORMAT.md "Encrypted objects"), all integers big-endian:
**
**   header  40 bytes   "WSE1" version(1)=1 chunk_log2(1)=16 zero(2)
**                      salt(16, random per object) key_id(16, NUL-padded)
**   chunk i            AES-256-GCM ciphertext of plaintext bytes
**                      [i*64K, min((i+1)*64K, size)), then its 16-byte tag
**
** Every chunk but the last holds exactly 64 KiB of plaintext; the last holds
** 1..64 KiB (0 only for an empty object), so the plaintext size follows from
** the stored size alone (listings report it without a request) and a
** truncation at a chunk boundary is still caught by the final flag below.
**
** Keys: the object key is HKDF-SHA256(ring key, salt, "walship v1 object"),
** fresh per object, so GCM nonces can simply count chunks (nonce = 4 zero
** bytes || chunk index(8)) without ever repeating under one key.  Each
** chunk's additional data is header(40) || index(8) || final(1) || name:
** a modified header, a chunk moved within or between objects, a dropped
** tail and an object stored under another name all fail authentication.
**
** Invariants: no plaintext is handed to a sink before its chunk's tag
** verified; memory per transfer is two chunks; key bytes never reach a
** message and are cleansed when freed.
*/
#include "crypt.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#define C WS_CRYPT_CHUNK
#define T WS_CRYPT_TAG
#define H WS_CRYPT_HDR
#define CT (C + T)
#define KEYFILE_MAX (64u << 10)

static const uint8_t magic[4] = {'W', 'S', 'E', '1'};

typedef struct ws_key {
  char id[WS_CRYPT_KEYID_MAX + 1];
  uint8_t k[32];
} ws_key;

struct ws_keyring {
  ws_key v[WS_CRYPT_KEYS_MAX];
  size_t n;                 /* v[0] encrypts new objects */
};

/* ---- key ring ---------------------------------------------------------- */

void ws_keyring_free(ws_keyring *kr) {
  if (!kr) return;
  OPENSSL_cleanse(kr, sizeof(*kr));
  free(kr);
}

const char *ws_keyring_current_id(const ws_keyring *kr) { return kr->v[0].id; }

static int id_char(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* 64 hex digits or base64 of exactly 32 bytes -> out; 0 or -1. */
static int decode_key(uint8_t out[32], const char *s, size_t n) {
  if (n == 64) {
    for (size_t i = 0; i < 32; i++) {
      int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
      if (hi < 0 || lo < 0) goto b64;
      out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
  }
b64:
  if (n != 44 || s[43] != '=' || s[42] == '=') return -1;
  uint8_t tmp[33];
  int got = EVP_DecodeBlock(tmp, (const unsigned char *)s, 44);
  int ok = got == 33;
  if (ok) memcpy(out, tmp, 32);
  OPENSSL_cleanse(tmp, sizeof(tmp));
  return ok ? 0 : -1;
}

/* Default id of a key given without one: a fingerprint, so that messages can
** name it without revealing it. */
static void default_id(char id[WS_CRYPT_KEYID_MAX + 1], const uint8_t k[32]) {
  static const char hx[] = "0123456789abcdef";
  uint8_t md[32];
  unsigned mdlen = 0;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
      EVP_DigestUpdate(c, "walship key id", 14) && EVP_DigestUpdate(c, k, 32) &&
      EVP_DigestFinal_ex(c, md, &mdlen) && mdlen >= 4) {
    for (int i = 0; i < 4; i++) {
      id[2 * i] = hx[md[i] >> 4];
      id[2 * i + 1] = hx[md[i] & 15];
    }
    id[8] = 0;
  } else {
    strcpy(id, "key");
  }
  EVP_MD_CTX_free(c);
}

static int add_key(ws_keyring *kr, const char *id, size_t idlen, const uint8_t k[32],
                   const char *what, unsigned line, ws_err *err) {
  if (kr->n == WS_CRYPT_KEYS_MAX)
    return ws_fail(err, WS_EINVAL, "encryption keys in %s: more than %d keys", what,
                   WS_CRYPT_KEYS_MAX);
  ws_key *e = &kr->v[kr->n];
  if (id) {
    if (idlen == 0 || idlen > WS_CRYPT_KEYID_MAX)
      return ws_fail(err, WS_EINVAL, "encryption keys in %s line %u: key id must be "
                     "1..%d characters", what, line, WS_CRYPT_KEYID_MAX);
    for (size_t i = 0; i < idlen; i++)
      if (!id_char((unsigned char)id[i]))
        return ws_fail(err, WS_EINVAL, "encryption keys in %s line %u: key id may "
                       "only hold [A-Za-z0-9._-]", what, line);
    memcpy(e->id, id, idlen);
    e->id[idlen] = 0;
  } else {
    default_id(e->id, k);
  }
  for (size_t i = 0; i < kr->n; i++)
    if (strcmp(kr->v[i].id, e->id) == 0)
      return ws_fail(err, WS_EINVAL, "encryption keys in %s line %u: key id '%s' "
                     "appears twice", what, line, e->id);
  memcpy(e->k, k, 32);
  kr->n++;
  return WS_OK;
}

static int parse_text(ws_keyring *kr, const char *s, size_t len, const char *what,
                      ws_err *err) {
  uint8_t k[32];
  unsigned line = 0;
  int rc = WS_OK;
  for (size_t i = 0; i < len && rc == WS_OK;) {
    size_t e = i;
    while (e < len && s[e] != '\n') e++;
    line++;
    const char *tok[3];
    size_t tl[3], nt = 0;
    for (size_t j = i; j < e;) {
      while (j < e && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r')) j++;
      if (j == e || s[j] == '#') break;
      size_t b = j;
      while (j < e && s[j] != ' ' && s[j] != '\t' && s[j] != '\r') j++;
      if (nt < 3) {
        tok[nt] = s + b;
        tl[nt] = j - b;
      }
      nt++;
    }
    i = e + 1;
    if (nt == 0) continue;
    if (nt > 2) {
      rc = ws_fail(err, WS_EINVAL, "encryption keys in %s line %u: want \"[ID] KEY\"",
                   what, line);
      break;
    }
    const char *ks = tok[nt - 1];
    if (decode_key(k, ks, tl[nt - 1])) {
      rc = ws_fail(err, WS_EINVAL, "encryption keys in %s line %u: the key is not 64 "
                   "hex digits or base64 of 32 bytes", what, line);
      break;
    }
    rc = add_key(kr, nt == 2 ? tok[0] : NULL, nt == 2 ? tl[0] : 0, k, what, line, err);
  }
  OPENSSL_cleanse(k, sizeof(k));
  return rc;
}

int ws_keyring_parse(ws_keyring **out, const void *text, size_t len, const char *what,
                     ws_err *err) {
  const uint8_t *p = text;
  int binary = 0;
  for (size_t i = 0; i < len; i++)
    if (p[i] < 0x20 ? !(p[i] == '\n' || p[i] == '\r' || p[i] == '\t') : p[i] > 0x7e)
      binary = 1;
  ws_keyring *kr = ws_calloc(1, sizeof(*kr), err);
  if (!kr) return WS_ENOMEM;
  int rc;
  if (binary && len == 32)
    rc = add_key(kr, NULL, 0, p, what, 1, err);
  else if (binary)
    rc = ws_fail(err, WS_EINVAL, "encryption keys in %s: neither 32 raw bytes nor text "
                 "lines \"[ID] KEY\"", what);
  else
    rc = parse_text(kr, text, len, what, err);
  if (rc == WS_OK && kr->n == 0)
    rc = ws_fail(err, WS_EINVAL, "encryption keys in %s: no key found", what);
  if (rc) {
    ws_keyring_free(kr);
    return rc;
  }
  *out = kr;
  return WS_OK;
}

int ws_keyring_load(ws_keyring **out, const char *path, ws_err *err) {
  char what[300];
  snprintf(what, sizeof(what), "file %s", path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ws_fail(err, errno == ENOENT ? WS_ENOTFOUND : WS_EIO,
                   "encryption key file %s: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > KEYFILE_MAX) {
    close(fd);
    return ws_fail(err, WS_EINVAL, "encryption key file %s: not a regular file of at "
                   "most %u bytes", path, KEYFILE_MAX);
  }
  /* once per process: stores are reopened by every maintenance pass */
  static atomic_int warned;
  if ((sb.st_mode & S_IROTH) && !atomic_exchange(&warned, 1))
    ws_log(WS_LOG_WARN, "crypt", "encryption key file %s is readable by every user "
           "(mode %04o); chmod 600 it", path, (unsigned)(sb.st_mode & 07777));
  uint8_t *buf = ws_malloc((size_t)sb.st_size + 1, err);
  if (!buf) {
    close(fd);
    return WS_ENOMEM;
  }
  ssize_t got = ws_pread_full(fd, buf, (size_t)sb.st_size, 0, path, err);
  close(fd);
  int rc = got < 0 ? WS_EIO : ws_keyring_parse(out, buf, (size_t)got, what, err);
  OPENSSL_cleanse(buf, (size_t)sb.st_size + 1);
  free(buf);
  return rc;
}

/* ---- chunk crypto -------------------------------------------------------- */

static int derive(uint8_t out[32], const uint8_t key[32], const uint8_t *salt) {
  EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
  size_t olen = 32;
  int ok = pc && EVP_PKEY_derive_init(pc) > 0 &&
           EVP_PKEY_CTX_set_hkdf_md(pc, EVP_sha256()) > 0 &&
           EVP_PKEY_CTX_set1_hkdf_salt(pc, salt, 16) > 0 &&
           EVP_PKEY_CTX_set1_hkdf_key(pc, key, 32) > 0 &&
           EVP_PKEY_CTX_add1_hkdf_info(pc, (const unsigned char *)"walship v1 object", 17) > 0 &&
           EVP_PKEY_derive(pc, out, &olen) > 0 && olen == 32;
  EVP_PKEY_CTX_free(pc);
  return ok ? 0 : -1;
}

/* One chunk through GCM (enc: encrypt in -> out and write the tag after it;
** else decrypt in -> out and check the tag at in+n).  1 ok, 0 failed. */
static int gcm(EVP_CIPHER_CTX *x, int enc, const uint8_t key[32], const uint8_t *hdr,
               const char *name, uint64_t idx, int final, const uint8_t *in, size_t n,
               uint8_t *out) {
  uint8_t iv[12] = {0}, ad[9];
  int l = 0;
  ws_put64(iv + 4, idx);
  ws_put64(ad, idx);
  ad[8] = (uint8_t)(final ? 1 : 0);
  if (!EVP_CipherInit_ex(x, EVP_aes_256_gcm(), NULL, key, iv, enc) ||
      !EVP_CipherUpdate(x, NULL, &l, hdr, (int)H) ||
      !EVP_CipherUpdate(x, NULL, &l, ad, (int)sizeof(ad)) ||
      !EVP_CipherUpdate(x, NULL, &l, (const uint8_t *)name, (int)strlen(name)))
    return 0;
  if (n && !EVP_CipherUpdate(x, out, &l, in, (int)n)) return 0;
  if (!enc && !EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, (int)T, (void *)(in + n)))
    return 0;
  if (EVP_CipherFinal_ex(x, out + n, &l) <= 0) return 0;
  if (enc && !EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, (int)T, out + n)) return 0;
  return 1;
}

int ws_crypt_plain_size(uint64_t csize, uint64_t *psize) {
  if (csize < H + T) return -1;
  uint64_t b = csize - H, n = (b + CT - 1) / CT, last = b - (n - 1) * CT;
  if (last < T || (n > 1 && last == T)) return -1;
  *psize = b - n * T;
  return 0;
}

uint64_t ws_crypt_cipher_size(uint64_t psize) {
  uint64_t n = psize ? (psize + C - 1) / C : 1;
  return H + psize + n * T;
}

/* ---- the store ----------------------------------------------------------- */

typedef struct crypt_store {
  ws_store base;
  ws_store *in;
  ws_keyring *kr;
} crypt_store;

typedef struct crypt_up {
  ws_upload base;
  ws_upload *in;
  EVP_CIPHER_CTX *x;
  uint8_t key[32];          /* this object's key */
  uint8_t hdr[H];
  uint8_t *buf;             /* C plaintext bytes, then CT ciphertext bytes */
  size_t bn;
  uint64_t idx;
} crypt_up;

static void up_free(crypt_up *u) {
  EVP_CIPHER_CTX_free(u->x);
  if (u->buf) OPENSSL_cleanse(u->buf, C);
  free(u->buf);
  OPENSSL_cleanse(u->key, sizeof(u->key));
  free(u->base.name);
  free(u);
}

static void crypt_put_abort(ws_upload *up) {
  crypt_up *u = (crypt_up *)up;
  if (u->in) u->in->store->m->put_abort(u->in);
  up_free(u);
}

static int put_chunk(crypt_up *u, int final, ws_err *err) {
  uint8_t *out = u->buf + C;
  if (!gcm(u->x, 1, u->key, u->hdr, u->base.name, u->idx, final, u->buf, u->bn, out))
    return ws_fail(err, WS_ERROR, "encrypt %s chunk %llu: OpenSSL failure", u->base.name,
                   (unsigned long long)u->idx);
  int rc = u->in->store->m->put_write(u->in, out, u->bn + T, err);
  u->idx++;
  u->bn = 0;
  return rc;
}

static int crypt_put_begin(ws_upload **out, ws_store *st, const char *name, ws_err *err) {
  crypt_store *cs = (crypt_store *)st;
  int rc = ws_store_check_name(name, err);
  if (rc) return rc;
  crypt_up *u = ws_calloc(1, sizeof(*u), err);
  if (!u) return WS_ENOMEM;
  u->base.store = st;
  if (!(u->base.name = ws_strdup(name, err)) || !(u->buf = ws_malloc(C + CT, err))) {
    up_free(u);
    return WS_ENOMEM;
  }
  const ws_key *k = &cs->kr->v[0];
  memcpy(u->hdr, magic, 4);
  u->hdr[4] = 1;
  u->hdr[5] = 16;
  if (RAND_bytes(u->hdr + 8, 16) != 1 || !(u->x = EVP_CIPHER_CTX_new()) ||
      derive(u->key, k->k, u->hdr + 8)) {
    up_free(u);
    return ws_fail(err, WS_ERROR, "encrypt %s: OpenSSL failure (random salt or key "
                   "derivation)", name);
  }
  memcpy(u->hdr + 24, k->id, strlen(k->id));
  if ((rc = cs->in->m->put_begin(&u->in, cs->in, name, err))) {
    u->in = NULL;
    up_free(u);
    return rc;
  }
  if ((rc = u->in->store->m->put_write(u->in, u->hdr, H, err))) {
    crypt_put_abort(&u->base);
    return rc;
  }
  *out = &u->base;
  return WS_OK;
}

static int crypt_put_write(ws_upload *up, const void *buf, size_t len, ws_err *err) {
  crypt_up *u = (crypt_up *)up;
  const uint8_t *p = buf;
  while (len) {
    /* a full chunk is sealed only once more bytes follow: the last chunk
    ** must carry the final flag */
    if (u->bn == C) {
      int rc = put_chunk(u, 0, err);
      if (rc) return rc;
    }
    size_t take = C - u->bn < len ? C - u->bn : len;
    memcpy(u->buf + u->bn, p, take);
    u->bn += take;
    p += take;
    len -= take;
  }
  return WS_OK;
}

static int crypt_put_commit(ws_upload *up, ws_err *err) {
  crypt_up *u = (crypt_up *)up;
  int rc = put_chunk(u, 1, err);
  if (rc) {
    crypt_put_abort(up);
    return rc;
  }
  rc = u->in->store->m->put_commit(u->in, err);
  u->in = NULL;
  up_free(u);
  return rc;
}

/* Where the ciphertext of a plaintext range comes from: the inner store, or
** a buffer (ws_crypt_decrypt_buf). */
typedef int (*fetch_fn)(void *fx, uint64_t off, uint64_t len, ws_sink_fn sink,
                        void *ud, ws_err *err);

typedef struct dec {
  const ws_keyring *kr;
  const char *name;
  const ws_key *key;        /* the header's key */
  uint8_t okey[32];         /* this object's key */
  EVP_CIPHER_CTX *x;
  uint8_t hdr[H];
  size_t hn;
  uint8_t *buf;             /* CT ciphertext bytes, then C plaintext bytes */
  size_t bn;
  uint64_t idx, first;      /* next chunk; the first chunk fetched */
  uint64_t stop;            /* with bounded: the last chunk wanted */
  int bounded, done;
  uint64_t skip, remain;    /* plaintext to drop, then to deliver */
  ws_sink_fn sink;
  void *ud;
} dec;

static int dec_header(dec *d, ws_err *err) {
  const uint8_t *h = d->hdr;
  if (memcmp(h, "WALSHIP", 7) == 0)
    return ws_fail(err, WS_ECORRUPT, "object %s is not encrypted, but encryption is on "
                   "(written without a key, or put there by someone else)", d->name);
  if (memcmp(h, magic, 4) != 0)
    return ws_fail(err, WS_ECORRUPT, "object %s: not an encrypted walship object "
                   "(bad magic)", d->name);
  if (h[4] != 1 || h[5] != 16 || h[6] || h[7])
    return ws_fail(err, WS_ECORRUPT, "object %s: unsupported encryption version %u "
                   "(chunk 2^%u)", d->name, h[4], h[5]);
  char id[WS_CRYPT_KEYID_MAX + 1];
  size_t n = 0;
  while (n < WS_CRYPT_KEYID_MAX && h[24 + n]) {
    if (!id_char(h[24 + n]))
      return ws_fail(err, WS_ECORRUPT, "object %s: malformed key id in its encryption "
                     "header", d->name);
    id[n] = (char)h[24 + n];
    n++;
  }
  id[n] = 0;
  for (size_t i = n; i < WS_CRYPT_KEYID_MAX; i++)
    if (h[24 + i] || n == 0)
      return ws_fail(err, WS_ECORRUPT, "object %s: malformed key id in its encryption "
                     "header", d->name);
  for (size_t i = 0; i < d->kr->n; i++)
    if (strcmp(d->kr->v[i].id, id) == 0) d->key = &d->kr->v[i];
  if (!d->key) {
    char have[WS_CRYPT_KEYS_MAX * (WS_CRYPT_KEYID_MAX + 3) + 1] = "";
    for (size_t i = 0; i < d->kr->n; i++)
      snprintf(have + strlen(have), sizeof(have) - strlen(have), "%s'%s'", i ? ", " : "",
               d->kr->v[i].id);
    return ws_fail(err, WS_EVERIFY, "object %s is encrypted with key id '%s', which is "
                   "not among the configured keys (%s); add that key to the key file",
                   d->name, id, have);
  }
  if (derive(d->okey, d->key->k, h + 8))
    return ws_fail(err, WS_ERROR, "object %s: key derivation failed (OpenSSL)", d->name);
  return WS_OK;
}

static int dec_chunk(dec *d, int final, ws_err *err) {
  size_t n = d->bn - T;
  uint8_t *pt = d->buf + CT;
  unsigned long long i = d->idx;
  if (!gcm(d->x, 0, d->okey, d->hdr, d->name, d->idx, final, d->buf, n, pt)) {
    /* say what happened when the flag is the only thing wrong */
    if (gcm(d->x, 0, d->okey, d->hdr, d->name, d->idx, !final, d->buf, n, pt))
      return final ? ws_fail(err, WS_ECORRUPT, "object %s is truncated: chunk %llu "
                             "authenticates but is not the final one", d->name, i)
                   : ws_fail(err, WS_ECORRUPT, "object %s has bytes after its final "
                             "chunk %llu", d->name, i);
    return ws_fail(err, WS_ECORRUPT, "object %s: chunk %llu fails authentication with "
                   "key id '%s' (wrong key, modified bytes, or an object copied from "
                   "another name)", d->name, i, d->key->id);
  }
  d->idx++;
  d->bn = 0;
  if (final || (d->bounded && i == d->stop)) d->done = 1;
  size_t o = 0;
  if (d->skip) {
    o = d->skip < n ? (size_t)d->skip : n;
    d->skip -= o;
  }
  size_t give = n - o;
  if (give > d->remain) give = (size_t)d->remain;
  d->remain -= give;
  if (d->remain == 0) d->done = 1;
  return give ? d->sink(d->ud, pt + o, give, err) : WS_OK;
}

static int dec_feed(void *ud, const void *buf, size_t len, ws_err *err) {
  dec *d = ud;
  const uint8_t *p = buf;
  int rc;
  while (len && !d->done) {
    if (d->hn < H) {
      size_t take = H - d->hn < len ? H - d->hn : len;
      memcpy(d->hdr + d->hn, p, take);
      d->hn += take;
      p += take;
      len -= take;
      if (d->hn == H && (rc = dec_header(d, err))) return rc;
      continue;
    }
    if (d->bn == CT) {           /* more follows: this chunk is not the last */
      if ((rc = dec_chunk(d, 0, err))) return rc;
      continue;
    }
    size_t take = CT - d->bn < len ? CT - d->bn : len;
    memcpy(d->buf + d->bn, p, take);
    d->bn += take;
    p += take;
    len -= take;
  }
  return WS_OK;
}

static int dec_finish(dec *d, ws_err *err) {
  if (d->done) return WS_OK;
  if (d->hn < H)
    return ws_fail(err, WS_ECORRUPT, "object %s is truncated: %zu of the %u bytes of its "
                   "encryption header", d->name, d->hn, H);
  if (d->bn == 0) {
    if (d->idx == 0)
      return ws_fail(err, WS_ECORRUPT, "object %s is truncated: no data after its "
                     "encryption header", d->name);
    return WS_OK;                /* a range past the end: no bytes, as stores do */
  }
  if (d->bn < T || (d->bn == T && d->idx > 0))
    return ws_fail(err, WS_ECORRUPT, "object %s is truncated inside chunk %llu", d->name,
                   (unsigned long long)d->idx);
  return dec_chunk(d, 1, err);
}

static int decrypt_range(const ws_keyring *kr, const char *name, fetch_fn fetch, void *fx,
                         uint64_t off, uint64_t len, ws_sink_fn sink, void *ud,
                         ws_err *err) {
  /* bound the arithmetic: no object has 2^48 bytes */
  if (off > (1ull << 48) || len > (1ull << 48))
    return ws_fail(err, WS_EINVAL, "object %s: range %llu+%llu out of bounds", name,
                   (unsigned long long)off, (unsigned long long)len);
  dec d;
  memset(&d, 0, sizeof(d));
  d.kr = kr;
  d.name = name;
  d.sink = sink;
  d.ud = ud;
  d.first = d.idx = off / C;
  d.skip = off - d.first * C;
  d.remain = len ? len : UINT64_MAX;
  d.bounded = len != 0;
  d.stop = len ? (off + len - 1) / C : 0;
  int rc = WS_ENOMEM;
  if (!(d.buf = ws_malloc(CT + C, err))) goto out;
  if (!(d.x = EVP_CIPHER_CTX_new())) {
    rc = ws_fail(err, WS_ENOMEM, "object %s: OpenSSL cipher context", name);
    goto out;
  }
  /* one byte past the last chunk wanted tells whether that chunk is final */
  uint64_t span = d.bounded ? (d.stop - d.first + 1) * CT + 1 : 0;
  if (d.first == 0) {
    rc = fetch(fx, 0, span ? H + span : 0, dec_feed, &d, err);
  } else {
    rc = fetch(fx, 0, H, dec_feed, &d, err);
    if (rc == WS_OK && d.hn < H) rc = dec_finish(&d, err);
    if (rc == WS_OK) rc = fetch(fx, H + d.first * CT, span, dec_feed, &d, err);
  }
  if (rc == WS_OK) rc = dec_finish(&d, err);
out:
  EVP_CIPHER_CTX_free(d.x);
  if (d.buf) OPENSSL_cleanse(d.buf, CT + C);
  free(d.buf);
  OPENSSL_cleanse(d.okey, sizeof(d.okey));
  return rc;
}

typedef struct store_fx {
  ws_store *in;
  const char *name;
} store_fx;

static int fetch_store(void *fx, uint64_t off, uint64_t len, ws_sink_fn sink, void *ud,
                       ws_err *err) {
  store_fx *f = fx;
  return f->in->m->get(f->in, f->name, off, len, sink, ud, err);
}

static int crypt_get(ws_store *st, const char *name, uint64_t off, uint64_t len,
                     ws_sink_fn sink, void *ud, ws_err *err) {
  crypt_store *cs = (crypt_store *)st;
  store_fx f = {cs->in, name};
  return decrypt_range(cs->kr, name, fetch_store, &f, off, len, sink, ud, err);
}

typedef struct buf_fx {
  const uint8_t *p;
  size_t n;
} buf_fx;

static int fetch_buf(void *fx, uint64_t off, uint64_t len, ws_sink_fn sink, void *ud,
                     ws_err *err) {
  buf_fx *f = fx;
  if (off >= f->n) return WS_OK;
  uint64_t n = f->n - off;
  if (len && len < n) n = len;
  /* in odd pieces, as a network delivers them */
  for (uint64_t i = 0; i < n;) {
    size_t step = (size_t)(n - i < 7919 ? n - i : 7919);
    int rc = sink(ud, f->p + off + i, step, err);
    if (rc) return rc;
    i += step;
  }
  return WS_OK;
}

int ws_crypt_decrypt_buf(const ws_keyring *kr, const char *name, const void *buf, size_t n,
                         uint64_t off, uint64_t len, ws_sink_fn sink, void *ud,
                         ws_err *err) {
  buf_fx f = {buf, n};
  return decrypt_range(kr, name, fetch_buf, &f, off, len, sink, ud, err);
}

int ws_crypt_encrypt_buf(void **out, size_t *outlen, const ws_keyring *kr, const char *name,
                         const void *buf, size_t n, ws_err *err) {
  uint64_t total = ws_crypt_cipher_size(n);
  uint8_t *o = total < SIZE_MAX ? ws_malloc((size_t)total, err) : NULL, key[32];
  if (!o) return WS_ENOMEM;
  EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
  memset(o, 0, H);
  memcpy(o, magic, 4);
  o[4] = 1;
  o[5] = 16;
  memcpy(o + 24, kr->v[0].id, strlen(kr->v[0].id));
  int ok = x && RAND_bytes(o + 8, 16) == 1 && derive(key, kr->v[0].k, o + 8) == 0;
  size_t at = H, i = 0;
  for (uint64_t idx = 0; ok; idx++) {
    size_t k = n - i < C ? n - i : C;
    int final = i + k == n;
    ok = gcm(x, 1, key, o, name, idx, final, k ? (const uint8_t *)buf + i : NULL, k, o + at);
    at += k + T;
    i += k;
    if (final) break;
  }
  EVP_CIPHER_CTX_free(x);
  OPENSSL_cleanse(key, sizeof(key));
  if (!ok) {
    free(o);
    return ws_fail(err, WS_ERROR, "encrypt %s: OpenSSL failure", name);
  }
  *out = o;
  *outlen = at;
  return WS_OK;
}

static int crypt_list(ws_store_list *out, ws_store *st, const char *prefix, ws_err *err) {
  crypt_store *cs = (crypt_store *)st;
  int rc = cs->in->m->list(out, cs->in, prefix, err);
  if (rc) return rc;
  for (size_t i = 0; i < out->n; i++) {
    uint64_t p;
    if (ws_crypt_plain_size(out->v[i].size, &p)) {
      /* no encrypted object has this size; reading it reports why */
      ws_log(WS_LOG_DEBUG, "crypt", "object %s: size %llu is not that of an encrypted "
             "object", out->v[i].name, (unsigned long long)out->v[i].size);
      p = 0;
    }
    out->v[i].size = p;
  }
  return WS_OK;
}

static int crypt_del(ws_store *st, const char *name, ws_err *err) {
  crypt_store *cs = (crypt_store *)st;
  return cs->in->m->del(cs->in, name, err);
}

static void crypt_close(ws_store *st) {
  crypt_store *cs = (crypt_store *)st;
  ws_store_close(cs->in);
  ws_keyring_free(cs->kr);
  free(cs->base.url);
  free(cs);
}

/* Conditional writes pass through: the object is encrypted whole, then
** put_if on the inner store; tokens are the inner store's (of the
** ciphertext), so a token read through this store matches its put_if. */
static int crypt_put_if(ws_store *st, const char *name, const void *buf, size_t len,
                        const char *if_match, char *etag_out, ws_err *err) {
  crypt_store *cs = (crypt_store *)st;
  void *c = NULL;
  size_t cn = 0;
  int rc = ws_crypt_encrypt_buf(&c, &cn, cs->kr, name, buf, len, err);
  if (rc) return rc;
  rc = cs->in->m->put_if(cs->in, name, c, cn, if_match, etag_out, err);
  free(c);
  return rc;
}

static int crypt_etag(ws_store *st, const char *name, char *out, ws_err *err) {
  crypt_store *cs = (crypt_store *)st;
  return cs->in->m->etag(cs->in, name, out, err);
}

/* scheme "crypt", not the inner one: code that special-cases a backend
** (batched S3 deletes) must not mistake this struct for it.  Two tables:
** conditional writes are offered exactly when the inner store offers them. */
static const ws_store_methods crypt_methods = {
  WS_STORE_METHODS_VERSION, "crypt", crypt_put_begin, crypt_put_write, crypt_put_commit,
  crypt_put_abort, crypt_get, crypt_list, crypt_del, crypt_close, NULL, NULL,
};
static const ws_store_methods crypt_methods_if = {
  WS_STORE_METHODS_VERSION, "crypt", crypt_put_begin, crypt_put_write, crypt_put_commit,
  crypt_put_abort, crypt_get, crypt_list, crypt_del, crypt_close, crypt_put_if, crypt_etag,
};

int ws_store_crypt_wrap(ws_store **out, ws_store *inner, ws_keyring *kr, ws_err *err) {
  crypt_store *cs = ws_calloc(1, sizeof(*cs), err);
  if (!cs || !(cs->base.url = ws_strdup(inner->url, err))) {
    free(cs);
    ws_store_close(inner);
    ws_keyring_free(kr);
    return WS_ENOMEM;
  }
  cs->base.m = ws_store_can_put_if(inner) ? &crypt_methods_if : &crypt_methods;
  cs->in = inner;
  cs->kr = kr;
  *out = &cs->base;
  return WS_OK;
}
