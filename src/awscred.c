/*
** The AWS credentials chain (environment, then the shared credentials
** file); see awscred.h for the order and the secrecy invariants.
**
** The INI reader follows what the AWS CLI accepts in a credentials file:
** "[name]" section headers (surrounding blanks ignored), "key = value"
** lines, whole-line comments starting with '#' or ';', keys matched
** case-sensitively as the SDKs do.  The last occurrence of a key in a
** profile wins.  The file is capped at 1 MiB: anything bigger is not a
** credentials file.
*/
#include "awscred.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CRED_FILE_MAX (1u << 20)
#define MISSING_MSG "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY " \
                    "or a profile in ~/.aws/credentials"

static void wipe_free(char *s) {
  if (!s) return;
  explicit_bzero(s, strlen(s));
  free(s);
}

void ws_awscred_free(ws_awscred *c) {
  if (!c) return;
  wipe_free(c->access_key);
  wipe_free(c->secret);
  wipe_free(c->token);
  explicit_bzero(c, sizeof(*c));
}

static const char *env_nonempty(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

/* Whole file into a NUL-terminated buffer; *out NULL when it does not
** exist.  The caller wipes and frees the buffer. */
static int read_file(char **out, size_t *outlen, const char *path, ws_err *err) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return WS_OK;
    return ws_fail(err, WS_EIO, "open AWS credentials file %s: %s", path, strerror(errno));
  }
  int rc = WS_OK;
  char *buf = NULL;
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    rc = ws_fail(err, WS_EIO, "stat %s: %s", path, strerror(errno));
    goto out;
  }
  if (!S_ISREG(sb.st_mode) || sb.st_size > (off_t)CRED_FILE_MAX) {
    rc = ws_fail(err, WS_EINVAL, "AWS credentials file %s is not a regular file "
                 "under %u bytes", path, CRED_FILE_MAX);
    goto out;
  }
  size_t size = (size_t)sb.st_size;
  if (!(buf = ws_malloc(size + 1, err))) {
    rc = WS_ENOMEM;
    goto out;
  }
  ssize_t got = ws_pread_full(fd, buf, size, 0, path, err);
  if (got < 0) {
    rc = WS_EIO;
    goto out;
  }
  buf[got] = '\0';
  *out = buf;
  *outlen = (size_t)got;
  buf = NULL;
out:
  if (buf) {
    explicit_bzero(buf, size + 1);
    free(buf);
  }
  close(fd);  /* read-only */
  return rc;
}

/* Trim blanks at both ends of [s, *e) in place; returns the new start. */
static char *trim(char *s, char **e) {
  while (s < *e && (*s == ' ' || *s == '\t')) s++;
  while (*e > s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r')) (*e)--;
  **e = '\0';
  return s;
}

/* Replace *dst (wiping the old value) with a copy of v. */
static int set_field(char **dst, const char *v, ws_err *err) {
  wipe_free(*dst);
  *dst = NULL;
  if (!*v) return WS_OK;
  return (*dst = ws_strdup(v, err)) ? WS_OK : WS_ENOMEM;
}

/* Find profile in the INI text (modified in place); *found set when the
** section exists. */
static int parse_ini(ws_awscred *c, char *text, const char *profile, int *found,
                     ws_err *err) {
  int in = 0, rc = WS_OK;
  char *line = text;
  while (line && *line) {
    char *nl = strchr(line, '\n');
    char *end = nl ? nl : line + strlen(line);
    char *next = nl ? nl + 1 : NULL;
    char *s = trim(line, &end);
    if (*s == '[') {
      char *close = strchr(s, ']');
      if (close) {
        char *ne = close;
        char *name = trim(s + 1, &ne);
        in = strcmp(name, profile) == 0;
        if (in) *found = 1;
      } else {
        in = 0;
      }
    } else if (in && *s && *s != '#' && *s != ';') {
      char *eq = strchr(s, '=');
      if (eq) {
        char *ke = eq;
        char *key = trim(s, &ke);
        char *ve = end;
        char *val = trim(eq + 1, &ve);
        if (strcmp(key, "aws_access_key_id") == 0) rc = set_field(&c->access_key, val, err);
        else if (strcmp(key, "aws_secret_access_key") == 0) rc = set_field(&c->secret, val, err);
        else if (strcmp(key, "aws_session_token") == 0) rc = set_field(&c->token, val, err);
        if (rc) return rc;
      }
    }
    line = next;
  }
  return WS_OK;
}

static int from_env(ws_awscred *c, ws_err *err) {
  const char *id = env_nonempty("AWS_ACCESS_KEY_ID");
  const char *sk = env_nonempty("AWS_SECRET_ACCESS_KEY");
  const char *tok = env_nonempty("AWS_SESSION_TOKEN");
  if (!id && !sk) return WS_OK;
  if (!id || !sk)
    return ws_fail(err, WS_EINVAL, "%s is set but %s is not",
                   id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                   id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
  if (!(c->access_key = ws_strdup(id, err)) || !(c->secret = ws_strdup(sk, err)) ||
      (tok && !(c->token = ws_strdup(tok, err))))
    return WS_ENOMEM;
  snprintf(c->source, sizeof(c->source), "environment");
  return WS_OK;
}

static int from_file(ws_awscred *c, ws_err *err) {
  const char *profile = env_nonempty("AWS_PROFILE");
  int explicit_profile = profile != NULL;
  if (!profile) profile = "default";
  char *path = NULL, *text = NULL;
  size_t tlen = 0;
  int rc = WS_OK, found = 0;
  const char *file = env_nonempty("AWS_SHARED_CREDENTIALS_FILE");
  if (file) {
    path = ws_strdup(file, err);
  } else {
    const char *home = env_nonempty("HOME");
    if (!home) {
      struct passwd *pw = getpwuid(getuid());
      home = pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
    }
    if (!home) return ws_fail(err, WS_EINVAL, MISSING_MSG);
    path = ws_asprintf(err, "%s/.aws/credentials", home);
  }
  if (!path) return WS_ENOMEM;
  if ((rc = read_file(&text, &tlen, path, err))) goto out;
  if (!text) {
    rc = file ? ws_fail(err, WS_EINVAL, "AWS_SHARED_CREDENTIALS_FILE %s does not exist", path)
              : ws_fail(err, WS_EINVAL, MISSING_MSG);
    goto out;
  }
  if ((rc = parse_ini(c, text, profile, &found, err))) goto out;
  if (!found) {
    rc = explicit_profile
             ? ws_fail(err, WS_EINVAL, "AWS profile %s not found in %s", profile, path)
             : ws_fail(err, WS_EINVAL, MISSING_MSG);
  } else if (!c->access_key || !c->secret) {
    rc = ws_fail(err, WS_EINVAL, "AWS profile %s in %s has no %s", profile, path,
                 c->access_key ? "aws_secret_access_key" : "aws_access_key_id");
  } else {
    snprintf(c->source, sizeof(c->source), "profile %.64s in %.240s", profile, path);
  }
out:
  if (text) {
    explicit_bzero(text, tlen);
    free(text);
  }
  free(path);
  return rc;
}

int ws_awscred_load(ws_awscred *out, ws_err *err) {
  ws_awscred c;
  memset(&c, 0, sizeof(c));
  int rc = from_env(&c, err);
  if (!rc && !c.access_key) rc = from_file(&c, err);
  if (rc) {
    ws_awscred_free(&c);
    return rc;
  }
  *out = c;
  explicit_bzero(&c, sizeof(c));
  return WS_OK;
}
