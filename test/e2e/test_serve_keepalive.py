"""tether serve: keep-alive, pipelining, HTTP/1.0, request bodies — against real peers."""
import http.client
import re
import shutil
import socket
import subprocess
import time

import tt


def req(path="/", extra="", method="GET", body=b"", version="1.1"):
    head = "%s %s HTTP/%s\r\nHost: x\r\n%s" % (method, path, version, extra)
    if body:
        head += "Content-Length: %d\r\n" % len(body)
    return head.encode() + b"\r\n" + body


class KeepAlive(tt.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = tt.Tether("--echo", "--workers", "1", "--close-wait", "60").__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def test_curl_reuses_one_connection(self):
        p = subprocess.run(["curl", "-sv", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                            self.srv.url("/a"), self.srv.url("/b"), self.srv.url("/c")],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.count("Re-using existing connection"), 2, p.stderr)
        self.assertIn("Keep-Alive: timeout=74", p.stderr)

    def test_keepalive_header_counts_down(self):
        s = self.srv.connect()
        maxes = []
        buf = b""
        for _ in range(3):
            s.sendall(req())
            st, h, body, buf = tt.read_response(s, buf)
            self.assertEqual((st, body), (200, b"Hello, World!"))
            m = re.match(r"timeout=(\d+), max=(\d+)", h["keep-alive"][0])
            self.assertIsNotNone(m, h)
            self.assertEqual(int(m.group(1)), 74)  # a little below the real 75 s
            maxes.append(int(m.group(2)))
        self.assertEqual(maxes[0] - 1, maxes[1])
        self.assertEqual(maxes[1] - 1, maxes[2])
        self.assertTrue(900 <= maxes[0] + 1 <= 1100, maxes)  # 1000 +-10% jitter
        s.close()

    def test_100_pipelined_requests_in_one_send(self):
        s = self.srv.connect()
        s.sendall(b"".join(req("/p%d" % i, method="POST", body=b"body-%03d" % i) for i in range(100)))
        buf = b""
        for i in range(100):
            st, h, body, buf = tt.read_response(s, buf)
            self.assertEqual(st, 200)
            self.assertEqual(body, b"body-%03d" % i)  # in order
        self.assertEqual(buf, b"")
        s.sendall(req())
        st, _, body, _ = tt.read_response(s)
        self.assertEqual(body, b"Hello, World!")
        s.close()

    def test_http10_without_keepalive_closes(self):
        # HTTP/1.0 clients (ab) read until the server closes: the server must close first,
        # not wait for the client (the class server waits 60 s for HTTP/1.1 clients).
        s = self.srv.connect()
        s.sendall(req(version="1.0"))
        st, h, body, rest = tt.read_response(s)
        self.assertEqual(st, 200)
        self.assertEqual(h.get("connection"), ["close"])
        self.assertNotIn("keep-alive", h)
        self.assertEqual(tt.recv_until_close(s), b"")
        s.close()

    def test_http10_with_keepalive_persists(self):
        s = self.srv.connect()
        buf = b""
        for _ in range(2):
            s.sendall(req(version="1.0", extra="Connection: keep-alive\r\n"))
            st, h, body, buf = tt.read_response(s, buf)
            self.assertEqual(st, 200)
            self.assertEqual(h.get("connection"), ["keep-alive"])
            self.assertIn("keep-alive", h)
        s.close()

    def test_curl_http10(self):
        p = subprocess.run(["curl", "-sv", "--http1.0", self.srv.url("/")], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(p.stdout, "Hello, World!")
        self.assertIn("Connection: close", p.stderr)

    def test_client_connection_close(self):
        s = self.srv.connect()
        s.sendall(req(extra="Connection: close\r\n"))
        st, h, body, rest = tt.read_response(s)
        self.assertEqual(h.get("connection"), ["close"])
        # HTTP/1.1: the server leaves the close to the client (TIME_WAIT lands there) ...
        s.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            s.recv(100)
        # ... and pipelined bytes sent after the close request are drained, not answered
        s.sendall(req("/ignored"))
        with self.assertRaises(socket.timeout):
            s.recv(100)
        s.close()

    def test_expect_100_continue(self):
        s = self.srv.connect()
        s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        st, h, body, buf = tt.read_response(s)
        self.assertEqual(st, 100)
        s.sendall(b"hello")
        st, h, body, buf = tt.read_response(s, buf)
        self.assertEqual((st, body), (200, b"hello"))
        s.close()

    def test_chunked_body_with_trailer(self):
        s = self.srv.connect()
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n" + req())
        st, h, body, buf = tt.read_response(s)
        self.assertEqual((st, body), (200, b"hello world"))
        st, h, body, buf = tt.read_response(s, buf)
        self.assertEqual((st, body), (200, b"Hello, World!"))
        s.close()

    def test_http_client_reuses(self):
        c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=5)
        socks = set()
        for i in range(5):
            c.request("POST", "/x", body=b"n%d" % i)
            r = c.getresponse()
            self.assertEqual(r.read(), b"n%d" % i)
            socks.add(id(c.sock))
        self.assertEqual(len(socks), 1)
        c.close()

    def test_half_close_after_request_gets_response(self):
        s = self.srv.connect()
        s.sendall(req("/a") + req("/b"))
        s.shutdown(socket.SHUT_WR)
        data = tt.recv_until_close(s)
        self.assertEqual(data.count(b"HTTP/1.1 200 OK"), 2, data)
        self.assertTrue(data.endswith(b"Hello, World!"))
        s.close()

    def test_ab_keepalive(self):
        p = subprocess.run(["ab", "-k", "-n", "2000", "-c", "10", self.srv.url("/")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"Complete requests:\s+2000")
        self.assertRegex(p.stdout, r"Failed requests:\s+0")
        self.assertRegex(p.stdout, r"Keep-Alive requests:\s+2000")

    def test_ab_without_keepalive(self):
        # ab speaks HTTP/1.0 and waits for the server to close: with the class server's 60 s
        # close-wait this only finishes if HTTP/1.0 exchanges are closed by the server.
        p = subprocess.run(["ab", "-n", "200", "-c", "10", self.srv.url("/")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"Complete requests:\s+200")
        self.assertRegex(p.stdout, r"Failed requests:\s+0")

    def test_wrk_short(self):
        p = subprocess.run(["wrk", "-t1", "-c20", "-d1", self.srv.url("/")], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("Socket errors", p.stdout)
        self.assertNotIn("Non-2xx", p.stdout)


class Limits(tt.TestCase):
    def test_max_requests_then_close(self):
        with tt.Tether("--echo", "--workers", "1", "--keepalive-requests", "3") as srv:
            s = srv.connect()
            buf = b""
            seen = []
            for _ in range(3):
                s.sendall(req())
                st, h, body, buf = tt.read_response(s, buf)
                seen.append((h.get("connection"), h.get("keep-alive")))
            self.assertEqual(seen[0], (None, ["timeout=74, max=2"]))
            self.assertEqual(seen[1], (None, ["timeout=74, max=1"]))
            self.assertEqual(seen[2], (["close"], None))
            self.assertEqual(tt.recv_until_close(s), b"")
            s.close()

    def test_keepalive_requests_1_disables(self):
        with tt.Tether("--echo", "--workers", "1", "--keepalive-requests", "1") as srv:
            s = srv.connect()
            s.sendall(req())
            st, h, body, buf = tt.read_response(s)
            self.assertEqual(h.get("connection"), ["close"])
            s.close()

    def test_idle_timeout_closes(self):
        with tt.Tether("--echo", "--workers", "1", "--keepalive-timeout", "1") as srv:
            s = srv.connect()
            s.settimeout(10)
            s.sendall(req())
            st, h, body, buf = tt.read_response(s)
            # a 1 s deadline has no whole number strictly below it: no timeout= hint, max only
            self.assertEqual(h["keep-alive"], ["max=%s" % h["keep-alive"][0].split("=")[-1]])
            t0 = time.time()
            self.assertEqual(s.recv(100), b"")  # the server closed the idle connection
            self.assertLess(time.time() - t0, 8)
            s.close()

    def test_unread_body_discarded_then_reuse(self):
        with tt.Tether("--echo", "--workers", "1", "--max-body", "16") as srv:
            s = srv.connect()
            s.sendall(req("/big", method="POST", body=b"x" * 1000))
            st, h, body, buf = tt.read_response(s)
            self.assertEqual(st, 413)
            self.assertNotIn("connection", h)  # small enough to skip: the connection stays
            s.sendall(req("/again", method="POST", body=b"small"))
            st, h, body, buf = tt.read_response(s, buf)
            self.assertEqual((st, body), (200, b"small"))
            s.close()


if __name__ == "__main__":
    import unittest
    unittest.main()
