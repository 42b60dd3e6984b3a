/*
** The s3 store's offline parts: the XML parsers keep their bounds and
** refuse broken documents, the credentials chain picks the right source
** and never invents credentials, and addressing (bucket rules, prefixes,
** path vs virtual-host URLs, SigV4-canonical query strings) is exact.
** Network round trips are the integration tests' business, except the
** conditional writes (put_if): the local s3rver ignores If-None-Match and
** If-Match on PUT, so they run against a tiny Python mock on 127.0.0.1
** that enforces them the way AWS documents (412, 404 on If-Match of a
** missing key).  What that verifies: the headers walship sends and how it
** maps the answers — not that any particular server honours them.
*/
#include "walship/store.h"
#include "store_int.h"
#include "s3xml.h"
#include "awscred.h"
#include "common.h"
#include "lease.h"
/* t.h's RUN puts fflush after an else on one line; -Wall flags that. */
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#include "t.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ XML */

typedef struct got {
  char keys[8][64];
  uint64_t sizes[8];
  int64_t mtimes[8];
  int n;
  int fail_at;                 /* return an error at this entry (-1: never) */
} got;

static int collect(void *ud, const char *key, uint64_t size, int64_t mtime, ws_err *err) {
  got *g = ud;
  if (g->n == g->fail_at) return ws_fail(err, WS_ENOMEM, "sink full");
  if (g->n >= 8) return ws_fail(err, WS_ENOMEM, "too many");
  snprintf(g->keys[g->n], sizeof(g->keys[0]), "%s", key);
  g->sizes[g->n] = size;
  g->mtimes[g->n] = mtime;
  g->n++;
  return WS_OK;
}

static const char PAGE1[] =
  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
  "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
  "<Name>walship-test</Name><Prefix>db1/seg/</Prefix><KeyCount>3</KeyCount>"
  "<MaxKeys>3</MaxKeys><IsTruncated>true</IsTruncated>"
  "<ContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</ContinuationToken>"
  "<NextContinuationToken>1w41l63U0xa8q7smH50vCxyTQqdxo69O3EmK28Bi5PcROI4wI/EyIJg==</NextContinuationToken>"
  "<Contents><Key>db1/seg/0000000000000001-0000000000000010.seg</Key>"
  "<LastModified>2024-05-01T12:34:56.789Z</LastModified>"
  "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>"
  "<Owner><ID>abc</ID><DisplayName>me</DisplayName></Owner>"
  "<StorageClass>STANDARD</StorageClass></Contents>"
  "<Contents><Key>db1/seg/0000000000000011-0000000000000020.seg</Key>"
  "<LastModified>2024-05-01T12:35:00.000Z</LastModified><Size>0</Size></Contents>"
  "<Contents><Key>db1/seg/a&amp;b.seg</Key><Size>18446744073709551615</Size>"
  "<LastModified>garbage</LastModified></Contents>"
  "<CommonPrefixes><Prefix>db1/seg/x/</Prefix></CommonPrefixes>"
  "</ListBucketResult>";

static void test_s3xml_list_page_with_token(void) {
  got g = {.fail_at = -1};
  int trunc = 0;
  char *tok = NULL;
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_s3xml_parse_list(PAGE1, strlen(PAGE1), collect, &g, &trunc, &tok, &e), WS_OK);
  CHECK_EQ(g.n, 3);
  CHECK(strcmp(g.keys[0], "db1/seg/0000000000000001-0000000000000010.seg") == 0);
  CHECK(strcmp(g.keys[2], "db1/seg/a&b.seg") == 0);
  CHECK_EQ(g.sizes[0], 434234);
  CHECK_EQ(g.sizes[1], 0);
  CHECK(g.sizes[2] == UINT64_MAX);
  CHECK_EQ(g.mtimes[0], 1714566896789LL);
  CHECK_EQ(g.mtimes[2], 0);            /* unreadable time: unknown, not an error */
  CHECK_EQ(trunc, 1);
  CHECK(tok && strcmp(tok, "1w41l63U0xa8q7smH50vCxyTQqdxo69O3EmK28Bi5PcROI4wI/EyIJg==") == 0);
  free(tok);
}

static void test_s3xml_list_last_page_and_empty(void) {
  static const char last[] =
    "<ListBucketResult><IsTruncated>false</IsTruncated>"
    "<Contents><Key>k</Key><Size>7</Size></Contents></ListBucketResult>";
  static const char empty[] =
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
    "<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>";
  got g = {.fail_at = -1};
  int trunc = 1;
  char *tok = (char *)"x";
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_s3xml_parse_list(last, strlen(last), collect, &g, &trunc, &tok, &e), WS_OK);
  CHECK_EQ(g.n, 1);
  CHECK_EQ(trunc, 0);
  CHECK(tok == NULL);
  g.n = 0;
  CHECK_EQ(ws_s3xml_parse_list(empty, strlen(empty), collect, &g, &trunc, NULL, &e), WS_OK);
  CHECK_EQ(g.n, 0);
}

static void test_s3xml_list_refuses_broken_documents(void) {
  got g = {.fail_at = -1};
  int trunc = 0;
  char *tok = NULL;
  ws_err e = WS_ERR_INIT;
  /* cut in the middle: no partial result */
  CHECK_EQ(ws_s3xml_parse_list(PAGE1, strlen(PAGE1) / 2, collect, &g, &trunc, &tok, &e),
           WS_ECORRUPT);
  CHECK(strstr(e.msg, "not valid XML"));
  CHECK(tok == NULL);
  static const char *bad[] = {
    "", "not xml at all", "<ListBucketResult><Contents></ListBucketResult>",
    /* truncated page without a token: would loop or stop early */
    "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
    /* entry without a key, entry with a bad size */
    "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
    "<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>",
    "<ListBucketResult><Contents><Key>a</Key><Size>99999999999999999999</Size></Contents>"
    "</ListBucketResult>",
    "<ListBucketResult><Contents><Key></Key><Size>1</Size></Contents></ListBucketResult>",
    /* some other document */
    "<ListAllMyBucketsResult></ListAllMyBucketsResult>",
    /* entity games are refused before they start */
    "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><ListBucketResult>&a;</ListBucketResult>",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ws_err e2 = WS_ERR_INIT;
    g.n = 0;
    int rc = ws_s3xml_parse_list(bad[i], strlen(bad[i]), collect, &g, &trunc, &tok, &e2);
    if (rc != WS_ECORRUPT) printf("  case %zu: rc %d\n", i, rc);
    CHECK_EQ(rc, WS_ECORRUPT);
    CHECK(e2.msg[0]);
    CHECK(tok == NULL);
  }
  static const char errdoc[] = "<Error><Code>AccessDenied</Code></Error>";
  CHECK_EQ(ws_s3xml_parse_list(errdoc, strlen(errdoc), collect, &g, &trunc, &tok, &e),
           WS_ESTORE);
}

static void test_s3xml_list_bounds_and_sink_errors(void) {
  /* a key longer than the text cap is an error, never a cut key */
  size_t n = WS_S3XML_TEXT_MAX + 10;
  char *doc = malloc(n + 200);
  CHECK(doc);
  char *p = doc + sprintf(doc, "<ListBucketResult><Contents><Key>");
  memset(p, 'k', n);
  strcpy(p + n, "</Key><Size>1</Size></Contents></ListBucketResult>");
  got g = {.fail_at = -1};
  int trunc = 0;
  ws_err e = WS_ERR_INIT;
  int rc = ws_s3xml_parse_list(doc, strlen(doc), collect, &g, &trunc, NULL, &e);
  free(doc);
  CHECK_EQ(rc, WS_ECORRUPT);
  CHECK(strstr(e.msg, "<Key>"));
  CHECK_EQ(g.n, 0);
  /* deep nesting is refused */
  char deep[64 * 4 + 64] = "<ListBucketResult>";
  for (int i = 0; i < 40; i++) strcat(deep, "<a>");
  ws_err e3 = WS_ERR_INIT;
  CHECK_EQ(ws_s3xml_parse_list(deep, strlen(deep), collect, &g, &trunc, NULL, &e3), WS_ECORRUPT);
  /* the callback's error comes back unchanged */
  got g2 = {.fail_at = 1};
  ws_err e2 = WS_ERR_INIT;
  CHECK_EQ(ws_s3xml_parse_list(PAGE1, strlen(PAGE1), collect, &g2, &trunc, NULL, &e2), WS_ENOMEM);
  CHECK(strcmp(e2.msg, "sink full") == 0);
  CHECK_EQ(g2.n, 1);
}

static void test_s3xml_error_documents(void) {
  static const char doc[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
    "<Message>The specified key does not exist.</Message><Key>db1/seg/x</Key>"
    "<RequestId>4442587FB7D0A2F9</RequestId></Error>";
  ws_s3_error e;
  CHECK_EQ(ws_s3xml_parse_error(&e, doc, strlen(doc)), 1);
  CHECK(strcmp(e.code, "NoSuchKey") == 0);
  CHECK(strcmp(e.message, "The specified key does not exist.") == 0);
  static const char sig[] =
    "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated "
    "does not match</Message><StringToSign>AWS4-HMAC-SHA256</StringToSign></Error>";
  CHECK_EQ(ws_s3xml_parse_error(&e, sig, strlen(sig)), 1);
  CHECK(strcmp(e.code, "SignatureDoesNotMatch") == 0);
  /* overlong messages are cut, not refused (they are display-only) */
  char big[2048];
  int k = snprintf(big, sizeof(big), "<Error><Code>X</Code><Message>");
  memset(big + k, 'm', 1500);
  strcpy(big + k + 1500, "</Message></Error>");
  CHECK_EQ(ws_s3xml_parse_error(&e, big, strlen(big)), 1);
  CHECK_EQ(strlen(e.message), sizeof(e.message) - 1);
  CHECK_EQ(ws_s3xml_parse_error(&e, "", 0), 0);
  CHECK_EQ(ws_s3xml_parse_error(&e, NULL, 0), 0);
  CHECK_EQ(ws_s3xml_parse_error(&e, "<html>502 Bad Gateway</html>", 28), 0);
  CHECK(e.code[0] == '\0');
  CHECK_EQ(ws_s3xml_parse_error(&e, "<Error><Code>Trunc", 18), 0);
}

static void test_s3xml_initiate_complete_delete(void) {
  static const char init[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult "
    "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>b</Bucket><Key>k</Key>"
    "<UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>"
    "</InitiateMultipartUploadResult>";
  char *id = NULL;
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_s3xml_parse_initiate(&id, init, strlen(init), &e), WS_OK);
  CHECK(id && strcmp(id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA") == 0);
  free(id);
  id = NULL;
  static const char noid[] = "<InitiateMultipartUploadResult><Bucket>b</Bucket>"
                             "</InitiateMultipartUploadResult>";
  CHECK_EQ(ws_s3xml_parse_initiate(&id, noid, strlen(noid), &e), WS_ECORRUPT);
  CHECK(id == NULL);

  static const char done[] =
    "<CompleteMultipartUploadResult><Location>http://b/k</Location><Bucket>b</Bucket>"
    "<Key>k</Key><ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>"
    "</CompleteMultipartUploadResult>";
  ws_s3_error se;
  CHECK_EQ(ws_s3xml_parse_complete(done, strlen(done), &se, &e), WS_OK);
  /* the S3 quirk: 200 OK with an <Error> body */
  static const char failed[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n   <Error><Code>InternalError</Code>"
    "<Message>We encountered an internal error. Please try again.</Message></Error>";
  ws_err e2 = WS_ERR_INIT;
  CHECK_EQ(ws_s3xml_parse_complete(failed, strlen(failed), &se, &e2), WS_ESTORE);
  CHECK(strcmp(se.code, "InternalError") == 0);
  CHECK(strstr(e2.msg, "InternalError"));
  CHECK_EQ(ws_s3xml_parse_complete(done, strlen(done) - 5, &se, &e2), WS_ECORRUPT);

  static const char del[] =
    "<DeleteResult><Deleted><Key>a</Key></Deleted>"
    "<Error><Key>p/b</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
    "<Error><Key>p/c</Key><Code>InternalError</Code><Message>x</Message></Error>"
    "</DeleteResult>";
  size_t nerr = 0;
  char key[256];
  CHECK_EQ(ws_s3xml_parse_delete(del, strlen(del), &nerr, key, &se, &e), WS_OK);
  CHECK_EQ(nerr, 2);
  CHECK(strcmp(key, "p/b") == 0);
  CHECK(strcmp(se.code, "AccessDenied") == 0);
  static const char quiet[] = "<DeleteResult/>";
  CHECK_EQ(ws_s3xml_parse_delete(quiet, strlen(quiet), &nerr, NULL, NULL, &e), WS_OK);
  CHECK_EQ(nerr, 0);
}

static void test_s3xml_escape_and_time(void) {
  ws_err e = WS_ERR_INIT;
  char *s = ws_s3xml_escape("\"abc\"<&>'", &e);
  CHECK(s && strcmp(s, "&quot;abc&quot;&lt;&amp;&gt;&apos;") == 0);
  free(s);
  s = ws_s3xml_escape("", &e);
  CHECK(s && !*s);
  free(s);
  CHECK_EQ(ws_s3xml_time_ms("1970-01-01T00:00:00Z"), 0);
  CHECK_EQ(ws_s3xml_time_ms("1970-01-01T00:00:01.5Z"), 1500);
  CHECK_EQ(ws_s3xml_time_ms("2024-02-29T23:59:59.123456Z"), 1709251199123LL);
  CHECK_EQ(ws_s3xml_time_ms("2024-02-29T23:59:59+01:00"), 0);
  CHECK_EQ(ws_s3xml_time_ms("2024-13-01T00:00:00Z"), 0);
}

/* ---------------------------------------------------------- credentials */

static char tmpdir_[64];

static void clear_env(void) {
  static const char *vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                               "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_REGION",
                               "AWS_DEFAULT_REGION"};
  for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) unsetenv(vars[i]);
  setenv("HOME", tmpdir_, 1);  /* no ~/.aws/credentials of the real user */
}

static const char CREDS[] =
  "# comment\n"
  "[default]\n"
  "aws_access_key_id = AKIDDEFAULT\n"
  "aws_secret_access_key = secretdefault\n"
  "\n"
  "  [ ci ]  \r\n"
  "; another comment\n"
  "aws_access_key_id=AKIDCI\r\n"
  "aws_secret_access_key =  secret/ci+x=  \r\n"
  "aws_session_token = tok==\n"
  "region = eu-west-1\n"
  "[half]\n"
  "aws_access_key_id = AKIDHALF\n";

static int write_creds(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  int ok = fputs(text, f) >= 0;
  return (fclose(f) == 0 && ok) ? 0 : -1;
}

static void test_awscred_env_wins(void) {
  clear_env();
  char path[128];
  snprintf(path, sizeof(path), "%s/creds", tmpdir_);
  CHECK_EQ(write_creds(path, CREDS), 0);
  setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
  setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
  ws_awscred c;
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_awscred_load(&c, &e), WS_OK);
  int ok = strcmp(c.access_key, "AKIDENV") == 0 && strcmp(c.secret, "secretenv") == 0 &&
           c.token == NULL && strcmp(c.source, "environment") == 0;
  ws_awscred_free(&c);
  CHECK(ok);
  CHECK(c.access_key == NULL && c.secret == NULL);
  setenv("AWS_SESSION_TOKEN", "envtoken", 1);
  CHECK_EQ(ws_awscred_load(&c, &e), WS_OK);
  ok = c.token && strcmp(c.token, "envtoken") == 0;
  ws_awscred_free(&c);
  CHECK(ok);
  /* half of the pair is a mistake worth naming, not a silent fallback */
  unsetenv("AWS_SECRET_ACCESS_KEY");
  ws_err e2 = WS_ERR_INIT;
  CHECK_EQ(ws_awscred_load(&c, &e2), WS_EINVAL);
  CHECK(strstr(e2.msg, "AWS_SECRET_ACCESS_KEY"));
  unlink(path);
}

static void test_awscred_profiles(void) {
  clear_env();
  char path[128];
  snprintf(path, sizeof(path), "%s/creds", tmpdir_);
  CHECK_EQ(write_creds(path, CREDS), 0);
  setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
  ws_awscred c;
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_awscred_load(&c, &e), WS_OK);
  int ok = strcmp(c.access_key, "AKIDDEFAULT") == 0 && strcmp(c.secret, "secretdefault") == 0 &&
           !c.token && strstr(c.source, "profile default");
  ws_awscred_free(&c);
  CHECK(ok);
  setenv("AWS_PROFILE", "ci", 1);
  CHECK_EQ(ws_awscred_load(&c, &e), WS_OK);
  ok = strcmp(c.access_key, "AKIDCI") == 0 && strcmp(c.secret, "secret/ci+x=") == 0 &&
       c.token && strcmp(c.token, "tok==") == 0;
  ws_awscred_free(&c);
  CHECK(ok);
  setenv("AWS_PROFILE", "half", 1);
  ws_err e2 = WS_ERR_INIT;
  CHECK_EQ(ws_awscred_load(&c, &e2), WS_EINVAL);
  CHECK(strstr(e2.msg, "aws_secret_access_key"));
  setenv("AWS_PROFILE", "nope", 1);
  ws_err e3 = WS_ERR_INIT;
  CHECK_EQ(ws_awscred_load(&c, &e3), WS_EINVAL);
  CHECK(strstr(e3.msg, "nope"));
  /* ~/.aws/credentials when no file is named */
  unsetenv("AWS_SHARED_CREDENTIALS_FILE");
  unsetenv("AWS_PROFILE");
  char dir[128], home_creds[160];
  snprintf(dir, sizeof(dir), "%s/.aws", tmpdir_);
  snprintf(home_creds, sizeof(home_creds), "%s/credentials", dir);
  CHECK(mkdir(dir, 0700) == 0);
  CHECK_EQ(write_creds(home_creds, CREDS), 0);
  CHECK_EQ(ws_awscred_load(&c, &e), WS_OK);
  ok = strcmp(c.access_key, "AKIDDEFAULT") == 0;
  ws_awscred_free(&c);
  unlink(home_creds);
  rmdir(dir);
  unlink(path);
  CHECK(ok);
}

static void test_awscred_missing_is_einval(void) {
  clear_env();
  ws_awscred c;
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_awscred_load(&c, &e), WS_EINVAL);
  CHECK(strcmp(e.msg, "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
               "or a profile in ~/.aws/credentials") == 0);
  /* a file without the default profile is the same situation */
  char path[128];
  snprintf(path, sizeof(path), "%s/creds2", tmpdir_);
  CHECK_EQ(write_creds(path, "[other]\naws_access_key_id=a\naws_secret_access_key=b\n"), 0);
  setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
  ws_err e2 = WS_ERR_INIT;
  CHECK_EQ(ws_awscred_load(&c, &e2), WS_EINVAL);
  CHECK(strstr(e2.msg, "no AWS credentials"));
  unlink(path);
  /* a named file that does not exist is named in the error */
  ws_err e3 = WS_ERR_INIT;
  CHECK_EQ(ws_awscred_load(&c, &e3), WS_EINVAL);
  CHECK(strstr(e3.msg, path));
  /* and the store refuses to open, naming the fix */
  unsetenv("AWS_SHARED_CREDENTIALS_FILE");
  ws_store_opts o = WS_STORE_OPTS_INIT;
  ws_store *st = NULL;
  ws_err e4 = WS_ERR_INIT;
  CHECK_EQ(ws_store_s3_open(&st, "s3://bucket/p", "bucket/p", &o, &e4), WS_EINVAL);
  CHECK(st == NULL);
  CHECK(strstr(e4.msg, "no AWS credentials"));
}

/* ----------------------------------------------------------- addressing */

static void test_s3_bucket_name_rules(void) {
  static const char *good[] = {"abc", "my-bucket.v2", "0123456789", "a.b.c.d1",
    "a23456789012345678901234567890123456789012345678901234567890123"};
  static const char *bad[] = {"ab", "ABC", "my_bucket", "-abc", "abc-", "a..b", "192.168.1.1",
    "xn--abc", "abc-s3alias", "abc--ol-s3", "a b", "bucket?x", "",
    "a234567890123456789012345678901234567890123456789012345678901234"};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    ws_err e = WS_ERR_INIT;
    if (ws_s3_check_bucket(good[i], &e)) printf("  good %s: %s\n", good[i], e.msg);
    CHECK_EQ(ws_s3_check_bucket(good[i], &e), WS_OK);
  }
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ws_err e = WS_ERR_INIT;
    if (ws_s3_check_bucket(bad[i], &e) != WS_EINVAL) printf("  bad %s accepted\n", bad[i]);
    CHECK_EQ(ws_s3_check_bucket(bad[i], &e), WS_EINVAL);
  }
}

static void test_s3_addr_path_style_endpoint(void) {
  clear_env();
  ws_store_opts o = WS_STORE_OPTS_INIT;
  o.endpoint = "http://127.0.0.1:9000/";
  ws_s3_addr a;
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_s3_addr_parse(&a, "test/db1/", &o, &e), WS_OK);
  int ok = strcmp(a.bucket, "test") == 0 && strcmp(a.prefix, "db1") == 0 &&
           strcmp(a.region, "us-east-1") == 0 && strcmp(a.base, "http://127.0.0.1:9000/test") == 0 &&
           strcmp(a.disp, "s3://test/db1") == 0;
  char *key = ws_s3_key(&a, "seg/x.seg", &e);
  char *url = ws_s3_url(&a, key, "uploadId=a%2Bb", &e);
  char *burl = ws_s3_url(&a, NULL, "list-type=2", &e);
  ok = ok && key && strcmp(key, "db1/seg/x.seg") == 0 && url &&
       strcmp(url, "http://127.0.0.1:9000/test/db1/seg/x.seg?uploadId=a%2Bb") == 0 &&
       burl && strcmp(burl, "http://127.0.0.1:9000/test/?list-type=2") == 0;
  free(key);
  free(url);
  free(burl);
  ws_s3_addr_free(&a);
  CHECK(ok);
  /* forced virtual host on a custom endpoint keeps port and path */
  o.endpoint = "https://minio.local:9443/s3";
  o.path_style = 2;
  o.region = "eu-central-1";
  CHECK_EQ(ws_s3_addr_parse(&a, "bkt", &o, &e), WS_OK);
  ok = strcmp(a.base, "https://bkt.minio.local:9443/s3") == 0 && a.prefix[0] == '\0' &&
       strcmp(a.region, "eu-central-1") == 0 && strcmp(a.disp, "s3://bkt") == 0;
  key = ws_s3_key(&a, "snap/1", &e);
  ok = ok && key && strcmp(key, "snap/1") == 0;
  free(key);
  ws_s3_addr_free(&a);
  CHECK(ok);
}

static void test_s3_addr_aws_default_and_region_chain(void) {
  clear_env();
  ws_store_opts o = WS_STORE_OPTS_INIT;
  ws_s3_addr a;
  ws_err e = WS_ERR_INIT;
  setenv("AWS_DEFAULT_REGION", "ap-south-1", 1);
  CHECK_EQ(ws_s3_addr_parse(&a, "my-bucket/a/b", &o, &e), WS_OK);
  int ok = strcmp(a.base, "https://my-bucket.s3.ap-south-1.amazonaws.com") == 0 &&
           strcmp(a.prefix, "a/b") == 0;
  ws_s3_addr_free(&a);
  CHECK(ok);
  setenv("AWS_REGION", "us-west-2", 1);
  CHECK_EQ(ws_s3_addr_parse(&a, "my.dotted.bucket", &o, &e), WS_OK);
  /* dotted buckets stay path style on AWS: TLS wildcards cannot cover them */
  ok = strcmp(a.base, "https://s3.us-west-2.amazonaws.com/my.dotted.bucket") == 0;
  ws_s3_addr_free(&a);
  CHECK(ok);
  o.path_style = 1;
  CHECK_EQ(ws_s3_addr_parse(&a, "my-bucket", &o, &e), WS_OK);
  ok = strcmp(a.base, "https://s3.us-west-2.amazonaws.com/my-bucket") == 0;
  ws_s3_addr_free(&a);
  CHECK(ok);
  clear_env();
}

static void test_s3_addr_refuses_bad_input(void) {
  clear_env();
  ws_store_opts o = WS_STORE_OPTS_INIT;
  ws_s3_addr a;
  static const char *rests[] = {"", "/prefix", "Bucket/p", "b", "bucket//p", "bucket/a/../b",
                                "bucket/p?x=1", "bucket/a b"};
  for (size_t i = 0; i < sizeof(rests) / sizeof(rests[0]); i++) {
    ws_err e = WS_ERR_INIT;
    if (ws_s3_addr_parse(&a, rests[i], &o, &e) != WS_EINVAL) printf("  rest '%s'\n", rests[i]);
    CHECK_EQ(ws_s3_addr_parse(&a, rests[i], &o, &e), WS_EINVAL);
  }
  static const char *eps[] = {"127.0.0.1:9000", "ftp://x", "http://", "http://user:pw@host",
                              "http://h/?q", "http:///path"};
  for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
    ws_err e = WS_ERR_INIT;
    o.endpoint = eps[i];
    CHECK_EQ(ws_s3_addr_parse(&a, "bucket", &o, &e), WS_EINVAL);
    CHECK(!strstr(e.msg, "pw@") || strstr(eps[i], "pw@")); /* message shows input only */
  }
  o.endpoint = NULL;
  o.region = "us-east-1:evil";
  ws_err e = WS_ERR_INIT;
  CHECK_EQ(ws_s3_addr_parse(&a, "bucket", &o, &e), WS_EINVAL);
  o.region = NULL;
  o.path_style = 3;
  CHECK_EQ(ws_s3_addr_parse(&a, "bucket", &o, &e), WS_EINVAL);
}

static void test_s3_query_sorted_and_escaped(void) {
  ws_err e = WS_ERR_INIT;
  const char *kv[] = {"prefix", "db1/seg/", "max-keys", "1000", "list-type", "2",
                      "continuation-token", "1w41l63U0x+a8/q7==", "uploads", NULL};
  char *q = ws_s3_query(kv, 4, &e);
  CHECK(q);
  int ok = strcmp(q, "continuation-token=1w41l63U0x%2Ba8%2Fq7%3D%3D&list-type=2&max-keys=1000"
                     "&prefix=db1%2Fseg%2F") == 0;
  if (!ok) printf("  got %s\n", q);
  free(q);
  CHECK(ok);
  q = ws_s3_query(kv + 8, 1, &e);
  CHECK(q && strcmp(q, "uploads=") == 0);
  free(q);
  const char *parts[] = {"uploadId", "a b~", "partNumber", "10"};
  q = ws_s3_query(parts, 2, &e);
  CHECK(q && strcmp(q, "partNumber=10&uploadId=a%20b~") == 0);
  free(q);
  q = ws_s3_query(NULL, 0, &e);
  CHECK(q && !*q);
  free(q);
}

/* ------------------------------------------------- conditional writes */

/* The mock: argv log file, arm file, mode.  Every answer is logged as
** "METHOD PATH inm=IF-NONE-MATCH im=IF-MATCH -> STATUS" ("-": no header).
** Modes: honour (the conditions, as AWS documents them), ignore (as
** s3rver: conditional PUTs are plain PUTs), deny-probe (403 on the lease
** probe's objects).  A rival: when the arm file holds a method, right after
** answering that method on lease/writer the mock replaces the record with
** a live one of another owner (logged "RIVAL") and removes the arm file.
** Threads: a store keeps its connection open, a second store needs its own. */
static const char MOCK_PY[] =
  "import hashlib, http.server, json, os, sys, time\n"
  "log_path, arm_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]\n"
  "objs = {}\n"
  "def note(line):\n"
  "    with open(log_path, 'a') as f: f.write(line + '\\n')\n"
  "class H(http.server.BaseHTTPRequestHandler):\n"
  "    protocol_version = 'HTTP/1.1'\n"
  "    def log_message(self, *a): pass\n"
  "    def reply(self, code, body=b'', etag=None):\n"
  "        note('%s %s inm=%s im=%s -> %d' % (self.command, self.path,\n"
  "             self.headers.get('If-None-Match', '-'), self.headers.get('If-Match', '-'), code))\n"
  "        self.rival()  # the answer is decided; the rival writes before it is sent\n"
  "        self.send_response(code)\n"
  "        if etag: self.send_header('ETag', etag)\n"
  "        self.send_header('Content-Length', str(len(body)))\n"
  "        self.end_headers()\n"
  "        if self.command != 'HEAD': self.wfile.write(body)\n"
  "    def rival(self):\n"
  "        if not self.path.endswith('/lease/writer') or not os.path.exists(arm_path): return\n"
  "        with open(arm_path) as f: want = f.read().strip()\n"
  "        if want != self.command: return\n"
  "        os.unlink(arm_path)\n"
  "        now = int(time.time() * 1000)\n"
  "        rec = json.dumps({'owner': 'rival:1:000000', 'host': 'rival', 'pid': 1, 'db': '/rival.db',\n"
  "                          'epoch': 9, 'renewed_ms': now, 'expires_ms': now + 60000}).encode()\n"
  "        objs[self.path] = (rec, '\"%s\"' % hashlib.md5(rec).hexdigest())\n"
  "        note('RIVAL wrote ' + self.path)\n"
  "    def err(self, code, c): self.reply(code, ('<Error><Code>%s</Code></Error>' % c).encode())\n"
  "    def do_PUT(self):\n"
  "        data = self.rfile.read(int(self.headers.get('Content-Length', 0)))\n"
  "        if mode == 'deny-probe' and '/lease/probe-' in self.path:\n"
  "            return self.err(403, 'AccessDenied')\n"
  "        cur = objs.get(self.path)\n"
  "        inm, im = self.headers.get('If-None-Match'), self.headers.get('If-Match')\n"
  "        if mode != 'ignore':\n"
  "            if inm == '*' and cur: return self.err(412, 'PreconditionFailed')\n"
  "            if im is not None and not cur: return self.err(404, 'NoSuchKey')\n"
  "            if im is not None and cur[1] != im: return self.err(412, 'PreconditionFailed')\n"
  "        etag = '\"%s\"' % hashlib.md5(data).hexdigest()\n"
  "        objs[self.path] = (data, etag)\n"
  "        self.reply(200, etag=etag)\n"
  "    def do_HEAD(self):\n"
  "        cur = objs.get(self.path)\n"
  "        if not cur: return self.reply(404)\n"
  "        self.reply(200, cur[0], cur[1])\n"
  "    def do_GET(self):\n"
  "        cur = objs.get(self.path)\n"
  "        if not cur: return self.err(404, 'NoSuchKey')\n"
  "        self.reply(200, cur[0], cur[1])\n"
  "    def do_DELETE(self):\n"
  "        objs.pop(self.path, None)\n"
  "        self.reply(204)\n"
  "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)  # stores keep connections open\n"
  "os.write(1, b'%d\\n' % s.server_address[1])  # one write: the parent reads it whole\n"
  "os.close(1)\n"
  "s.serve_forever()\n";

static char mock_log_[300], mock_arm_[300];

static pid_t mock_start(int *port, const char *mode) {
  char path[300];
  snprintf(path, sizeof(path), "%s/s3mock.py", tmpdir_);
  snprintf(mock_log_, sizeof(mock_log_), "%s/s3mock.log", tmpdir_);
  snprintf(mock_arm_, sizeof(mock_arm_), "%s/s3mock.arm", tmpdir_);
  unlink(mock_log_);
  unlink(mock_arm_);
  FILE *f = fopen(path, "w");
  if (!f || fputs(MOCK_PY, f) < 0 || fclose(f) != 0) return -1;
  int pfd[2];
  if (pipe(pfd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pfd[1], 1);
    close(pfd[0]);
    execlp("python3", "python3", path, mock_log_, mock_arm_, mode, (char *)NULL);
    _exit(127);
  }
  close(pfd[1]);
  char line[32] = {0};
  ssize_t n = pid > 0 ? read(pfd[0], line, sizeof(line) - 1) : -1;
  close(pfd[0]);
  *port = n > 0 ? atoi(line) : 0;
  if (*port <= 0 && pid > 0) {
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return -1;
  }
  return pid;
}

static void mock_stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  unlink(mock_log_);
  unlink(mock_arm_);
}

/* The rival writes the lease record right after the next METHOD on it. */
static int mock_arm(const char *method) {
  FILE *f = fopen(mock_arm_, "w");
  return f && fputs(method, f) >= 0 && fclose(f) == 0 ? 0 : -1;
}

/* Lines of the mock's request log containing a and (if not NULL) b. */
static int mock_count(const char *a, const char *b) {
  FILE *f = fopen(mock_log_, "r");
  char line[1024];
  int n = 0;
  while (f && fgets(line, sizeof(line), f))
    n += strstr(line, a) && (!b || strstr(line, b));
  if (f) fclose(f);
  return n;
}

/* A store on the mock at port (no encryption, one retry). */
static int mock_store(ws_store **out, int port, ws_err *e) {
  static char ep[64];
  snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", port);
  setenv("AWS_ACCESS_KEY_ID", "AKIDMOCK", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "mock/secret", 1);
  unsetenv("AWS_SESSION_TOKEN");
  unsetenv("http_proxy");
  unsetenv("HTTP_PROXY");
  unsetenv("all_proxy");
  unsetenv("ALL_PROXY");
  unsetenv("WALSHIP_ENCRYPTION_KEY");
  ws_store_opts o = WS_STORE_OPTS_INIT;
  o.endpoint = ep;
  o.region = "us-east-1";
  o.max_retries = 1;
  return ws_store_open_ex(out, "s3://walship-test/p", &o, e);
}

/* Info lines of the library, kept for the tests to search. */
static char logged_[8192];
static void keep_log(void *ud, int level, const char *component, const char *msg) {
  size_t n = strlen(logged_);
  if (level <= WS_LOG_INFO && n + strlen(msg) + 2 < sizeof(logged_))
    snprintf(logged_ + n, sizeof(logged_) - n, "%s\n", msg);
}

static int get_text(ws_store *st, const char *name, char *out, size_t cap) {
  void *b = NULL;
  size_t n = 0;
  ws_err e = WS_ERR_INIT;
  int rc = ws_store_get_buf(&b, &n, st, name, 0, 0, cap - 1, &e);
  if (rc) return rc;
  memcpy(out, b, n);
  out[n] = 0;
  free(b);
  return WS_OK;
}

static void test_s3_put_if_against_mock(void) {
  int port = 0;
  pid_t mock = mock_start(&port, "honour");
  CHECK(mock > 0);
  ws_store *off = NULL, *st = NULL;
  ws_err e = WS_ERR_INIT;
  setenv("WALSHIP_S3_CONDITIONAL_WRITES", "0", 1);
  int rc0 = mock_store(&off, port, &e);
  unsetenv("WALSHIP_S3_CONDITIONAL_WRITES");
  int rc1 = mock_store(&st, port, &e);
  char t1[WS_STORE_ETAG_MAX], t2[WS_STORE_ETAG_MAX], cur[WS_STORE_ETAG_MAX], buf[64];
  int ok = 0;
  do {
    if (rc0 || rc1) { printf("  open: %s\n", e.msg); break; }
    /* offered by default (the lease probes before trusting them); =0 withholds */
    if (ws_store_can_put_if(off) || !ws_store_can_put_if(st)) break;
    /* opening costs no request: the probe is the lease's */
    if (mock_count(" /", NULL) != 0) break;
    if (st->m->etag(st, "lease/writer", cur, &e) != WS_ENOTFOUND) break;
    if (st->m->put_if(st, "lease/writer", "one", 3, NULL, t1, &e) != WS_OK) break;
    /* the ETag of "one" is its MD5, quotes kept */
    if (strcmp(t1, "\"f97c5d29941bfb1b2fdab0874906ab82\"") != 0) break;
    if (st->m->etag(st, "lease/writer", cur, &e) || strcmp(cur, t1)) break;
    if (st->m->put_if(st, "lease/writer", "two", 3, NULL, t2, &e) != WS_EEXIST) break;
    if (!strstr(e.msg, "HTTP 412") || !strstr(e.msg, "already exists")) break;
    if (get_text(st, "lease/writer", buf, sizeof(buf)) || strcmp(buf, "one")) break;
    if (st->m->put_if(st, "lease/writer", "three", 5, t1, t2, &e) != WS_OK) break;
    if (st->m->put_if(st, "lease/writer", "four", 4, t1, cur, &e) != WS_EEXIST) break;
    if (get_text(st, "lease/writer", buf, sizeof(buf)) || strcmp(buf, "three")) break;
    if (st->m->del(st, "lease/writer", &e) != WS_OK) break;
    if (st->m->put_if(st, "lease/writer", "five", 4, t2, cur, &e) != WS_EEXIST) break;
    if (!strstr(e.msg, "HTTP 404")) break;
    if (st->m->put_if(st, "lease/writer", "x", 1, "\"a\"\r\nX: y", cur, &e) != WS_EINVAL) break;
    ok = 1;
  } while (0);
  if (!ok) printf("  last error: %s\n", e.msg);
  ws_store_close(off);
  ws_store_close(st);
  mock_stop(mock);
  CHECK(ok);
}

#define PROBE_PUT "PUT /walship-test/p/lease/probe-"
#define PROBE_DEL "DELETE /walship-test/p/lease/probe-"
#define REC_PUT "PUT /walship-test/p/lease/writer "
#define REFUSED_PROBE_TOKEN "im=\"walship-probe-no-such-version\" -> 412"

/* Acquire the lease on a fresh store on the mock at port: the rc, the
** lease in *out (NULL on failure), the store in *st. */
static int mock_acquire(ws_lease **out, ws_store **st, int port, ws_err *e) {
  *out = NULL;
  int rc = mock_store(st, port, e);
  return rc ? rc : ws_lease_acquire(out, *st, "/db/app.db", e);
}

/* A server that honours the conditions: the probe sees both refused (four
** requests: put, If-None-Match, If-Match, delete), the lease writes its
** record with If-None-Match: *, and a second sidecar whose create is beaten
** by a rival between its read and its write loses the CAS (412) and
** refuses, naming the rival. */
static void test_s3_lease_probe_chooses_cas_on_honouring_server(void) {
  int port = 0;
  pid_t mock = mock_start(&port, "honour");
  CHECK(mock > 0);
  unsetenv("WALSHIP_S3_CONDITIONAL_WRITES");
  logged_[0] = 0;
  ws_set_log(keep_log, NULL, WS_LOG_DEBUG);
  ws_store *st = NULL, *st2 = NULL;
  ws_lease *l = NULL, *l2 = NULL;
  ws_err e = WS_ERR_INIT, e2 = WS_ERR_INIT;
  char buf[512];
  int rc = mock_acquire(&l, &st, port, &e);
  int probes = mock_count(PROBE_PUT, NULL) + mock_count(PROBE_DEL, NULL);
  int inm_refused = mock_count(PROBE_PUT, "inm=* im=- -> 412");
  int im_refused = mock_count(PROBE_PUT, REFUSED_PROBE_TOKEN);
  int cas_create = mock_count(REC_PUT, "inm=* im=- -> 200");
  int plain = mock_count(REC_PUT, "inm=- im=-");
  ws_lease_release(l);
  int rc2 = WS_OK;
  if (mock_arm("GET") == 0) rc2 = mock_acquire(&l2, &st2, port, &e2);
  int lost = mock_count(REC_PUT, "inm=* im=- -> 412");
  int rival = mock_count("RIVAL", NULL);
  int kept = st2 && get_text(st2, "lease/writer", buf, sizeof(buf)) == WS_OK &&
             strstr(buf, "rival:1:000000") != NULL;
  ws_set_log(NULL, NULL, WS_LOG_INFO);
  ws_lease_release(l2);
  ws_store_close(st);
  ws_store_close(st2);
  mock_stop(mock);
  if (rc) printf("  acquire: %s\n", e.msg);
  CHECK_EQ(rc, WS_OK);
  CHECK_EQ(probes, 4);
  CHECK_EQ(inm_refused, 1);
  CHECK_EQ(im_refused, 1);
  CHECK(strstr(logged_, "ignores conditional writes") == NULL);
  CHECK_EQ(cas_create, 1);
  CHECK_EQ(plain, 0);
  CHECK_EQ(rival, 1);
  CHECK_EQ(lost, 1);
  CHECK_EQ(rc2, WS_ELOCKED);
  CHECK(strstr(e2.msg, "won the race") && strstr(e2.msg, "rival:1:000000"));
  CHECK(kept);
}

/* A server that ignores the conditions (as s3rver): the probe's second
** create succeeds, so the lease says so once at info and writes its record
** plainly, with read-back.  The read-back is what catches a rival that
** writes right after our write: the second sidecar refuses.  (Trusting the
** ignored condition instead, it would return WS_OK over the rival's
** record: two writers.) */
static void test_s3_lease_probe_falls_back_on_ignoring_server(void) {
  int port = 0;
  pid_t mock = mock_start(&port, "ignore");
  CHECK(mock > 0);
  unsetenv("WALSHIP_S3_CONDITIONAL_WRITES");
  logged_[0] = 0;
  ws_set_log(keep_log, NULL, WS_LOG_DEBUG);
  ws_store *st = NULL, *st2 = NULL;
  ws_lease *l = NULL, *l2 = NULL;
  ws_err e = WS_ERR_INIT, e2 = WS_ERR_INIT;
  int rc = mock_acquire(&l, &st, port, &e);
  int probes = mock_count(PROBE_PUT, NULL) + mock_count(PROBE_DEL, NULL);
  int inm_ignored = mock_count(PROBE_PUT, "inm=* im=- -> 200");
  int im_asked = mock_count(PROBE_PUT, "im=\"");
  int plain = mock_count(REC_PUT, "inm=- im=- -> 200");
  int cond = mock_count(REC_PUT, "inm=*") + mock_count(REC_PUT, "im=\"");
  ws_lease_release(l);
  int rc2 = WS_OK;
  if (mock_arm("PUT") == 0) rc2 = mock_acquire(&l2, &st2, port, &e2);
  int rival = mock_count("RIVAL", NULL);
  ws_set_log(NULL, NULL, WS_LOG_INFO);
  ws_lease_release(l2);
  ws_store_close(st);
  ws_store_close(st2);
  mock_stop(mock);
  if (rc) printf("  acquire: %s\n", e.msg);
  CHECK_EQ(rc, WS_OK);
  CHECK_EQ(probes, 3);         /* no If-Match step once If-None-Match failed */
  CHECK_EQ(inm_ignored, 1);
  CHECK_EQ(im_asked, 0);
  CHECK(strstr(logged_, "s3 store ignores conditional writes (If-None-Match); lease uses "
               "read-back fencing store=s3://walship-test/p"));
  CHECK_EQ(plain, 1);
  CHECK_EQ(cond, 0);
  CHECK_EQ(rival, 1);
  CHECK_EQ(rc2, WS_ELOCKED);
  CHECK(strstr(e2.msg, "won the race") && strstr(e2.msg, "rival:1:000000"));
}

/* A store error during the probe (403 on the probe object) is the
** acquire's error, not "unsupported": no lease record is written. */
static void test_s3_lease_probe_error_is_a_store_error(void) {
  int port = 0;
  pid_t mock = mock_start(&port, "deny-probe");
  CHECK(mock > 0);
  unsetenv("WALSHIP_S3_CONDITIONAL_WRITES");
  ws_store *st = NULL;
  ws_lease *l = NULL;
  ws_err e = WS_ERR_INIT;
  int rc = mock_acquire(&l, &st, port, &e);
  int recs = mock_count(REC_PUT, NULL);
  ws_lease_release(l);
  ws_store_close(st);
  mock_stop(mock);
  CHECK_EQ(rc, WS_ESTORE);
  CHECK(strstr(e.msg, "access denied (403 AccessDenied)") && strstr(e.msg, "lease/probe-"));
  CHECK_EQ(recs, 0);
}

/* WALSHIP_S3_CONDITIONAL_WRITES=0: no probe, plain writes with read-back;
** =1: no probe, conditional writes trusted (here, on a server that ignores
** them: the operator's call). */
static void test_s3_conditional_writes_env_overrides(void) {
  int port = 0;
  pid_t mock = mock_start(&port, "ignore");
  CHECK(mock > 0);
  ws_store *st = NULL, *st2 = NULL;
  ws_lease *l = NULL, *l2 = NULL;
  ws_err e = WS_ERR_INIT, e2 = WS_ERR_INIT;
  setenv("WALSHIP_S3_CONDITIONAL_WRITES", "0", 1);
  int rc = mock_acquire(&l, &st, port, &e);
  int can = st && ws_store_can_put_if(st);
  int plain = mock_count(REC_PUT, "inm=- im=-");
  ws_lease_release(l);
  setenv("WALSHIP_S3_CONDITIONAL_WRITES", "1", 1);
  int rc2 = mock_acquire(&l2, &st2, port, &e2);
  int cond = mock_count(REC_PUT, "inm=* im=-");
  int probes = mock_count("/lease/probe-", NULL);
  unsetenv("WALSHIP_S3_CONDITIONAL_WRITES");
  ws_lease_release(l2);
  ws_store_close(st);
  ws_store_close(st2);
  mock_stop(mock);
  CHECK_EQ(rc, WS_OK);
  CHECK_EQ(can, 0);
  CHECK_EQ(plain, 1);
  CHECK_EQ(rc2, WS_OK);
  CHECK_EQ(cond, 1);
  CHECK_EQ(probes, 0);
}

int main(void) {
  snprintf(tmpdir_, sizeof(tmpdir_), "/tmp/ws-test-s3-XXXXXX");
  if (!mkdtemp(tmpdir_)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_s3xml_list_page_with_token);
  RUN(test_s3xml_list_last_page_and_empty);
  RUN(test_s3xml_list_refuses_broken_documents);
  RUN(test_s3xml_list_bounds_and_sink_errors);
  RUN(test_s3xml_error_documents);
  RUN(test_s3xml_initiate_complete_delete);
  RUN(test_s3xml_escape_and_time);
  RUN(test_awscred_env_wins);
  RUN(test_awscred_profiles);
  RUN(test_awscred_missing_is_einval);
  RUN(test_s3_bucket_name_rules);
  RUN(test_s3_addr_path_style_endpoint);
  RUN(test_s3_addr_aws_default_and_region_chain);
  RUN(test_s3_addr_refuses_bad_input);
  RUN(test_s3_query_sorted_and_escaped);
  RUN(test_s3_put_if_against_mock);
  RUN(test_s3_lease_probe_chooses_cas_on_honouring_server);
  RUN(test_s3_lease_probe_falls_back_on_ignoring_server);
  RUN(test_s3_lease_probe_error_is_a_store_error);
  RUN(test_s3_conditional_writes_env_overrides);
  rmdir(tmpdir_);
  T_EXIT();
}
