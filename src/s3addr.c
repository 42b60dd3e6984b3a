/*
** The addressing of an s3 store (moved out of store_s3.c): bucket-name
** rules, resolving "bucket/prefix" plus options into a base URL, object
** keys, request URLs, and the canonical (SigV4-ready) query string.
**
** Also the digests every request body needs (SHA-256 for SigV4, MD5 for
** Content-MD5).
**
** Invariants: everything here is pure (no network, no globals besides the
** environment read for the region) so the unit test can check it offline;
** a URL never carries a secret.
*/
#include "store_int.h"
#include "common.h"
#include "http.h"
#include "s3xml.h"
#include "s3addr.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int ws_s3_check_bucket(const char *b, ws_err *err) {
  size_t n = strlen(b);
  if (n < 3 || n > 63)
    return ws_fail(err, WS_EINVAL, "S3 bucket name '%.80s' must be 3 to 63 characters", b);
  int digits_dots = 1, dots = 0;
  for (size_t i = 0; i < n; i++) {
    char c = b[i];
    int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && c != '.' && c != '-')
      return ws_fail(err, WS_EINVAL, "S3 bucket name '%s': only lowercase letters, digits, "
                     "'.' and '-' are allowed", b);
    if ((i == 0 || i == n - 1) && !alnum)
      return ws_fail(err, WS_EINVAL, "S3 bucket name '%s' must begin and end with a "
                     "letter or digit", b);
    if (c == '.' && b[i + 1] == '.')
      return ws_fail(err, WS_EINVAL, "S3 bucket name '%s' has two adjacent periods", b);
    if (c == '.') dots++;
    else if (!(c >= '0' && c <= '9')) digits_dots = 0;
  }
  if (digits_dots && dots == 3)
    return ws_fail(err, WS_EINVAL, "S3 bucket name '%s' looks like an IP address", b);
  if (strncmp(b, "xn--", 4) == 0 || strncmp(b, "sthree-", 7) == 0 ||
      (n > 8 && strcmp(b + n - 8, "-s3alias") == 0) ||
      (n > 7 && strcmp(b + n - 7, "--ol-s3") == 0))
    return ws_fail(err, WS_EINVAL, "S3 bucket name '%s' uses a reserved prefix or suffix", b);
  return WS_OK;
}

void ws_s3_addr_free(ws_s3_addr *a) {
  if (!a) return;
  free(a->bucket);
  free(a->prefix);
  free(a->region);
  free(a->base);
  free(a->disp);
  memset(a, 0, sizeof(*a));
}

static int check_region(const char *r, ws_err *err) {
  size_t n = strlen(r);
  if (n == 0 || n > 32 || strspn(r, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
    return ws_fail(err, WS_EINVAL, "AWS region '%.40s' is not a region name "
                   "(like us-east-1)", r);
  return WS_OK;
}

int ws_s3_addr_parse(ws_s3_addr *out, const char *rest, const ws_store_opts *opts,
                     ws_err *err) {
  ws_s3_addr a;
  memset(&a, 0, sizeof(a));
  int rc = WS_ENOMEM;
  char *ep = NULL;
  const char *slash = strchr(rest, '/');
  size_t bl = slash ? (size_t)(slash - rest) : strlen(rest);
  if (!(a.bucket = ws_malloc(bl + 1, err))) goto out;
  memcpy(a.bucket, rest, bl);
  a.bucket[bl] = '\0';
  if ((rc = ws_s3_check_bucket(a.bucket, err))) goto out;
  rc = WS_ENOMEM;
  if (!(a.prefix = ws_strdup(slash ? slash + 1 : "", err))) goto out;
  for (size_t n = strlen(a.prefix); n > 0 && a.prefix[n - 1] == '/'; n--)
    a.prefix[n - 1] = '\0';
  if (a.prefix[0]) {
    ws_err pe = WS_ERR_INIT;
    if (ws_store_check_name(a.prefix, &pe) != WS_OK) {
      rc = ws_fail(err, WS_EINVAL, "store URL s3://%s: bad prefix: %s", rest, pe.msg);
      goto out;
    }
  }

  const char *region = opts->region && *opts->region ? opts->region : getenv("AWS_REGION");
  if (!region || !*region) region = getenv("AWS_DEFAULT_REGION");
  if (!region || !*region) region = "us-east-1";
  if ((rc = check_region(region, err))) goto out;
  rc = WS_ENOMEM;
  if (!(a.region = ws_strdup(region, err))) goto out;

  /* Endpoint: scheme://host[:port][/path], no userinfo, query or fragment. */
  if (opts->endpoint && *opts->endpoint) {
    if (!(ep = ws_strdup(opts->endpoint, err))) goto out;
    for (size_t n = strlen(ep); n > 0 && ep[n - 1] == '/'; n--) ep[n - 1] = '\0';
    size_t sl = strncasecmp(ep, "http://", 7) == 0 ? 7 : strncasecmp(ep, "https://", 8) == 0 ? 8 : 0;
    if (!sl || !ep[sl] || ep[sl] == '/' || strpbrk(ep, "?#@ \t\r\n")) {
      rc = ws_fail(err, WS_EINVAL, "S3 endpoint '%.100s' must be http(s)://HOST[:PORT][/PATH] "
                   "(no user, query or fragment)", opts->endpoint);
      goto out;
    }
  } else if (!(ep = ws_asprintf(err, "https://s3.%s.amazonaws.com", a.region))) {
    goto out;
  }
  int style = opts->path_style;
  if (style < -1 || style > 2) {
    rc = ws_fail(err, WS_EINVAL, "S3 addressing style %d: use 0 (auto), 1 (path) or "
                 "2 (virtual host)", style);
    goto out;
  }
  /* Auto: path style for custom endpoints; for AWS virtual-hosted, except
  ** dotted buckets, which TLS wildcard certificates cannot cover. */
  if (style <= 0)
    style = (opts->endpoint && *opts->endpoint) || strchr(a.bucket, '.') ? 1 : 2;
  rc = WS_ENOMEM;
  if (style == 1) {
    a.base = ws_asprintf(err, "%s/%s", ep, a.bucket);
  } else {
    const char *host = strstr(ep, "://") + 3;
    a.base = ws_asprintf(err, "%.*s%s.%s", (int)(host - ep), ep, a.bucket, host);
  }
  if (!a.base) goto out;
  if (!(a.disp = a.prefix[0] ? ws_asprintf(err, "s3://%s/%s", a.bucket, a.prefix)
                             : ws_asprintf(err, "s3://%s", a.bucket)))
    goto out;
  *out = a;
  memset(&a, 0, sizeof(a));
  rc = WS_OK;
out:
  free(ep);
  ws_s3_addr_free(&a);
  return rc;
}

char *ws_s3_key(const ws_s3_addr *a, const char *name, ws_err *err) {
  return a->prefix[0] ? ws_asprintf(err, "%s/%s", a->prefix, name) : ws_strdup(name, err);
}

char *ws_s3_url(const ws_s3_addr *a, const char *key, const char *query, ws_err *err) {
  char *ek = ws_http_escape(key ? key : "", 1, err);
  if (!ek) return NULL;
  char *u = ws_asprintf(err, "%s/%s%s%s", a->base, ek, query && *query ? "?" : "",
                        query ? query : "");
  free(ek);
  return u;
}

typedef struct qpair {
  char *k, *v;
} qpair;

static int qpair_cmp(const void *x, const void *y) {
  const qpair *a = x, *b = y;
  int c = strcmp(a->k, b->k);
  return c ? c : strcmp(a->v, b->v);
}

char *ws_s3_query(const char *const *kv, size_t n, ws_err *err) {
  char *out = NULL;
  qpair *p = ws_calloc(n ? n : 1, sizeof(*p), err);
  if (!p) return NULL;
  size_t total = 1;
  for (size_t i = 0; i < n; i++) {
    if (!(p[i].k = ws_http_escape(kv[2 * i], 0, err)) ||
        !(p[i].v = ws_http_escape(kv[2 * i + 1] ? kv[2 * i + 1] : "", 0, err)))
      goto out;
    total += strlen(p[i].k) + strlen(p[i].v) + 2;
  }
  qsort(p, n, sizeof(*p), qpair_cmp);
  if (!(out = ws_malloc(total, err))) goto out;
  char *o = out;
  for (size_t i = 0; i < n; i++)
    o += sprintf(o, "%s%s=%s", i ? "&" : "", p[i].k, p[i].v);
  *o = '\0';
out:
  for (size_t i = 0; i < n; i++) {
    free(p[i].k);
    free(p[i].v);
  }
  free(p);
  return out;
}

int ws_s3_digests(const void *b, size_t n, char sha_hex[65], char md5_hex[33],
                  char md5_b64[25], ws_err *err) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  static const char hx[] = "0123456789abcdef";
  if (!EVP_Digest(b ? b : "", n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
    return ws_fail(err, WS_ERROR, "SHA-256 of a request body failed (libcrypto)");
  for (unsigned i = 0; i < 32; i++) {
    sha_hex[2 * i] = hx[md[i] >> 4];
    sha_hex[2 * i + 1] = hx[md[i] & 15];
  }
  sha_hex[64] = '\0';
  if (!md5_b64) return WS_OK;
  if (!EVP_Digest(b ? b : "", n, md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
    return ws_fail(err, WS_ERROR, "MD5 of a request body failed (libcrypto)");
  EVP_EncodeBlock((unsigned char *)md5_b64, md, 16);
  for (unsigned i = 0; i < 16; i++) {
    md5_hex[2 * i] = hx[md[i] >> 4];
    md5_hex[2 * i + 1] = hx[md[i] & 15];
  }
  md5_hex[32] = '\0';
  return WS_OK;
}
