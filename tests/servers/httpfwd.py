"""Shared pieces of the test proxies (sigv4_proxy.py, fault_proxy.py).

A threading HTTP/1.1 server whose handler reads one request (the body
buffered: bodies in these tests are at most a few tens of MiB), lets a
subclass decide what to do with it, and can forward it verbatim to an
upstream 127.0.0.1 server, streaming the answer back.  Headers are passed
through unchanged (Host included) so a signature computed by the client for
the first hop still verifies at the last one; only hop-by-hop headers are
dropped.  Every request is logged as one line to a log file.

Invariants: a response always carries an exact Content-Length (or the
connection is closed after it), so keep-alive clients never desynchronise
unless a fault is injected on purpose; nothing listens outside 127.0.0.1.
"""

import http.client
import http.server
import os
import socket
import struct
import sys
import threading
import time

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade", "expect",
    "proxy-connection",
}
CHUNK = 64 * 1024
UPSTREAM_TIMEOUT = 60.0


class Logger:
    """One line per request, flushed at once, shared by the threads."""

    def __init__(self, path):
        self._f = open(path, "a", buffering=1) if path else sys.stderr
        self._lock = threading.Lock()

    def line(self, *parts):
        text = time.strftime("%H:%M:%S ") + " ".join(str(p) for p in parts)
        with self._lock:
            self._f.write(text + "\n")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class Handler(http.server.BaseHTTPRequestHandler):
    """Subclasses implement handle_req(body) and may call forward(body)."""

    protocol_version = "HTTP/1.1"
    server_version = "walship-test-proxy"
    # Headers and body go out in separate writes: with Nagle on, the second
    # waits for the client's delayed ACK (40 ms per response on Linux), which
    # made every GET through the proxies take ~48 ms (bench/s3.sh).
    disable_nagle_algorithm = True
    upstream = ("127.0.0.1", 0)  # set by the program
    log = None                   # Logger

    # BaseHTTPRequestHandler logs to stderr by default; we log ourselves.
    def log_message(self, fmt, *args):
        pass

    def dispatch(self):
        """Read the body and hand the request to handle_req (overridable)."""
        try:
            body = self.read_body()
        except (ConnectionError, ValueError, socket.timeout) as e:
            self.log.line(self.command, self.path, "request-body-error", repr(e))
            self.close_connection = True
            return
        if body is None:
            return
        self.handle_req(body)

    def _do(self):
        self.dispatch()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _do
    do_MKCOL = do_COPY = do_MOVE = do_OPTIONS = do_PROPFIND = _do

    def read_body(self):
        """The request body (b"" when none).  A chunked body is decoded;
        returns None after answering 411 when the length is unknowable."""
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            return self._read_chunked()
        n = self.headers.get("Content-Length")
        if n is None:
            return b""
        n = int(n)
        if n < 0:
            raise ValueError("negative Content-Length")
        return self.read_exact(n)

    def read_exact(self, n):
        parts = []
        while n > 0:
            b = self.rfile.read(min(n, CHUNK))
            if not b:
                raise ConnectionError("client closed mid-body")
            parts.append(b)
            n -= len(b)
        return b"".join(parts)

    def _read_chunked(self):
        parts = []
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise ConnectionError("client closed mid-chunk")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(self.read_exact(size))
            self.rfile.readline(16)

    # ------------------------------------------------------------ answers
    def reply(self, status, body=b"", ctype="application/xml", extra=None):
        self.send_response(status)
        if body:
            self.send_header("Content-Type", ctype)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def abort(self):
        """Close the connection with a TCP reset, no answer."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ------------------------------------------------------------ forwarding
    def open_upstream(self, body):
        """Send the request upstream; returns (conn, response) or raises."""
        conn = http.client.HTTPConnection(*self.upstream, timeout=UPSTREAM_TIMEOUT)
        conn.putrequest(self.command, self.path, skip_host=True,
                        skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() in HOP_BY_HOP or k.lower() == "content-length":
                continue
            conn.putheader(k, v)
        if body or self.command in ("PUT", "POST"):
            conn.putheader("Content-Length", str(len(body)))
        conn.putheader("Connection", "close")
        conn.endheaders(body if body else None)
        return conn, conn.getresponse()

    def forward(self, body, cut_at=None):
        """Forward and stream the answer back.  With cut_at, send only that
        many body bytes of the answer (the headers still announce all of
        them) and reset the connection.  Returns (status, bytes sent)."""
        try:
            conn, resp = self.open_upstream(body)
        except OSError as e:
            self.log.line(self.command, self.path, "upstream-error", repr(e))
            self.reply(502, b"upstream unreachable\n", "text/plain")
            return 502, 0
        try:
            return self.relay(resp, cut_at)
        finally:
            conn.close()

    def relay(self, resp, cut_at=None):
        """Stream resp back.  A body of unknown length (chunked upstream)
        is sent chunked again, so a cut stays detectable by the client."""
        length = resp.getheader("Content-Length")
        has_body = self.command != "HEAD" and resp.status not in (204, 304)
        chunked = length is None and has_body
        self.send_response_only(resp.status, resp.reason)
        self.send_header("Date", self.date_time_string())
        for k, v in resp.getheaders():
            if k.lower() in HOP_BY_HOP or k.lower() in ("date", "server"):
                continue
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        if not has_body:
            return resp.status, 0
        while True:
            want = CHUNK if cut_at is None else min(CHUNK, cut_at - sent)
            if want <= 0:
                self.wfile.flush()
                self.abort()
                return resp.status, sent
            b = resp.read(want)
            if not b:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b) if chunked else b)
            sent += len(b)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        return resp.status, sent


def serve(handler_cls, port, ready_file=None):
    """Bind 127.0.0.1:port, write the bound port to ready_file, serve."""
    srv = Server(("127.0.0.1", port), handler_cls)
    if ready_file:
        tmp = ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.replace(tmp, ready_file)
    return srv


def exit_after(seconds):
    """Safety net: the process ends itself after `seconds` whatever happens."""
    if seconds and seconds > 0:
        t = threading.Timer(seconds, lambda: os._exit(0))
        t.daemon = True
        t.start()
