"""tether get's integrity against raw python servers (issues #15 and #16, client): its own
Connection: close, TE with CL, framing headers never sent twice, request lines that cannot be
split, a 204 with framing fields, default User-Agent/Accept, -L redirects, -v trailers, a
refused connect, --unix-socket, streamed bodies, --max-filesize and --speed-limit."""
import os
import select
import socket
import subprocess
import tempfile
import threading
import time

import tt
from test_get_peers import RawServer, get

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def heads_of(s, c, respond):
    """Serve requests on c until the client closes: record each head, answer respond(head)."""
    buf = b""
    while True:
        head, buf = s.read_request(c, buf)
        if head is None:
            return
        s.heads.append(head)
        c.sendall(respond(head))


class Recorder(RawServer):
    def __init__(self, respond):
        self.heads = []
        super().__init__(lambda s, c, idx: heads_of(s, c, respond))


class GetIntegrityTest(tt.TestCase):
    def test_own_connection_close_is_not_reused_and_written_once(self):
        with Recorder(lambda h: OK) as srv:
            p, st = get("--stats", "-H", "Connection: close", srv.url(), srv.url())
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"okok")
            self.assertEqual(st["connections_opened"], 2)
            self.assertEqual(st["connections_reused"], 0)
            for h in srv.heads:
                self.assertEqual(h.lower().count(b"\r\nconnection:"), 1, h)
                self.assertIn(b"\r\nConnection: close", h)

    def test_te_with_content_length_is_framed_by_te_and_not_reused(self):
        resp = (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n0\r\n\r\n")
        with Recorder(lambda h: resp) as srv:
            p, st = get("--stats", srv.url(), srv.url())
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"hellohello")
            self.assertEqual(st["connections_opened"], 2)
            self.assertEqual(st["evictions"]["not_reusable"], 2)

    def test_204_with_framing_fields_is_not_reused(self):
        with Recorder(lambda h: b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n") as srv:
            p, st = get("--stats", srv.url(), srv.url())
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(st["connections_opened"], 2)
            self.assertEqual(st["connections_reused"], 0)

    def test_framing_fields_from_h_are_replaced_never_sent_twice(self):
        with Recorder(lambda h: OK) as srv:
            p, st = get("-d", "abc", "-H", "Content-Length: 10", "-H", "Transfer-Encoding: chunked",
                        "-H", "Connection: keep-alive", srv.url(), timeout=20)
            self.assertEqual(p.returncode, 0, p.stderr)
            h = srv.heads[0].lower()
            self.assertEqual(h.count(b"\r\ncontent-length:"), 1, h)
            self.assertIn(b"\r\ncontent-length: 3", h)
            self.assertNotIn(b"transfer-encoding", h)
            self.assertNotIn(b"connection:", h)

    def test_crlf_in_a_header_is_refused_exit_2_nothing_sent(self):
        with Recorder(lambda h: OK) as srv:
            for bad in ("X: a\r\nInjected: 1", "X: a\nB: c", "Bad Name: v"):
                p, _ = get("-H", bad, srv.url())
                self.assertEqual(p.returncode, 2, (bad, p.stderr))
            self.assertEqual(srv.accepted, 0)

    def test_url_with_space_or_control_bytes_is_exit_3_nothing_sent(self):
        with Recorder(lambda h: OK) as srv:
            for path in ("/a b", "/a\r\nX-Injected: 1", "/a\x01", "/a\tb"):
                p, _ = get(srv.url(path))
                self.assertEqual(p.returncode, 3, (path, p.stderr))
            self.assertEqual(srv.accepted, 0)

    def test_method_must_be_a_token_exit_2(self):
        with Recorder(lambda h: OK) as srv:
            for m in ("G T", "GET / HTTP/1.1\r\nX:", "GET\r\n"):
                p, _ = get("-X", m, srv.url())
                self.assertEqual(p.returncode, 2, (m, p.stderr))
            self.assertEqual(srv.accepted, 0)

    def test_default_user_agent_and_accept_overridable(self):
        with Recorder(lambda h: OK) as srv:
            p, _ = get(srv.url())
            self.assertEqual(p.returncode, 0, p.stderr)
            p, _ = get("-H", "User-Agent: me/1", "-H", "Accept:", srv.url())
            self.assertEqual(p.returncode, 0, p.stderr)
            first, second = srv.heads[0], srv.heads[1]
            self.assertIn(b"\r\nUser-Agent: tether/", first)
            self.assertIn(b"\r\nAccept: */*", first)
            self.assertIn(b"\r\nUser-Agent: me/1", second)
            self.assertNotIn(b"tether/", second)
            self.assertNotIn(b"accept:", second.lower())

    def test_verbose_prints_response_trailers(self):
        resp = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
                b"2\r\nok\r\n0\r\nX-Sum: 12\r\n\r\n")
        with Recorder(lambda h: resp) as srv:
            p, _ = get("-v", srv.url())
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(b"< X-Sum: 12", p.stderr)

    def test_refused_connect_is_not_retried_on_the_same_address(self):
        port = tt.free_port()
        p, st = get("--stats", "http://127.0.0.1:%d/" % port)
        self.assertEqual(p.returncode, 7, p.stderr)
        self.assertEqual(st["retries"], 0)


def redirector(head):
    """.../rNNN answers NNN with Location: /end; .../relNNN with the relative next?q=1;
    /loop redirects to itself; anything else echoes its method, path and whether it had a
    body."""
    line = head.split(b"\r\n")[0].decode()
    method, path, _ = line.split(" ")
    last = path.split("?")[0].rsplit("/", 1)[1]
    loc = None
    if last.startswith("rel"):
        code, loc = last[3:], "next?q=1"
    elif last.startswith("r") and last[1:].isdigit():
        code, loc = last[1:], "/end"
    elif path == "/loop":
        code, loc = "302", "/loop"
    if loc:
        body = b"" if method == "HEAD" else b"move"
        return ("HTTP/1.1 %s Moved\r\nLocation: %s\r\nContent-Length: 4\r\n\r\n"
                % (code, loc)).encode() + body
    body = ("%s %s %s" % (method, path, "body" if b"content-length: 1" in head.lower() else "-"))
    return ("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)).encode()


class GetRedirectTest(tt.TestCase):
    def test_follows_with_curl_method_rules_on_one_connection(self):
        cases = [
            ("301", [], b"GET /end -"),
            ("302", ["-d", "x"], b"GET /end -"),
            ("303", ["-X", "PUT", "-d", "x"], b"GET /end -"),
            ("307", ["-d", "x"], b"POST /end body"),
            ("308", ["-d", "x"], b"POST /end body"),
            ("303", ["-X", "HEAD"], b""),
        ]
        for code, args, want in cases:
            with Recorder(redirector) as srv:
                p, st = get("--stats", "-L", *args, srv.url("/a/r%s" % code))
                self.assertEqual(p.returncode, 0, (code, p.stderr))
                self.assertEqual(p.stdout, want, code)
                self.assertEqual(st["connections_opened"], 1, code)
                self.assertEqual(st["connections_reused"], 1, code)

    def test_relative_location_and_no_follow_without_L(self):
        with Recorder(redirector) as srv:
            p, _ = get("-L", srv.url("/a/b/rel301?x=1"))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"GET /a/b/next?q=1 -")
            p, _ = get(srv.url("/a/r302"))
            self.assertEqual(p.stdout, b"move")

    def test_max_redirs_exit_47(self):
        with Recorder(redirector) as srv:
            p, _ = get("-L", "--max-redirs", "3", srv.url("/loop"))
            self.assertEqual(p.returncode, 47, p.stderr)
            self.assertEqual(len(srv.heads), 4)


class GetBodyTest(tt.TestCase):
    def test_body_streams_to_stdout_as_it_arrives(self):
        release = threading.Event()

        def h(s, c, idx):
            s.read_request(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nfirst")
            release.wait(20)
            c.sendall(b"end")
            s.read_request(c)

        with RawServer(h) as srv:
            p = subprocess.Popen([tt.TETHER, "get", srv.url()], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            try:
                r, _, _ = select.select([p.stdout], [], [], 15)
                got = os.read(p.stdout.fileno(), 100) if r else b""
                self.assertEqual(got, b"first")  # before the body is complete
            finally:
                release.set()
                out, _ = p.communicate(timeout=30)
            self.assertEqual(got + out, b"firstend")
            self.assertEqual(p.returncode, 0)

    def test_max_filesize_exit_63_by_length_and_while_streaming(self):
        def h(s, c, idx):
            head, _ = s.read_request(c)
            if b"/cl" in head:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            else:
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for _ in range(100):
                    c.sendall(b"400\r\n" + b"x" * 1024 + b"\r\n")
                c.sendall(b"0\r\n\r\n")
            c.recv(1)

        with RawServer(h) as srv:
            p, _ = get("--max-filesize", "10k", srv.url("/cl"))
            self.assertEqual(p.returncode, 63, p.stderr)
            self.assertEqual(p.stdout, b"")
            p, st = get("--stats", "--max-filesize", "10k", srv.url("/chunked"))
            self.assertEqual(p.returncode, 63, p.stderr)
            self.assertLessEqual(len(p.stdout), 10 * 1024)
            self.assertEqual(st["evictions"]["error"], 1)

    def test_speed_limit_exit_28(self):
        def h(s, c, idx):
            s.read_request(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(100):  # 1 byte every 0.1 s: 10 B/s, bounded to 10 s
                try:
                    c.sendall(b"x")
                except OSError:
                    return
                time.sleep(0.1)

        with RawServer(h) as srv:
            p, _ = get("--speed-limit", "1000", "--speed-time", "1", srv.url())
            self.assertEqual(p.returncode, 28, p.stderr)
            self.assertIn(b"too slow", p.stderr)


class GetUnixSocketTest(tt.TestCase):
    def test_unix_socket(self):
        d = tempfile.mkdtemp()
        path = os.path.join(d, "s")
        ls = socket.socket(socket.AF_UNIX)
        ls.bind(path)
        ls.listen(4)
        heads = []

        def serve():
            c, _ = ls.accept()
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    b = c.recv(4096)
                    if not b:
                        c.close()
                        return
                    buf += b
                head, _, buf = buf.partition(b"\r\n\r\n")
                heads.append(head)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nunix")

        th = threading.Thread(target=serve, daemon=True)
        th.start()
        try:
            p, st = get("--stats", "--unix-socket", path, "http://example.test/a",
                        "http://example.test/b")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"unixunix")
            self.assertEqual(st["connections_opened"], 1)
            self.assertIn(b"\r\nHost: example.test", heads[0])
        finally:
            ls.close()
            th.join(5)
            os.unlink(path)
            os.rmdir(d)


if __name__ == "__main__":
    import unittest
    unittest.main()
