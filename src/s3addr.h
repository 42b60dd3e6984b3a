/*
** Request helpers of the s3 store that live in s3addr.c (the addressing
** functions themselves are declared in s3xml.h, where the unit test finds
** them).
*/
#ifndef WS_S3ADDR_H
#define WS_S3ADDR_H

#include <stddef.h>
#include "walship/walship.h"

/* SHA-256 of b[0..n) as hex into sha_hex; when md5_b64 is not NULL also
** its MD5, as hex (md5_hex) and base64 (md5_b64, for Content-MD5). */
int ws_s3_digests(const void *b, size_t n, char sha_hex[65], char md5_hex[33],
                  char md5_b64[25], ws_err *err);

#endif
