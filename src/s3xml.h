/*
** The S3 wire format: bounded expat parsers for the XML documents S3
** answers with, the XML escaping the request bodies need, and (second
** half) the addressing and batch helpers store_s3.c exports for tests and
** for retention work.
**
** Invariants of the parsers:
**   - input is a complete, in-memory document (the HTTP layer caps its
**     size); a truncated or malformed document is WS_ECORRUPT, never a
**     partial result;
**   - unknown elements are ignored, so S3 adding fields breaks nothing;
**     the elements we read have capped text (WS_S3XML_TEXT_MAX) and a text
**     over the cap is an error rather than a silently cut key;
**   - a DOCTYPE is refused (S3 never sends one; no entity games);
**   - the root element decides the document kind: a parser given an
**     <Error> document where it expected a result fills the ws_s3_error
**     when it has one and returns WS_ESTORE.
*/
#ifndef WS_S3XML_H
#define WS_S3XML_H

#include <stddef.h>
#include <stdint.h>
#include "walship/store.h"

#define WS_S3XML_TEXT_MAX 4096   /* bytes of text in one element we read */
#define WS_S3XML_DEPTH_MAX 16    /* deeper documents are refused */

/* S3's <Error><Code/><Message/></Error>, each cut to its buffer. */
typedef struct ws_s3_error {
  char code[64];             /* "NoSuchKey"; "" when unknown */
  char message[256];         /* human text from the server; may be "" */
} ws_s3_error;

/* One <Contents> entry of a ListObjectsV2 page. */
typedef int (*ws_s3xml_obj_fn)(void *ud, const char *key, uint64_t size,
                               int64_t mtime_ms, ws_err *err);

/*
** Parse one ListObjectsV2 page (<ListBucketResult>).  Every <Contents> is
** handed to fn in document order (fn's error stops the parse and is
** returned unchanged).  *truncated gets <IsTruncated>; *next_token (may be
** NULL when not wanted) a malloc'ed <NextContinuationToken> or NULL.
** A truncated page without a continuation token is WS_ECORRUPT.
*/
int ws_s3xml_parse_list(const char *xml, size_t len, ws_s3xml_obj_fn fn,
                        void *ud, int *truncated, char **next_token,
                        ws_err *err);

/* Parse an <Error> document into out.  Returns 1 when xml is one (out is
** filled), 0 otherwise (out zeroed).  Never sets an error. */
int ws_s3xml_parse_error(ws_s3_error *out, const char *xml, size_t len);

/* <InitiateMultipartUploadResult>: *out_upload_id (malloc'ed) on WS_OK. */
int ws_s3xml_parse_initiate(char **out_upload_id, const char *xml, size_t len,
                            ws_err *err);

/*
** CompleteMultipartUpload answers 200 and may still have failed: the body
** is then an <Error>.  WS_OK for <CompleteMultipartUploadResult>;
** WS_ESTORE with *e filled for <Error>; WS_ECORRUPT for anything else.
** e may be NULL.
*/
int ws_s3xml_parse_complete(const char *xml, size_t len, ws_s3_error *e,
                            ws_err *err);

/*
** <DeleteResult> of a DeleteObjects request.  *nerrors gets the number of
** <Error> entries; the first one's key (cut to 256 bytes) and code/message
** go to first_key / *first (either may be NULL).
*/
int ws_s3xml_parse_delete(const char *xml, size_t len, size_t *nerrors,
                          char first_key[256], ws_s3_error *first, ws_err *err);

/* s with & < > " ' escaped for element text, malloc'ed. */
char *ws_s3xml_escape(const char *s, ws_err *err);

/* Parse an ISO 8601 UTC time as S3 writes it ("2024-05-01T12:34:56.789Z")
** into unix ms; returns 0 for anything it cannot read. */
int64_t ws_s3xml_time_ms(const char *s);

/* ------------------------------------------------------------------------
** Exported by store_s3.c (addressing, request helpers, batch delete).
*/

/* S3 bucket naming rules: 3-63 of [a-z0-9.-], letter/digit at both ends,
** no "..", not an IPv4 address, no reserved prefix/suffix. */
int ws_s3_check_bucket(const char *bucket, ws_err *err);

/*
** The addressing of one store, resolved at open.  Exposed (not opaque) so
** the unit test can check URL building without a network.
*/
typedef struct ws_s3_addr {
  char *bucket;              /* validated bucket name */
  char *prefix;              /* "" or a valid object-name-like prefix, no
                                leading/trailing '/' */
  char *region;              /* [a-z0-9-]+ */
  char *base;                /* request URL up to and including the bucket
                                part, no trailing '/':
                                "http://127.0.0.1:9000/bucket" (path style),
                                "https://bucket.s3.us-east-1.amazonaws.com" */
  char *disp;                /* "s3://bucket/prefix" for messages */
} ws_s3_addr;

/* Resolve rest ("bucket/prefix") and opts into *out (caller frees with
** ws_s3_addr_free).  Region from opts, $AWS_REGION, $AWS_DEFAULT_REGION,
** then us-east-1. */
int ws_s3_addr_parse(ws_s3_addr *out, const char *rest,
                     const ws_store_opts *opts, ws_err *err);
void ws_s3_addr_free(ws_s3_addr *a);

/* The object key of name: "PREFIX/name", or name without a prefix. */
char *ws_s3_key(const ws_s3_addr *a, const char *name, ws_err *err);

/* base + "/" + escaped key (NULL key: base + "/") + ("?" query if any). */
char *ws_s3_url(const ws_s3_addr *a, const char *key, const char *query,
                ws_err *err);

/*
** A SigV4-ready query string from n name/value pairs (kv[2i], kv[2i+1];
** a NULL value means "name=" ): every name and value percent-encoded per
** RFC 3986 ('/' too), pairs sorted by encoded name.  libcurl 7.88 signs
** the query exactly as written, so this is the canonical form.
*/
char *ws_s3_query(const char *const *kv, size_t n, ws_err *err);

/*
** Batched DeleteObjects (POST ?delete=, quiet mode, at most 1000 names per
** request, Content-MD5 as S3 requires) on an s3 store; names are store
** object names.  Missing objects count as deleted.  Fails with the first
** per-key error S3 reports.
*/
int ws_s3_delete_many(ws_store *st, const char *const *names, size_t n,
                      ws_err *err);

#endif
