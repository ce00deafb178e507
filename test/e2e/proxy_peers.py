#!/usr/bin/env python3
"""Peers for the `tether proxy` end-to-end tests (test_proxy*.py): a python HTTP/1.1 backend
run as its own process (so a test can kill it by PID), and helpers that start `tether proxy`
and the backends on free loopback ports. Standard library only.

Backend (python3 proxy_peers.py PORT NAME [--idle-close SEC]):
  GET  /headers        JSON {"name", "request_line", "headers": [[name, value], ...]}; with
                       ?hop=1 the response carries hop-by-hop fields (Connection: X-Resp-Hop,
                       X-Resp-Hop, Keep-Alive, Proxy-Authenticate) and X-Resp-End
  POST /hash           reads the body (Content-Length or chunked, trailers too) as it arrives;
                       JSON {"name", "len", "sha256", "chunked", "trailers": {...}}
  GET  /gen?n=N[&chunked=1]  N bytes of pattern(); chunked ones end with the trailer
                       X-Sha256: <hex of the body>
  GET  /slow?s=S       answers after S seconds
  GET  /truncate?n=N   promises N bytes (Content-Length), sends N/2 and closes
  anything else        "hello from NAME" (X-Backend: NAME)
With --idle-close SEC it closes a keep-alive connection idle for SEC seconds, without a
Keep-Alive hint (as many application servers do)."""
import hashlib
import http.server
import json
import os
import signal
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tt  # noqa: E402

BLOCK = bytes(range(256)) * 256  # 64 KiB


def pattern(n):
    """The n-byte body /gen sends, as an iterator of blocks."""
    while n > 0:
        b = BLOCK[:min(n, len(BLOCK))]
        n -= len(b)
        yield b


def pattern_sha256(n):
    h = hashlib.sha256()
    for b in pattern(n):
        h.update(b)
    return h.hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    name = "backend"

    def log_message(self, *a):
        pass

    def send_body(self, status, body, ctype="text/plain", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", self.name)
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def copy(self, left, h):
        """Feed the next left bytes of the request to h."""
        while left:
            b = self.rfile.read(min(left, 1 << 20))
            if not b:
                raise EOFError("body cut short")
            h.update(b)
            left -= len(b)

    def read_body(self, h):
        """Feed the request body to h; returns (length, chunked, trailers)."""
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            n = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    break
                self.copy(size, h)
                n += size
                self.rfile.readline()  # CRLF after the chunk
            trailers = {}
            while True:
                line = self.rfile.readline().rstrip(b"\r\n")
                if not line:
                    break
                k, _, v = line.decode("latin-1").partition(":")
                trailers[k.strip().lower()] = v.strip()
            return n, True, trailers
        n = int(self.headers.get("Content-Length", "0"))
        self.copy(n, h)
        return n, False, {}

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        if u.path == "/headers":
            doc = {"name": self.name, "request_line": self.requestline,
                   "headers": [[k, v] for k, v in self.headers.items()]}
            hop = (("Connection", "X-Resp-Hop"), ("X-Resp-Hop", "1"), ("Keep-Alive", "timeout=5"),
                   ("Proxy-Authenticate", "Basic"), ("X-Resp-End", "1")) if q.get("hop") else ()
            self.send_body(200, json.dumps(doc).encode(), "application/json", hop)
        elif u.path == "/gen":
            n = int(q.get("n", "0"))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("X-Backend", self.name)
            if q.get("chunked"):
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Trailer", "X-Sha256")
                self.end_headers()
                if self.command == "HEAD":
                    return
                h = hashlib.sha256()
                for b in pattern(n):
                    h.update(b)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
                self.wfile.write(b"0\r\nX-Sha256: %s\r\n\r\n" % h.hexdigest().encode())
            else:
                self.send_header("Content-Length", str(n))
                self.end_headers()
                if self.command == "HEAD":
                    return
                for b in pattern(n):
                    self.wfile.write(b)
        elif u.path == "/truncate":  # promises n bytes, sends half, closes
            n = int(q.get("n", "100000"))
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write(b"t" * (n // 2))
            self.wfile.flush()
            self.close_connection = True
        elif u.path == "/slow":
            time.sleep(float(q.get("s", "1")))
            self.send_body(200, b"slow\n")
        else:
            self.send_body(200, ("hello from %s\n" % self.name).encode())

    do_HEAD = do_GET

    def do_POST(self):
        h = hashlib.sha256()
        n, chunked, trailers = self.read_body(h)
        doc = {"name": self.name, "len": n, "sha256": h.hexdigest(), "chunked": chunked,
               "trailers": trailers}
        self.send_body(200, json.dumps(doc).encode(), "application/json")

    do_PUT = do_POST


def serve(port, name, idle_close):
    Handler.name = name
    if idle_close:
        Handler.timeout = idle_close  # an idle keep-alive connection times out and is closed
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    srv.serve_forever()


class Proc(tt.Tether):
    """A process on a free loopback port (tt.Tether's start, stop by PID, url, connect) with
    any argv, plus kill (an upstream dying) and its RSS."""

    def __init__(self, argv, port):
        super().__init__(port=port)
        self.args = argv

    def kill(self):
        """SIGKILL: its sockets are closed or reset by the kernel."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def rss(self):
        """VmRSS of the process in bytes."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0


def backend(name="b", idle_close=None, port=None):
    """A python backend process (see the module doc)."""
    port = port or tt.free_port()
    argv = [sys.executable, os.path.abspath(__file__), str(port), name]
    if idle_close:
        argv += ["--idle-close", str(idle_close)]
    return Proc(argv, port)


def echo_backend(*extra, port=None):
    """`tether serve --echo` (GET: Hello, World!; a body is echoed)."""
    port = port or tt.free_port()
    return Proc([tt.TETHER, "serve", "--echo", "--workers", "1", "--listen",
                 "127.0.0.1:%d" % port] + list(extra), port)


def proxy(upstreams, *extra, port=None, listen=None):
    """`tether proxy` in front of upstreams (URLs or objects with .url()), with --status, on
    listen (default: 127.0.0.1:port)."""
    port = port or tt.free_port()
    argv = [tt.TETHER, "proxy", "--listen", listen or "127.0.0.1:%d" % port, "--workers", "2",
            "--status"]
    for u in upstreams:
        argv += ["--upstream", u if isinstance(u, str) else u.url("")]
    return Proc(argv + list(extra), port)


def status(p):
    """The proxy's /_tether/status document."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=20)
    try:
        c.request("GET", "/_tether/status", headers={"Host": "localhost"})
        r = c.getresponse()
        assert r.status == 200, r.status
        return json.loads(r.read())
    finally:
        c.close()


if __name__ == "__main__":
    idle = None
    if "--idle-close" in sys.argv:
        i = sys.argv.index("--idle-close")
        idle = float(sys.argv[i + 1])
        del sys.argv[i:i + 2]
    serve(int(sys.argv[1]), sys.argv[2], idle)
