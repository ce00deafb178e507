"""tether get against python peers and tether serve: HTTP/1.0 (no reuse), chunked with trailers,
close-delimited, a server closing mid-body, stray bytes on an idle connection, the retry
contract (idempotent replayed once on a fresh connection, POST never replayed), exit codes."""
import http.server
import json
import os
import socket
import socketserver
import subprocess
import tempfile
import threading

import tt


def get(*args, timeout=60, stdin=None):
    p = subprocess.run([tt.TETHER, "get"] + list(args), capture_output=True, timeout=timeout, input=stdin)
    stats = None
    for line in p.stderr.decode(errors="replace").splitlines():
        if line.startswith("{"):
            stats = json.loads(line)
    return p, stats


class RawServer(tt.ThreadedListener):
    """A loopback server running handler(conn, index) per accepted connection in a thread."""

    def __init__(self, handler):
        self.handler = handler
        self.accepted = 0
        self.requests = []
        super().__init__()

    def accept_loop(self):
        while not self.stopping:
            c, _ = self.sock.accept()
            if self.stopping:
                c.close()
                break
            self.accepted += 1
            threading.Thread(target=self.serve, args=(c, self.accepted), daemon=True).start()

    def serve(self, c, idx):
        try:
            self.handler(self, c, idx)
        except OSError:
            pass
        finally:
            c.close()

    def read_request(self, c, buf=b""):
        while b"\r\n\r\n" not in buf:
            b = c.recv(65536)
            if not b:
                return None, buf
            buf += b
        head, _, rest = buf.partition(b"\r\n\r\n")
        n = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                n = int(v)
        while len(rest) < n:
            rest += c.recv(65536)
        self.requests.append(head.split(b"\r\n")[0].decode())
        return head, rest[n:]

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)


class GetPeersTest(tt.TestCase):
    def test_http10_server_no_reuse_no_errors(self):
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "f.txt"), "w") as f:
            f.write("ten\n")
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *a):
                pass

        handler = lambda *a, **k: Quiet(*a, directory=d, **k)
        srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        srv.daemon_threads = True
        port = srv.server_address[1]
        th = threading.Thread(target=srv.serve_forever, daemon=True)
        th.start()
        try:
            url = "http://127.0.0.1:%d/f.txt" % port
            p, st = get("--stats", "-v", url, url, url, url)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"ten\n" * 4)
            self.assertEqual(st["errors"], 0)
            self.assertEqual(st["connections_opened"], 4)
            self.assertEqual(st["connections_reused"], 0)
            self.assertEqual(st["evictions"]["not_reusable"], 4)
        finally:
            srv.shutdown()
            srv.server_close()

    def test_chunked_with_trailers_reused(self):
        def h(s, c, idx):
            buf = b""
            while True:
                head, buf = s.read_request(c, buf)
                if head is None:
                    return
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
                          b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\n")

        with RawServer(h) as srv:
            p, st = get("--stats", "-v", srv.url(), srv.url())
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"hello, world" * 2)
            self.assertEqual(st["connections_opened"], 1)
            self.assertEqual(srv.accepted, 1)
            self.assertIn(b"+ trailers", p.stderr)

    def test_close_delimited_body(self):
        def h(s, c, idx):
            head, _ = s.read_request(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close")
            c.shutdown(socket.SHUT_WR)

        with RawServer(h) as srv:
            p, st = get("--stats", srv.url(), srv.url())
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"until close" * 2)
            self.assertEqual(st["connections_opened"], 2)
            self.assertEqual(st["connections_reused"], 0)
            self.assertEqual(st["errors"], 0)

    def test_server_closing_mid_body_is_an_error_and_not_reused(self):
        def h(s, c, idx):
            head, _ = s.read_request(c)
            if b"/short" in head:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
                return  # close mid-body
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            s.read_request(c)

        with RawServer(h) as srv:
            p, st = get("--stats", "-v", srv.url("/short"), srv.url("/fine"))
            self.assertEqual(p.returncode, 18, p.stderr)
            self.assertEqual(p.stdout, b"only partok")  # streamed as it arrived, as curl does
            self.assertEqual(st["errors"], 1)
            self.assertEqual(st["connections_opened"], 2)
            self.assertEqual(st["connections_reused"], 0)
            self.assertIn(b"mid-body", p.stderr)

    def test_unsolicited_408_on_idle_connection_evicts_it(self):
        def h(s, c, idx):
            head, _ = s.read_request(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            if idx == 1:
                c.sendall(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                c.recv(1)  # hold the socket open: only the stray bytes signal the problem
                return
            while s.read_request(c)[0] is not None:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        with RawServer(h) as srv:
            p, st = get("--stats", "-v", "--interval", "0.3", srv.url(), srv.url())
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"okok")
            self.assertEqual(st["retries"], 0)
            self.assertEqual(st["connections_opened"], 2)
            self.assertEqual(st["evictions"]["peer_closed"], 1)

    def _dropper(self):
        """Answers the first request, then closes the connection on reading the second one
        without answering (the request may have been processed)."""
        def h(s, c, idx):
            head, buf = s.read_request(c)
            if idx > 1:
                while head is not None:
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo")
                    head, buf = s.read_request(c, buf)
                return
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none")
            head, buf = s.read_request(c, buf)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return h

    def test_idempotent_request_replayed_once_on_fresh_connection(self):
        with RawServer(self._dropper()) as srv:
            p, st = get("--stats", "-v", srv.url("/a"), srv.url("/b"))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"onetwo")
            self.assertEqual(st["retries_by"]["maybe_processed"], 1)
            self.assertEqual(st["connections_opened"], 2)
            self.assertEqual(srv.requests.count("GET /b HTTP/1.1"), 2)

    def test_post_maybe_processed_is_not_replayed(self):
        with RawServer(self._dropper()) as srv:
            p, st = get("--stats", "-v", "-d", "x=1", srv.url("/a"), srv.url("/b"))
            self.assertNotEqual(p.returncode, 0)
            self.assertEqual(p.stdout, b"one")
            self.assertEqual(st["retries"], 0)
            self.assertEqual(st["errors"], 1)
            self.assertIn(b"maybe processed", p.stderr)
            self.assertEqual(srv.requests.count("POST /b HTTP/1.1"), 1)

    def test_post_with_idempotency_key_is_replayed(self):
        with RawServer(self._dropper()) as srv:
            p, st = get("--stats", "-d", "x=1", "-H", "Idempotency-Key: 42", srv.url("/a"), srv.url("/b"))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"onetwo")
            self.assertEqual(st["retries_by"]["maybe_processed"], 1)

    def test_expect_100_continue_waits_for_the_server(self):
        def h(s, c, idx):
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(65536)
            head, _, rest = buf.partition(b"\r\n\r\n")
            s.requests.append(head.split(b"\r\n")[0].decode())
            c.settimeout(0.3)
            try:
                early = rest + c.recv(65536)
            except socket.timeout:
                early = rest
            s.early = early
            c.settimeout(5)
            c.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n")
            body = early
            while len(body) < 5:
                body += c.recv(65536)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

        with RawServer(h) as srv:
            srv.early = None
            p, st = get("-v", "-d", "hello", "-H", "Expect: 100-continue", srv.url())
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(srv.early, b"")  # the body waited for 100 Continue
            self.assertEqual(p.stdout, b"hello")

    def test_exit_codes(self):
        port = tt.free_port()
        p, _ = get("http://127.0.0.1:%d/" % port)
        self.assertEqual(p.returncode, 7)
        p, _ = get("ftp://127.0.0.1/")
        self.assertEqual(p.returncode, 1)  # https is supported now (test_get_tls.py)
        p, _ = get("http://127.0.0.1:99999/")
        self.assertEqual(p.returncode, 3)
        p, _ = get("--bogus")
        self.assertEqual(p.returncode, 2)
        # a header line or method the serializer refuses: nothing is sent, a usage error
        p, _ = get("-H", "NoColon", "http://127.0.0.1:%d/" % port)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"bad header", p.stderr)
        p, _ = get("-X", "G T", "http://127.0.0.1:%d/" % port)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"bad method", p.stderr)
        out = subprocess.run([tt.TETHER, "get", "--help"], capture_output=True, text=True).stdout
        self.assertIn("exit codes", out)

    def test_against_tether_serve_echo(self):
        with tt.Tether("--echo") as srv:
            p, st = get("--stats", *[srv.url("/")] * 10)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(st["connections_opened"], 1)
            self.assertEqual(st["connections_reused"], 9)
            p, st = get("--stats", "-d", "echo me", srv.url("/e"), srv.url("/e"))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"echo me" * 2)
            self.assertEqual(st["connections_opened"], 1)
            p, st = get("--stats", "--parallel", "50", "--max-connections", "8", *[srv.url("/")] * 1000)
            self.assertEqual(p.returncode, 0, p.stderr[-2000:])
            self.assertEqual(st["errors"], 0)
            self.assertLessEqual(st["connections_opened"], 8)


if __name__ == "__main__":
    import unittest
    unittest.main()
