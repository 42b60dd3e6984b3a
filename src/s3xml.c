/*
** Bounded expat parsers for S3's XML answers (ListObjectsV2, Error,
** InitiateMultipartUpload, CompleteMultipartUpload, DeleteObjects) and the
** XML escaping used to build request bodies.
**
** One small engine serves every document: it tracks the element path
** (names cut to 47 bytes, depth capped), gathers the text of the current
** element into a fixed buffer, and calls a per-document handler at each
** element end with the depth, the parent name and the text.  Handlers only
** look at the few elements they know; everything else is ignored.  Text
** longer than the buffer is remembered as "over" and a handler that needs
** that element fails instead of using a cut value (a cut key would name a
** different object).  S3 namespaces (xmlns="http://s3.amazonaws.com/...")
** need no handling: without namespace processing expat reports bare names.
*/
#include "s3xml.h"
#include "common.h"

#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME_MAX_ 48

typedef struct xp xp;
/* Called at the end of each element; returns WS_OK or an error code set
** in x->err. */
typedef int (*end_fn)(xp *x, const char *name, const char *text);

struct xp {
  XML_Parser p;
  char stack[WS_S3XML_DEPTH_MAX][NAME_MAX_]; /* open elements, [0] = root */
  int depth;                 /* open elements */
  char text[WS_S3XML_TEXT_MAX + 1];
  size_t tlen;
  int over;                  /* text of the current element exceeded the cap */
  int rc;                    /* first failure; stops the parser */
  end_fn on_end;
  void *ud;
  ws_err *err;
};

static void stop(xp *x, int rc) {
  if (!x->rc) x->rc = rc;
  XML_StopParser(x->p, XML_FALSE);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs) {
  (void)attrs;
  xp *x = ud;
  if (x->rc) return;
  if (x->depth >= WS_S3XML_DEPTH_MAX) {
    stop(x, ws_fail(x->err, WS_ECORRUPT, "S3 XML nested deeper than %d elements",
                    WS_S3XML_DEPTH_MAX));
    return;
  }
  snprintf(x->stack[x->depth], NAME_MAX_, "%s", name);
  x->depth++;
  x->tlen = 0;
  x->over = 0;
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
  (void)name;
  xp *x = ud;
  if (x->rc) return;
  x->text[x->tlen] = '\0';
  int rc = x->on_end(x, x->stack[x->depth - 1], x->text);
  x->depth--;
  x->tlen = 0;
  x->over = 0;
  if (rc) stop(x, rc);
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
  xp *x = ud;
  if (x->rc || len <= 0) return;
  if ((size_t)len > WS_S3XML_TEXT_MAX - x->tlen) {
    x->over = 1;
    return;
  }
  memcpy(x->text + x->tlen, s, (size_t)len);
  x->tlen += (size_t)len;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal) {
  (void)name; (void)sysid; (void)pubid; (void)has_internal;
  xp *x = ud;
  stop(x, ws_fail(x->err, WS_ECORRUPT, "S3 XML with a DOCTYPE refused"));
}

/* Name of the element enclosing the one ending now ("" at the root). */
static const char *parent(const xp *x) {
  return x->depth >= 2 ? x->stack[x->depth - 2] : "";
}

/* The text of a wanted element, or an error if it was over the cap. */
static int need_text(xp *x, const char *name) {
  if (x->over)
    return ws_fail(x->err, WS_ECORRUPT, "S3 XML element <%s> longer than %d bytes",
                   name, WS_S3XML_TEXT_MAX);
  return WS_OK;
}

/* Run the engine; what names the document for messages ("ListObjectsV2"). */
static int parse(const char *xml, size_t len, end_fn fn, void *ud, const char *what,
                 ws_err *err) {
  xp *x = ws_calloc(1, sizeof(*x), err);
  if (!x) return WS_ENOMEM;
  int rc = WS_OK;
  if (len > (size_t)INT32_MAX) {
    rc = ws_fail(err, WS_ECORRUPT, "S3 %s answer too large (%zu bytes)", what, len);
    goto out;
  }
  if (!(x->p = XML_ParserCreate(NULL))) {
    rc = ws_fail(err, WS_ENOMEM, "XML parser: out of memory");
    goto out;
  }
  x->on_end = fn;
  x->ud = ud;
  x->err = err;
  XML_SetUserData(x->p, x);
  XML_SetElementHandler(x->p, on_start, on_end);
  XML_SetCharacterDataHandler(x->p, on_text);
  XML_SetStartDoctypeDeclHandler(x->p, on_doctype);
  if (XML_Parse(x->p, xml ? xml : "", (int)len, XML_TRUE) == XML_STATUS_ERROR && !x->rc)
    x->rc = ws_fail(err, WS_ECORRUPT, "S3 %s answer is not valid XML: %s at line %lu",
                    what, XML_ErrorString(XML_GetErrorCode(x->p)),
                    (unsigned long)XML_GetCurrentLineNumber(x->p));
  rc = x->rc;
out:
  if (x->p) XML_ParserFree(x->p);
  free(x);
  return rc;
}

/* Copy text into a fixed buffer, cutting it (error fields are display-only). */
static void copy_cut(char *dst, size_t cap, const char *src) {
  snprintf(dst, cap, "%s", src);
}

/* Strict unsigned decimal; 0 on success. */
static int parse_u64(const char *s, uint64_t *out) {
  if (!*s) return -1;
  uint64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

int64_t ws_s3xml_time_ms(const char *s) {
  int y, mo, d, h, mi, sec, n = 0;
  if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
    return 0;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return 0;
  int ms = 0;
  const char *p = s + 19;
  if (*p == '.') {
    int digits = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, digits++)
      if (digits < 3) ms = ms * 10 + (*p - '0');
    if (digits == 0) return 0;
    for (; digits < 3; digits++) ms *= 10;
  }
  if (strcmp(p, "Z") != 0) return 0;
  struct tm tm = {0};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  if (t == (time_t)-1) return 0;
  return (int64_t)t * 1000 + ms;
}

/* --------------------------------------------------------- ListObjectsV2 */

typedef struct list_st {
  ws_s3xml_obj_fn fn;
  void *ud;
  int root_ok, truncated, have_key, have_size;
  char *token;
  char key[WS_S3XML_TEXT_MAX + 1];
  uint64_t size;
  int64_t mtime;
} list_st;

static int list_end(xp *x, const char *name, const char *text) {
  list_st *l = x->ud;
  int rc;
  if (x->depth == 1) {
    if (strcmp(name, "ListBucketResult") != 0)
      return ws_fail(x->err, strcmp(name, "Error") ? WS_ECORRUPT : WS_ESTORE,
                     "S3 ListObjectsV2 answer is <%s>, not <ListBucketResult>", name);
    l->root_ok = 1;
    return WS_OK;
  }
  if (x->depth == 2) {
    if (strcmp(name, "IsTruncated") == 0) {
      l->truncated = strcmp(text, "true") == 0;
    } else if (strcmp(name, "NextContinuationToken") == 0) {
      if ((rc = need_text(x, name))) return rc;
      free(l->token);
      if (!(l->token = ws_strdup(text, x->err))) return WS_ENOMEM;
    } else if (strcmp(name, "Contents") == 0) {
      if (!l->have_key || !l->have_size)
        return ws_fail(x->err, WS_ECORRUPT, "S3 listing entry without %s",
                       l->have_key ? "<Size>" : "<Key>");
      rc = l->fn(l->ud, l->key, l->size, l->mtime, x->err);
      l->have_key = l->have_size = 0;
      l->mtime = 0;
      return rc;
    }
    return WS_OK;
  }
  if (x->depth == 3 && strcmp(parent(x), "Contents") == 0) {
    if (strcmp(name, "Key") == 0) {
      if ((rc = need_text(x, name))) return rc;
      if (!*text) return ws_fail(x->err, WS_ECORRUPT, "S3 listing entry with an empty <Key>");
      memcpy(l->key, text, strlen(text) + 1);
      l->have_key = 1;
    } else if (strcmp(name, "Size") == 0) {
      if (parse_u64(text, &l->size) != 0)
        return ws_fail(x->err, WS_ECORRUPT, "S3 listing entry with a bad <Size> '%.40s'", text);
      l->have_size = 1;
    } else if (strcmp(name, "LastModified") == 0) {
      l->mtime = ws_s3xml_time_ms(text);
    }
  }
  return WS_OK;
}

int ws_s3xml_parse_list(const char *xml, size_t len, ws_s3xml_obj_fn fn, void *ud,
                        int *truncated, char **next_token, ws_err *err) {
  list_st *l = ws_calloc(1, sizeof(*l), err);
  if (!l) return WS_ENOMEM;
  l->fn = fn;
  l->ud = ud;
  int rc = parse(xml, len, list_end, l, "ListObjectsV2", err);
  if (!rc && !l->root_ok)
    rc = ws_fail(err, WS_ECORRUPT, "S3 ListObjectsV2 answer has no <ListBucketResult>");
  if (!rc && l->truncated && (!l->token || !*l->token))
    rc = ws_fail(err, WS_ECORRUPT,
                 "S3 ListObjectsV2 page is truncated but has no <NextContinuationToken>");
  if (!rc) {
    *truncated = l->truncated;
    if (next_token) {
      *next_token = l->token;
      l->token = NULL;
    }
  }
  free(l->token);
  free(l);
  return rc;
}

/* ----------------------------------------------------------------- Error */

typedef struct err_st {
  ws_s3_error *e;
  int is_error;              /* root was <Error> */
} err_st;

static int error_end(xp *x, const char *name, const char *text) {
  err_st *s = x->ud;
  if (x->depth == 1) {
    s->is_error = strcmp(name, "Error") == 0;
    return WS_OK;
  }
  if (x->depth == 2 && strcmp(parent(x), "Error") == 0) {
    if (strcmp(name, "Code") == 0) copy_cut(s->e->code, sizeof(s->e->code), text);
    else if (strcmp(name, "Message") == 0) copy_cut(s->e->message, sizeof(s->e->message), text);
  }
  return WS_OK;
}

int ws_s3xml_parse_error(ws_s3_error *out, const char *xml, size_t len) {
  ws_s3_error e;
  memset(&e, 0, sizeof(e));
  err_st s = {&e, 0};
  memset(out, 0, sizeof(*out));
  if (!xml || !len) return 0;
  if (parse(xml, len, error_end, &s, "error", NULL) != WS_OK || !s.is_error) return 0;
  *out = e;
  return 1;
}

/* ------------------------------------------- Initiate / Complete multipart */

typedef struct one_st {
  const char *root;          /* expected root element */
  const char *field;         /* child of the root we want */
  int root_seen, root_ok;
  char *value;               /* malloc'ed field text */
  ws_s3_error e;             /* when the root is <Error> */
} one_st;

static int one_end(xp *x, const char *name, const char *text) {
  one_st *s = x->ud;
  if (x->depth == 1) {
    s->root_seen = 1;
    s->root_ok = strcmp(name, s->root) == 0;
    return WS_OK;
  }
  if (x->depth != 2) return WS_OK;
  if (strcmp(parent(x), "Error") == 0) {
    if (strcmp(name, "Code") == 0) copy_cut(s->e.code, sizeof(s->e.code), text);
    else if (strcmp(name, "Message") == 0) copy_cut(s->e.message, sizeof(s->e.message), text);
  } else if (s->field && strcmp(name, s->field) == 0 && strcmp(parent(x), s->root) == 0) {
    int rc = need_text(x, name);
    if (rc) return rc;
    free(s->value);
    if (!(s->value = ws_strdup(text, x->err))) return WS_ENOMEM;
  }
  return WS_OK;
}

/* Parse a document whose root must be s->root; <Error> fills s->e. */
static int parse_one(one_st *s, const char *xml, size_t len, const char *what, ws_err *err) {
  int rc = parse(xml, len, one_end, s, what, err);
  if (rc) return rc;
  if (!s->root_ok) {
    if (s->e.code[0])
      return ws_fail(err, WS_ESTORE, "S3 %s failed: %s: %s", what, s->e.code, s->e.message);
    return ws_fail(err, WS_ECORRUPT, "S3 %s answer has no <%s>", what, s->root);
  }
  return WS_OK;
}

int ws_s3xml_parse_initiate(char **out_upload_id, const char *xml, size_t len, ws_err *err) {
  one_st s;
  memset(&s, 0, sizeof(s));
  s.root = "InitiateMultipartUploadResult";
  s.field = "UploadId";
  int rc = parse_one(&s, xml, len, "CreateMultipartUpload", err);
  if (!rc && (!s.value || !*s.value))
    rc = ws_fail(err, WS_ECORRUPT, "S3 CreateMultipartUpload answer has no <UploadId>");
  if (!rc) {
    *out_upload_id = s.value;
    s.value = NULL;
  }
  free(s.value);
  return rc;
}

int ws_s3xml_parse_complete(const char *xml, size_t len, ws_s3_error *e, ws_err *err) {
  one_st s;
  memset(&s, 0, sizeof(s));
  s.root = "CompleteMultipartUploadResult";
  int rc = parse_one(&s, xml, len, "CompleteMultipartUpload", err);
  if (rc == WS_ESTORE && e) *e = s.e;
  free(s.value);
  return rc;
}

/* ---------------------------------------------------------- DeleteObjects */

typedef struct del_st {
  int root_ok;
  size_t nerrors;
  char key[256];             /* key of the <Error> being read */
  ws_s3_error cur, first;
  char first_key[256];
} del_st;

static int del_end(xp *x, const char *name, const char *text) {
  del_st *s = x->ud;
  if (x->depth == 1) {
    s->root_ok = strcmp(name, "DeleteResult") == 0;
    return WS_OK;
  }
  if (x->depth == 2 && strcmp(name, "Error") == 0) {
    if (s->nerrors++ == 0) {
      s->first = s->cur;
      memcpy(s->first_key, s->key, sizeof(s->key));
    }
    memset(&s->cur, 0, sizeof(s->cur));
    s->key[0] = '\0';
  } else if (x->depth == 3 && strcmp(parent(x), "Error") == 0) {
    if (strcmp(name, "Key") == 0) copy_cut(s->key, sizeof(s->key), text);
    else if (strcmp(name, "Code") == 0) copy_cut(s->cur.code, sizeof(s->cur.code), text);
    else if (strcmp(name, "Message") == 0)
      copy_cut(s->cur.message, sizeof(s->cur.message), text);
  }
  return WS_OK;
}

int ws_s3xml_parse_delete(const char *xml, size_t len, size_t *nerrors,
                          char first_key[256], ws_s3_error *first, ws_err *err) {
  del_st *s = ws_calloc(1, sizeof(*s), err);
  if (!s) return WS_ENOMEM;
  int rc = parse(xml, len, del_end, s, "DeleteObjects", err);
  if (!rc && !s->root_ok)
    rc = ws_fail(err, WS_ECORRUPT, "S3 DeleteObjects answer has no <DeleteResult>");
  if (!rc) {
    *nerrors = s->nerrors;
    if (first_key) memcpy(first_key, s->first_key, 256);
    if (first) *first = s->first;
  }
  free(s);
  return rc;
}

/* ---------------------------------------------------------------- escape */

char *ws_s3xml_escape(const char *s, ws_err *err) {
  size_t n = 0;
  for (const char *p = s; *p; p++) {
    switch (*p) {
    case '&': n += 5; break;
    case '<': case '>': n += 4; break;
    case '"': case '\'': n += 6; break;
    default: n++;
    }
  }
  char *out = ws_malloc(n + 1, err), *o = out;
  if (!out) return NULL;
  for (const char *p = s; *p; p++) {
    const char *r = NULL;
    switch (*p) {
    case '&': r = "&amp;"; break;
    case '<': r = "&lt;"; break;
    case '>': r = "&gt;"; break;
    case '"': r = "&quot;"; break;
    case '\'': r = "&apos;"; break;
    default: *o++ = *p; continue;
    }
    size_t rl = strlen(r);
    memcpy(o, r, rl);
    o += rl;
  }
  *o = '\0';
  return out;
}
