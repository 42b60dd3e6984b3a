/*
** Client-side encryption (src/store_crypt.c): a key ring and a ws_store
** wrapper that encrypts every object with AES-256-GCM in 64 KiB chunks.
** docs/SECURITY.md is the user-facing reference, docs/FORMAT.md the bytes.
*/
#ifndef WS_CRYPT_H
#define WS_CRYPT_H

#include "walship/store.h"

#define WS_CRYPT_HDR 40u            /* "WSE1" ver chunk_log2 0 0 salt(16) keyid(16) */
#define WS_CRYPT_CHUNK (64u << 10)  /* plaintext bytes per chunk (all but the last) */
#define WS_CRYPT_TAG 16u            /* GCM tag after each chunk's ciphertext */
#define WS_CRYPT_KEYID_MAX 16       /* key id: 1..16 bytes of [A-Za-z0-9._-] */
#define WS_CRYPT_KEYS_MAX 16        /* keys in one ring */
#define WS_CRYPT_ENV "WALSHIP_ENCRYPTION_KEY"

typedef struct ws_keyring ws_keyring;

/* Parse a key ring: a raw 32-byte key, or text lines "[ID] KEY" (KEY: 64
** hex digits or base64 of 32 bytes; '#' comments; the first key is the one
** new objects use).  what names the source in messages ("file X", "$VAR");
** no message ever contains key bytes. */
WS_MUST_CHECK int ws_keyring_parse(ws_keyring **out, const void *text, size_t len,
                                   const char *what, ws_err *err);
/* The key ring in file path (warns when group/world readable). */
WS_MUST_CHECK int ws_keyring_load(ws_keyring **out, const char *path, ws_err *err);
void ws_keyring_free(ws_keyring *kr);   /* zeroes the keys; accepts NULL */
const char *ws_keyring_current_id(const ws_keyring *kr);

/* Wrap inner (taking ownership of it and of kr, also on failure). */
WS_MUST_CHECK int ws_store_crypt_wrap(ws_store **out, ws_store *inner, ws_keyring *kr,
                                      ws_err *err);

/* Plaintext size of an encrypted object of csize bytes; -1 if no
** well-formed encrypted object has that size. */
int ws_crypt_plain_size(uint64_t csize, uint64_t *psize);
/* Encrypted size of a plaintext of psize bytes. */
uint64_t ws_crypt_cipher_size(uint64_t psize);

/* Decrypt a whole encrypted object held in memory (tests, fuzzing): the
** plaintext of [off, off+len) (len 0: to the end) goes to sink. */
WS_MUST_CHECK int ws_crypt_decrypt_buf(const ws_keyring *kr, const char *name,
                                       const void *buf, size_t n, uint64_t off,
                                       uint64_t len, ws_sink_fn sink, void *ud,
                                       ws_err *err);

/* The encrypted object (malloc'ed) of the n bytes at buf, stored as name,
** with the ring's current key: the bytes put would store (tests, fuzzing). */
WS_MUST_CHECK int ws_crypt_encrypt_buf(void **out, size_t *outlen, const ws_keyring *kr,
                                       const char *name, const void *buf, size_t n,
                                       ws_err *err);

#endif
