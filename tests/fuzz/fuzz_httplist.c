/*
** libFuzzer target: the HTTP store's JSON directory listing parser
** (ws_store_http_parse_listing in src/store_http.c), fed what an nginx
** `autoindex_format json` server — or anything posing as one — answers.
** Input: one control byte (bit 0: list a subdirectory "seg/" instead of the
** root; bit 1: prefix "seg/" instead of ""), then the body.  It must never
** crash or leak; every object it lists must be a valid store name under
** the listed directory and prefix, every subdirectory one level deeper.
*/
#include "store_int.h"
#include "common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > (1u << 20)) return 0;
  const char *rel = (data[0] & 1) ? "seg/" : "";
  const char *prefix = (data[0] & 2) ? "seg/" : "";
  ws_store_list l = {NULL, 0, 0};
  char **subs = NULL;
  size_t nsubs = 0;
  ws_err err = WS_ERR_INIT;
  int rc = ws_store_http_parse_listing(&l, "http://127.0.0.1:1/fuzz", (const char *)data + 1,
                                       size - 1, rel, prefix, (data[0] >> 2) & 3,
                                       "http://127.0.0.1:1/fuzz/", &subs, &nsubs, &err);
  if (rc != WS_OK && !err.msg[0]) abort();
  for (size_t i = 0; i < l.n; i++) {
    ws_err ne = WS_ERR_INIT;
    if (ws_store_check_name(l.v[i].name, &ne) != WS_OK) abort();
    if (strncmp(l.v[i].name, rel, strlen(rel)) || strncmp(l.v[i].name, prefix, strlen(prefix)))
      abort();
  }
  for (size_t i = 0; i < nsubs; i++) {
    if (strncmp(subs[i], rel, strlen(rel))) abort();
    free(subs[i]);
  }
  free(subs);
  ws_store_list_free(&l);
  return 0;
}
