#!/usr/bin/env python3
"""A fault-injecting HTTP proxy between walship and a test store.

Forwards every request to 127.0.0.1:UPSTREAM (headers unchanged, so SigV4
signatures still verify behind it).  With probability --rate a request
instead suffers one fault drawn (seeded) from --kinds:

  error        answer 500 or 503 at once, request not forwarded
  error_after  forward it (the store applies it), then answer 500/503
  drop         reset the connection without forwarding or answering
  drop_after   forward it, then reset without answering
  cut          forward it and send only part of the answer's body (the
               Content-Length announces all of it, or a chunked body lacks
               its last chunk), then reset: a truncated GET / a connection
               dropped mid-body
  reqcut       reset while the request body is being read (uploads)
  slow         sleep up to --slow-max seconds, then forward normally

A down window makes the store unreachable: the listening socket is closed
(connections are refused) and live connections are reset at their next
request, while --down-file exists, or from --down-at to --down-at+--down-for
seconds after start.

Bounds: at most --max-faults faults (then it only forwards), sleeps of at
most --slow-max each, and the process exits by itself after --max-time.
One log line per request:  HH:MM:SS METHOD PATH -> STATUS fault=KIND

usage: fault_proxy.py --upstream PORT [--port P] [--seed N] [--rate R]
         [--kinds K,K] [--methods GET,PUT] [--max-faults N] [--slow-max S]
         [--down-file F] [--down-at S --down-for S] [--log F] [--ready-file F]
         [--max-time S]
"""

import argparse
import os
import random
import select
import socket
import threading
import time

import httpfwd

KINDS = ("error", "error_after", "drop", "drop_after", "cut", "reqcut", "slow")


class Faults:
    """The seeded fault plan, shared by the handler threads."""

    def __init__(self, a):
        self.rng = random.Random(a.seed)
        self.lock = threading.Lock()
        self.rate = a.rate
        self.kinds = [k for k in a.kinds.split(",") if k]
        for k in self.kinds:
            if k not in KINDS:
                raise SystemExit("fault_proxy: unknown fault kind %r" % k)
        self.methods = {m.upper() for m in a.methods.split(",") if m}
        self.left = a.max_faults
        self.slow_max = a.slow_max
        self.down_file = a.down_file
        self.t0 = time.monotonic()
        self.down_at, self.down_for = a.down_at, a.down_for

    def down(self):
        if self.down_file and os.path.exists(self.down_file):
            return True
        if self.down_for > 0:
            t = time.monotonic() - self.t0
            return self.down_at <= t < self.down_at + self.down_for
        return False

    def draw(self, method):
        """(kind, uniform random in [0,1)) or (None, 0)."""
        with self.lock:
            if self.left <= 0 or not self.kinds or self.rate <= 0:
                return None, 0.0
            if self.methods and method not in self.methods:
                return None, 0.0
            if self.rng.random() >= self.rate:
                return None, 0.0
            self.left -= 1
            return self.rng.choice(self.kinds), self.rng.random()


class FaultHandler(httpfwd.Handler):
    faults = None

    def dispatch(self):
        f = self.faults
        if f.down():
            self.log.line(self.command, self.path, "-> reset fault=down")
            self.abort()
            return
        kind, u = f.draw(self.command)
        n = int(self.headers.get("Content-Length") or 0)
        if kind == "reqcut" and n < 2:
            kind = "drop"
        if kind == "reqcut":
            try:
                self.read_exact(max(1, int(n * u)))
            except (ConnectionError, OSError):
                pass
            self.log.line(self.command, self.path, "-> reset fault=reqcut")
            self.abort()
            return
        try:
            body = self.read_body()
        except (ConnectionError, ValueError, OSError) as e:
            self.log.line(self.command, self.path, "request-body-error", repr(e))
            self.close_connection = True
            return
        self.inject(kind, u, body)

    def error_answer(self, u):
        status = 503 if u < 0.5 else 500
        code = "SlowDown" if status == 503 else "InternalError"
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
                "<Message>injected by fault_proxy</Message></Error>" % code).encode()
        self.reply(status, body)
        return status

    def inject(self, kind, u, body):
        tag = "fault=%s" % kind if kind else "ok"
        if kind == "error":
            self.log.line(self.command, self.path, "->", self.error_answer(u), tag)
            return
        if kind == "drop":
            self.log.line(self.command, self.path, "-> reset", tag)
            self.abort()
            return
        if kind == "slow":
            time.sleep(u * self.faults.slow_max)
        if kind in ("error_after", "drop_after", "cut"):
            try:
                conn, resp = self.open_upstream(body)
            except OSError as e:
                self.log.line(self.command, self.path, "upstream-error", repr(e))
                self.reply(502, b"upstream unreachable\n", "text/plain")
                return
            try:
                clen = resp.getheader("Content-Length")
                length = int(clen or 0)
                cut = None
                if kind == "cut" and self.command != "HEAD" and resp.status not in (204, 304):
                    if clen is None:        # chunked: cut somewhere early
                        cut = 1 + int(u * 300)
                    elif length >= 2:
                        cut = min(max(1, int(length * u)), length - 1)
                if cut is not None:
                    status, sent = self.relay(resp, cut_at=cut)
                    self.log.line(self.command, self.path, "->", status, tag,
                                  "sent=%d/%s" % (sent, clen or "chunked"))
                    return
                resp.read()
                upstream = resp.status
            finally:
                conn.close()
            if kind == "error_after":
                self.log.line(self.command, self.path, "->", self.error_answer(u), tag,
                              "upstream=%d" % upstream)
            else:
                self.log.line(self.command, self.path, "-> reset", "fault=drop_after",
                              "upstream=%d" % upstream)
                self.abort()
            return
        status, n = self.forward(body)
        self.log.line(self.command, self.path, "->", status, tag, "bytes=%d" % n)


def serve(srv, faults):
    """serve_forever, except that the listening socket is closed while the
    store is down (so connecting is refused) and bound again after."""
    addr = srv.server_address
    listening = True
    while True:
        if faults.down():
            if listening:
                srv.socket.close()
                listening = False
            time.sleep(0.05)
            continue
        if not listening:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(addr)
            except OSError:
                s.close()
                time.sleep(0.1)
                continue
            s.listen(64)
            srv.socket = s
            listening = True
        r, _, _ = select.select([srv.socket], [], [], 0.1)
        if r:
            srv._handle_request_noblock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--kinds", default="error,error_after,drop,drop_after,cut,slow")
    ap.add_argument("--methods", default="")
    ap.add_argument("--max-faults", type=int, default=1000)
    ap.add_argument("--slow-max", type=float, default=2.0)
    ap.add_argument("--down-file")
    ap.add_argument("--down-at", type=float, default=0.0)
    ap.add_argument("--down-for", type=float, default=0.0)
    ap.add_argument("--log")
    ap.add_argument("--ready-file")
    ap.add_argument("--max-time", type=float, default=1800)
    a = ap.parse_args()
    httpfwd.exit_after(a.max_time)
    FaultHandler.upstream = ("127.0.0.1", a.upstream)
    FaultHandler.faults = Faults(a)
    FaultHandler.log = httpfwd.Logger(a.log)
    srv = httpfwd.serve(FaultHandler, a.port, a.ready_file)
    serve(srv, FaultHandler.faults)


if __name__ == "__main__":
    main()
