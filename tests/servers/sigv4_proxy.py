#!/usr/bin/env python3
"""A SigV4-verifying proxy in front of s3rver (which checks no signature).

For every request it recomputes the AWS Signature Version 4 of the
Authorization header with the one known test key pair: the canonical request
(method, URI-encoded path, sorted and encoded query, the headers the client
lists as signed, payload hash = x-amz-content-sha256), the string to sign
with its credential scope, and the HMAC chain.  It also checks what S3
checks around the signature: x-amz-content-sha256 present and equal to the
SHA-256 of the body (unless UNSIGNED-PAYLOAD), host and every x-amz-* header
signed, the scope's date, region and service, a Content-Length on PUT.
Mismatches get S3's own error answers (403 SignatureDoesNotMatch,
403 InvalidAccessKeyId, 400 XAmzContentSHA256Mismatch, ...); a request that
passes is forwarded unchanged.  One log line per request:
    HH:MM:SS METHOD PATH -> STATUS [CODE detail]

usage: sigv4_proxy.py --port P --upstream PORT --access-key K --secret S
                      [--region R] [--log FILE] [--ready-file F] [--max-time S]
"""

import argparse
import datetime
import hashlib
import hmac
import re
import urllib.parse
from xml.sax.saxutils import escape

import httpfwd

UNSIGNED = "UNSIGNED-PAYLOAD"
ALGO = "AWS4-HMAC-SHA256"
MAX_SKEW = datetime.timedelta(minutes=15)


def uri_encode(s, keep_slash):
    """AWS UriEncode: every byte but A-Z a-z 0-9 - _ . ~ as %XX (upper)."""
    return urllib.parse.quote(s, safe="-_.~" + ("/" if keep_slash else ""))


def canonical_query(raw):
    pairs = []
    for part in raw.split("&") if raw else []:
        if not part:
            continue
        k, _, v = part.partition("=")
        k = urllib.parse.unquote(k.replace("+", "%20"))
        v = urllib.parse.unquote(v.replace("+", "%20"))
        pairs.append((uri_encode(k, False), uri_encode(v, False)))
    pairs.sort()
    return "&".join("%s=%s" % kv for kv in pairs)


def parse_auth(value):
    """(access_key, date, region, service, signed_headers, signature)."""
    if not value.startswith(ALGO + " "):
        raise ValueError("unsupported algorithm")
    fields = {}
    for item in value[len(ALGO) + 1:].split(","):
        k, _, v = item.strip().partition("=")
        fields[k] = v
    cred = fields["Credential"].split("/")
    if len(cred) != 5 or cred[4] != "aws4_request":
        raise ValueError("bad Credential")
    return (cred[0], cred[1], cred[2], cred[3],
            fields["SignedHeaders"].split(";"), fields["Signature"])


def sign_key(secret, date, region, service):
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


class SigV4Handler(httpfwd.Handler):
    access_key = ""
    secret = ""
    region = "us-east-1"

    def s3_error(self, status, code, message, **more):
        items = "".join("<%s>%s</%s>" % (k, escape(str(v)), k) for k, v in more.items())
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
                "<Message>%s</Message>%s<RequestId>walship-test</RequestId></Error>"
                % (code, escape(message), items)).encode()
        self.log.line(self.command, self.path, "->", status, code, message)
        self.reply(status, body)

    def handle_req(self, body):
        err = self.verify(body)
        if err:
            self.s3_error(*err[:3], **(err[3] if len(err) > 3 else {}))
            return
        status, n = self.forward(body)
        self.log.line(self.command, self.path, "->", status, "ok", "bytes=%d" % n)

    def verify(self, body):
        """None when the request is properly signed, else an error tuple."""
        auth = self.headers.get("Authorization")
        if not auth:
            return (403, "AccessDenied", "Anonymous access is forbidden (no Authorization header)")
        try:
            akid, date, region, service, signed, sig = parse_auth(auth)
        except (ValueError, KeyError) as e:
            return (400, "AuthorizationHeaderMalformed", "cannot parse Authorization: %s" % e)
        if akid != self.access_key:
            return (403, "InvalidAccessKeyId",
                    "The AWS Access Key Id you provided does not exist in our records.",
                    {"AWSAccessKeyId": akid})
        if region != self.region:
            return (400, "AuthorizationHeaderMalformed",
                    "The authorization header is malformed; the region '%s' is "
                    "wrong; expecting '%s'" % (region, self.region),
                    {"Region": self.region})
        if service != "s3":
            return (400, "AuthorizationHeaderMalformed",
                    "The authorization header is malformed; incorrect service "
                    "'%s'. This endpoint belongs to 's3'." % service)
        amz_date = self.headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
        except ValueError:
            return (403, "AccessDenied", "missing or malformed x-amz-date '%s'" % amz_date)
        if amz_date[:8] != date:
            return (403, "SignatureDoesNotMatch",
                    "credential scope date %s differs from x-amz-date %s" % (date, amz_date))
        if abs(datetime.datetime.utcnow() - when) > MAX_SKEW:
            return (403, "RequestTimeTooSkewed", "x-amz-date %s is too far from now" % amz_date)
        payload = self.headers.get("x-amz-content-sha256")
        if payload is None:
            return (400, "InvalidRequest",
                    "Missing required header for this request: x-amz-content-sha256")
        if payload != UNSIGNED:
            if not re.fullmatch(r"[0-9a-f]{64}", payload):
                return (400, "InvalidArgument",
                        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256 "
                        "hex digest (streaming payloads are not supported here)")
            actual = hashlib.sha256(body).hexdigest()
            if actual != payload:
                return (400, "XAmzContentSHA256Mismatch",
                        "The provided 'x-amz-content-sha256' header does not match "
                        "what was computed.",
                        {"ClientComputedContentSHA256": payload,
                         "S3ComputedContentSHA256": actual})
        if self.command == "PUT" and "Content-Length" not in self.headers:
            return (411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
        if "host" not in signed:
            return (403, "AccessDenied", "the host header is not signed")
        unsigned = sorted({k.lower() for k in self.headers.keys()
                           if k.lower().startswith("x-amz-")} - set(signed))
        if unsigned:
            return (403, "AccessDenied",
                    "There were headers present in the request which were not signed",
                    {"HeadersNotSigned": ", ".join(unsigned)})
        if signed != sorted(signed):
            return (403, "SignatureDoesNotMatch", "SignedHeaders are not sorted")

        path, _, query = self.path.partition("?")
        canon_headers = ""
        for h in signed:
            values = self.headers.get_all(h)
            if values is None:
                return (403, "SignatureDoesNotMatch", "signed header '%s' is absent" % h)
            v = ",".join(" ".join(x.split()) for x in values)
            canon_headers += "%s:%s\n" % (h, v)
        canon_req = "\n".join([
            self.command,
            uri_encode(urllib.parse.unquote(path), True) or "/",
            canonical_query(query),
            canon_headers,
            ";".join(signed),
            payload,
        ])
        scope = "%s/%s/%s/aws4_request" % (date, region, service)
        to_sign = "\n".join([ALGO, amz_date, scope,
                             hashlib.sha256(canon_req.encode()).hexdigest()])
        want = hmac.new(sign_key(self.secret, date, region, service),
                        to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig):
            return (403, "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature "
                    "you provided. Check your key and signing method.",
                    {"AWSAccessKeyId": akid, "StringToSign": to_sign,
                     "CanonicalRequest": canon_req})
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--upstream", type=int, required=True, help="s3rver's port")
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--log")
    ap.add_argument("--ready-file")
    ap.add_argument("--max-time", type=float, default=1800)
    a = ap.parse_args()
    httpfwd.exit_after(a.max_time)
    SigV4Handler.upstream = ("127.0.0.1", a.upstream)
    SigV4Handler.access_key = a.access_key
    SigV4Handler.secret = a.secret
    SigV4Handler.region = a.region
    SigV4Handler.log = httpfwd.Logger(a.log)
    httpfwd.serve(SigV4Handler, a.port, a.ready_file).serve_forever()


if __name__ == "__main__":
    main()
