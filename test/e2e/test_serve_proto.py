"""tether serve: the HTTP layer's answers (issue #15) and the one bookkeeping path (#16). Each test
sends raw bytes and checks the status and framing the server chose."""
import socket
import time

import tt


def exchange(srv, raw, until_close=True):
    """Send raw on a new connection; the first response (status, headers, body) and, when the
    server closes after it, everything after it (b"" normally)."""
    s = srv.connect()
    s.settimeout(5)
    s.sendall(raw)
    st, h, body, rest = tt.read_response(s)
    tail = rest + tt.recv_until_close(s) if until_close else b""
    s.close()
    return st, h, body, tail


class HttpLayer(tt.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = tt.Tether("--echo", "--workers", "1").__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def error(self, raw, status):
        st, h, body, tail = exchange(self.srv, raw)
        self.assertEqual(st, status, body)
        self.assertEqual(h.get("connection"), ["close"])
        self.assertEqual(tail, b"")

    def test_higher_minor_version_is_served_as_1_1(self):
        s = self.srv.connect()
        s.sendall(b"GET / HTTP/1.7\r\nHost: x\r\n\r\n" * 2)
        rest = b""
        for _ in range(2):  # keep-alive by default, as for 1.1
            st, h, body, rest = tt.read_response(s, rest)
            self.assertEqual((st, body), (200, b"Hello, World!"))
            self.assertNotIn("connection", h)
        s.close()

    def test_http_2_is_still_505(self):
        self.error(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505)

    def test_options_asterisk_answered_by_the_server(self):
        st, h, body, tail = exchange(self.srv, b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(st, 200)
        self.assertIn("GET", h["allow"][0])
        self.assertIn("OPTIONS", h["allow"][0])
        self.assertEqual(body, b"")

    def test_connect_is_not_implemented(self):
        st, h, body, tail = exchange(self.srv, b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n")
        self.assertEqual(st, 501)
        self.assertEqual(h.get("connection"), ["close"])

    def test_request_line_of_8000_octets_is_accepted(self):
        target = b"/" + b"a" * (8000 - len(b"GET  HTTP/1.1\r\n") - 1)
        line = b"GET " + target + b" HTTP/1.1\r\n"
        self.assertEqual(len(line), 8000)
        st, h, body, _ = exchange(self.srv, line + b"Host: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(st, 200)

    def test_request_line_over_8k_is_414(self):
        self.error(b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)

    def test_empty_host_is_400(self):
        self.error(b"GET / HTTP/1.1\r\nHost: \r\n\r\n", 400)

    def test_method_longer_than_any_known_is_501(self):
        self.error(b"M" * 5000 + b" / HTTP/1.1\r\nHost: x\r\n\r\n", 501)

    def test_fragment_in_target_is_400(self):
        self.error(b"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", 400)

    def test_backslash_in_target_is_400(self):
        self.error(b"GET /a\\..\\b HTTP/1.1\r\nHost: x\r\n\r\n", 400)


class Limits(tt.TestCase):
    def test_head_limit_flags(self):
        with tt.Tether("--echo", "--workers", "1", "--max-request-line", "100",
                       "--max-header-size", "300") as srv:
            st, h, _, _ = exchange(srv, b"GET /" + b"a" * 120 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(st, 414)
            st, h, _, _ = exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"b" * 400 + b"\r\n\r\n")
            self.assertEqual(st, 431)
            st, h, _, _ = exchange(srv, b"GET /" + b"a" * 80 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertEqual(st, 200)

    def test_stalled_body_gets_408(self):
        with tt.Tether("--echo", "--workers", "1", "--body-timeout", "1") as srv:
            s = srv.connect()
            s.settimeout(10)
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
            got = tt.recv_until_close(s)
            s.close()
            self.assertTrue(got.startswith(b"HTTP/1.1 408 "), got)
            self.assertIn(b"Connection: close\r\n", got)


class KeepAliveHint(tt.TestCase):
    def hint(self, timeout):
        with tt.Tether("--echo", "--workers", "1", "--keepalive-timeout", timeout) as srv:
            s = srv.connect()
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            st, h, body, rest = tt.read_response(s)
            s.close()
            return ",".join(h.get("keep-alive", []))

    def test_timeout_is_a_whole_number_below_the_deadline_or_absent(self):
        self.assertNotIn("timeout", self.hint("0.5"))  # was timeout=0 ("forever" to some clients)
        self.assertNotIn("timeout", self.hint("1"))  # was timeout=1, the deadline itself
        self.assertIn("timeout=1,", self.hint("2") + ",")
        self.assertIn("timeout=2,", self.hint("2.5") + ",")


class Bookkeeping(tt.TestCase):
    def test_413_with_skipped_body_counts_against_keepalive_requests(self):
        # --keepalive-requests 2: the second response is the last, whatever it is
        with tt.Tether("--echo", "--workers", "1", "--max-body", "10", "--keepalive-requests", "2") as srv:
            s = srv.connect()
            s.settimeout(5)
            big = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n" + b"z" * 20
            s.sendall(big)
            st, h, body, rest = tt.read_response(s)
            self.assertEqual(st, 413)
            self.assertEqual(h.get("keep-alive"), ["timeout=74, max=1"])
            s.sendall(big)
            st, h, body, rest = tt.read_response(s, rest)
            self.assertEqual(st, 413)
            self.assertEqual(h.get("connection"), ["close"])
            self.assertNotIn("keep-alive", h)
            self.assertEqual(rest + tt.recv_until_close(s), b"")
            s.close()


if __name__ == "__main__":
    import unittest
    unittest.main()
