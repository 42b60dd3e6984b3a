/*
** libFuzzer target: the S3 XML parsers (src/s3xml.c) — ListObjectsV2 pages,
** <Error>, multipart initiate/complete and DeleteObjects results, all on
** the same input, as a hostile or broken server could answer any of them.
** They must never crash or over-read; a listing either fails with a message
** or hands out only keys within WS_S3XML_TEXT_MAX.
*/
#include "s3xml.h"
#include "common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_obj(void *ud, const char *key, uint64_t size, int64_t mtime, ws_err *err) {
  size_t *count = ud;
  if (strlen(key) > WS_S3XML_TEXT_MAX) abort();
  (*count)++;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (1u << 20)) return 0;
  const char *xml = (const char *)data;
  ws_err err = WS_ERR_INIT;
  size_t count = 0;
  int trunc = 0;
  char *tok = NULL;
  int rc = ws_s3xml_parse_list(xml, size, on_obj, &count, &trunc, &tok, &err);
  if (rc != WS_OK && !err.msg[0]) abort();
  if (rc != WS_OK && tok) abort();   /* nothing handed out on failure */
  free(tok);

  ws_s3_error e;
  ws_s3xml_parse_error(&e, xml, size);
  if (strnlen(e.code, sizeof(e.code)) == sizeof(e.code)) abort();
  if (strnlen(e.message, sizeof(e.message)) == sizeof(e.message)) abort();

  char *id = NULL;
  err = (ws_err)WS_ERR_INIT;
  if (ws_s3xml_parse_initiate(&id, xml, size, &err) == WS_OK && !id) abort();
  free(id);

  err = (ws_err)WS_ERR_INIT;
  (void)ws_s3xml_parse_complete(xml, size, &e, &err);

  size_t nerr = 0;
  char first[256];
  err = (ws_err)WS_ERR_INIT;
  if (ws_s3xml_parse_delete(xml, size, &nerr, first, &e, &err) == WS_OK && nerr > 0 &&
      strnlen(first, sizeof(first)) == sizeof(first))
    abort();

  /* Time parsing and escaping take the same bytes as a C string. */
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = 0;
  (void)ws_s3xml_time_ms(s);
  err = (ws_err)WS_ERR_INIT;
  free(ws_s3xml_escape(s, &err));
  free(s);
  return 0;
}
