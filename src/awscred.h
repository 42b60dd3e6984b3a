/*
** AWS credentials for the s3 store: the standard chain, in order,
**   1. $AWS_ACCESS_KEY_ID + $AWS_SECRET_ACCESS_KEY (+ $AWS_SESSION_TOKEN);
**   2. profile $AWS_PROFILE (default "default") in
**      $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials (INI keys
**      aws_access_key_id, aws_secret_access_key, aws_session_token).
**
** Invariants: secrets never reach a log line or an error message (messages
** name the variable, the file and the profile, never a value); every copy
** we make is wiped with explicit_bzero before it is freed, including the
** file buffer the INI was read into.
*/
#ifndef WS_AWSCRED_H
#define WS_AWSCRED_H

#include "walship/walship.h"

typedef struct ws_awscred {
  char *access_key;          /* access key id (not secret, but not logged) */
  char *secret;              /* secret access key */
  char *token;               /* session token, NULL when none */
  char source[320];          /* "environment" or "profile P in FILE" */
} ws_awscred;

/* Load the chain into *out (zeroed first).  Missing credentials are
** WS_EINVAL; an unreadable or malformed file WS_EIO / WS_EINVAL. */
WS_MUST_CHECK int ws_awscred_load(ws_awscred *out, ws_err *err);

/* Wipe and free every field; accepts NULL and a zeroed struct. */
void ws_awscred_free(ws_awscred *c);

#endif
