"""End-to-end tests of `tether bench`: bounded runs (-n) against `tether serve --echo` and against
tiny raw python servers whose framing we control (Content-Length, chunked, close-delimited, a
server that lies about Content-Length). Every run is short and bounded in count and time."""
import json
import socket
import subprocess
import threading

import tt

BENCH_TIMEOUT = 60


class RawServer(tt.ThreadedListener):
    """A tiny threaded HTTP/1.1 responder on a free loopback port. Counts connections and requests
    and remembers the most requests it found in one recv (pipelining). Modes:
      ok       13-byte body, Content-Length, keep-alive
      varlen   the first response has 13 bytes, later ones 12 (honest framing, different length)
      lie      says Content-Length: 20, sends 13 bytes and closes
      chunked  13 bytes in two chunks
      close    close-delimited: no Content-Length, body then close
      notfound 404 with a 9-byte body
    On `Connection: close` it answers with `Connection: close` and then waits for the client to
    close first (so TIME_WAIT lands on the client), or with server_first closes at once (RFC 9112
    §9.6), its FIN in the same segment as the response (TCP_CORK) so that the client sees both
    together."""

    def __init__(self, mode="ok", server_first=False):
        self.mode = mode
        self.server_first = server_first
        self.accepted = 0
        self.requests = 0
        self.max_batch = 0
        self.lock = threading.Lock()
        super().__init__(backlog=1024)

    def url(self, path="/plaintext"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def handle(self, c):
        with self.lock:
            self.accepted += 1
        threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _response(self, n, close):
        conn = b"Connection: close\r\n" if close else b""
        if self.mode == "varlen":
            body = b"Hello, World!" if n == 1 else b"Hello World!"
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), conn, body)
        if self.mode == "lie":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nHello, World!"
        if self.mode == "chunked":
            return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + conn +
                    b"\r\n5\r\nHello\r\n8;ext=1\r\n, World!\r\n0\r\n\r\n")
        if self.mode == "close":
            return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nHello, World!"
        if self.mode == "notfound":
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n%s\r\nnot found" % conn
        return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n%s\r\nHello, World!" % conn

    def _serve(self, c):
        buf = b""
        try:
            c.settimeout(30)
            while True:
                data = c.recv(65536)
                if not data:
                    return
                buf += data
                out = b""
                batch = 0
                closing = False
                while b"\r\n\r\n" in buf:
                    head, _, rest = buf.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        k, _, v = line.partition(b":")
                        if k.strip().lower() == b"content-length":
                            length = int(v.strip())
                        if k.strip().lower() == b"connection" and b"close" in v.lower():
                            closing = True
                    if len(rest) < length:
                        break
                    buf = rest[length:]
                    batch += 1
                    with self.lock:
                        self.requests += 1
                        n = self.requests
                    out += self._response(n, closing)
                    if closing or self.mode in ("lie", "close"):
                        break
                with self.lock:
                    self.max_batch = max(self.max_batch, batch)
                if closing and self.server_first:
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
                    c.sendall(out)
                    c.shutdown(socket.SHUT_WR)  # the FIN rides on the corked response
                    while c.recv(65536):
                        pass
                    return
                if out:
                    c.sendall(out)
                if self.mode in ("lie", "close") and batch:
                    return  # the body ends (or is cut short) with our close
                if closing:
                    # let the client close first; read until its FIN
                    while c.recv(65536):
                        pass
                    return
        except OSError:
            pass
        finally:
            c.close()


def bench(*args, check_json=True, expect_rc=0):
    """Run tether bench with args; returns (rc, stdout, stderr), the JSON parsed if asked."""
    p = subprocess.run([tt.TETHER, "bench"] + list(args), capture_output=True, text=True,
                       timeout=BENCH_TIMEOUT)
    if expect_rc is not None and p.returncode != expect_rc:
        raise AssertionError("tether bench %s: exit %d (wanted %d)\nstdout: %s\nstderr: %s" %
                             (" ".join(args), p.returncode, expect_rc, p.stdout, p.stderr))
    if check_json:
        return p.returncode, json.loads(p.stdout), p.stderr
    return p.returncode, p.stdout, p.stderr


class BenchJSON(tt.TestCase):
    def check_shape(self, d):
        for k in ("requests", "duration_s", "rps", "latency_us", "connections_opened", "errors",
                  "errors_by_kind", "non2xx"):
            self.assertIn(k, d)
        lat = d["latency_us"]
        for k in ("p50", "p90", "p99", "p999", "max"):
            self.assertIn(k, lat)
        self.assertLessEqual(lat["p50"], lat["p90"])
        self.assertLessEqual(lat["p90"], lat["p99"])
        self.assertLessEqual(lat["p99"], lat["p999"])
        self.assertLessEqual(lat["p999"], lat["max"])
        for k in ("connect", "read", "write", "timeout", "status"):
            self.assertIn(k, d["errors_by_kind"])
        self.assertEqual(d["errors"], sum(d["errors_by_kind"].values()))
        self.assertGreater(d["duration_s"], 0)
        self.assertAlmostEqual(d["rps"], d["requests"] / d["duration_s"], delta=d["rps"] * 0.01 + 1)

    def test_n_requests_against_tether_serve(self):
        with tt.Tether("--echo", "--workers", "1") as srv:
            _, d, _ = bench("-n", "500", "-c", "4", "-t", "2", "--json", "--verify", srv.url("/plaintext"))
        self.check_shape(d)
        self.assertEqual(d["requests"], 500)
        self.assertEqual(d["errors"], 0)
        self.assertEqual(d["non2xx"], 0)
        self.assertEqual(d["bytes"] > 500 * 13, True)
        self.assertGreaterEqual(d["connections_opened"], 4)

    def test_n_requests_keepalive_reuses_connections(self):
        with RawServer() as srv:
            _, d, _ = bench("-n", "300", "-c", "3", "-t", "1", "--json", srv.url())
            accepted, served = srv.accepted, srv.requests
        self.check_shape(d)
        self.assertEqual(d["requests"], 300)
        self.assertEqual(d["errors"], 0)
        self.assertEqual(d["connections_opened"], 3)
        self.assertEqual(accepted, 3)
        self.assertEqual(served, 300)

    def test_no_keepalive_opens_n_connections_and_client_holds_time_wait(self):
        with RawServer() as srv:
            _, d, _ = bench("-n", "60", "-c", "2", "-t", "1", "--no-keepalive", "--json", srv.url())
            accepted = srv.accepted
            states = tt.wait_for(lambda: (lambda s: s if s["client"].get("TIME_WAIT") else None)(
                tt.tcp_states(srv.port)), timeout=5)
            server_tw = tt.tcp_states(srv.port)["server"].get("TIME_WAIT", 0)
        self.assertEqual(d["requests"], 60)
        self.assertEqual(d["errors"], 0)
        self.assertEqual(d["connections_opened"], 60)
        self.assertEqual(accepted, 60)
        self.assertFalse(d["keepalive"])
        # the client closed first: TIME_WAIT on the client side, none on the server side
        self.assertTrue(states and states["client"].get("TIME_WAIT", 0) > 0, states)
        self.assertEqual(server_tw, 0)

    def test_pipeline_sends_n_requests_in_one_write(self):
        with RawServer() as srv:
            _, d, _ = bench("-n", "320", "-c", "2", "-t", "1", "--pipeline", "16", "--json", srv.url())
            batch, accepted = srv.max_batch, srv.accepted
        self.assertEqual(d["requests"], 320)
        self.assertEqual(d["errors"], 0)
        self.assertEqual(d["pipeline"], 16)
        self.assertEqual(accepted, 2)
        self.assertGreater(batch, 1)  # several requests arrived in one recv

    def test_pipeline_against_tether_serve(self):
        with tt.Tether("--echo", "--workers", "1") as srv:
            _, d, _ = bench("-n", "1600", "-c", "4", "-t", "1", "--pipeline", "16", "--json",
                            "--verify", srv.url("/plaintext"))
        self.assertEqual(d["requests"], 1600)
        self.assertEqual(d["errors"], 0)

    def test_pipeline_resends_what_a_closing_response_left_unanswered(self):
        # every 5th response or so says Connection: close while 8 requests are in flight: the
        # connection ends at once and the unanswered ones go out again on a new connection
        with tt.Tether("--echo", "--workers", "1", "--keepalive-requests", "5") as srv:
            _, d, _ = bench("-n", "800", "-c", "4", "-t", "1", "--pipeline", "8", "--timeout", "5s",
                            "--json", "--verify", srv.url("/plaintext"))
        self.check_shape(d)
        self.assertEqual(d["errors"], 0, d["errors_by_kind"])
        self.assertEqual(d["requests"], 800)  # every request answered, none twice
        self.assertEqual(d["status"]["2xx"], 800)
        self.assertGreater(d["resent"], 0)
        self.assertGreater(d["connections_opened"], 4)
        # at most 8 in flight per connection and at least 4 answered on each (5 +- 10%)
        self.assertLessEqual(d["connections_opened"], 800 // 4 + 4)

    def test_resent_shown_in_text(self):
        with tt.Tether("--echo", "--workers", "1", "--keepalive-requests", "3") as srv:
            _, out, _ = bench("-n", "120", "-c", "2", "-t", "1", "--pipeline", "6", srv.url(),
                              check_json=False)
        self.assertIn("requests      120 ", out)
        self.assertRegex(out, r"\n  resent        [1-9]\d* ")
        self.assertRegex(out, r"\n  errors        0\n")

    def test_chunked_and_close_delimited_framing(self):
        for mode in ("chunked", "close"):
            with self.subTest(mode=mode), RawServer(mode) as srv:
                _, d, _ = bench("-n", "40", "-c", "2", "-t", "1", "--json", "--verify-length", "13",
                                srv.url())
                self.assertEqual(d["requests"], 40)
                self.assertEqual(d["errors"], 0, d["errors_by_kind"])

    def test_verify_catches_a_wrong_length(self):
        with RawServer("varlen") as srv:
            rc, d, _ = bench("-n", "20", "-c", "1", "-t", "1", "--json", "--verify", srv.url(),
                             expect_rc=1)
        self.assertEqual(d["requests"], 20)
        self.assertEqual(d["errors_by_kind"]["verify"], 19)  # the first response sets the length
        with RawServer("varlen") as srv:
            rc, d, _ = bench("-n", "20", "-c", "1", "-t", "1", "--json", srv.url())
        self.assertEqual(d["errors"], 0)  # without --verify the lengths are not compared

    def test_verify_catches_a_lying_content_length(self):
        with RawServer("lie") as srv:
            rc, d, _ = bench("-n", "10", "-c", "1", "-t", "1", "--json", "--verify-length", "13",
                             "--timeout", "2s", srv.url(), expect_rc=1)
        self.assertEqual(d["requests"], 0)
        self.assertEqual(d["errors"], 10)
        self.assertEqual(d["errors_by_kind"]["read"], 10)  # closed 7 bytes short of the length

    def test_non2xx_counted(self):
        with RawServer("notfound") as srv:
            _, d, _ = bench("-n", "25", "-c", "1", "-t", "1", "--json", srv.url())
        self.assertEqual(d["requests"], 25)
        self.assertEqual(d["non2xx"], 25)
        self.assertEqual(d["errors_by_kind"]["status"], 25)

    def test_connect_refused(self):
        port = tt.free_port()
        rc, d, _ = bench("-n", "5", "-c", "1", "-t", "1", "--json",
                         "http://127.0.0.1:%d/" % port, expect_rc=1)
        self.assertEqual(d["requests"], 0)
        self.assertEqual(d["errors_by_kind"]["connect"], 5)
        self.assertEqual(d["connections_opened"], 0)

    def test_post_body_and_headers(self):
        with tt.Tether("--echo", "--workers", "1") as srv, open(__file__, "rb") as f:
            size = len(f.read())
            _, d, _ = bench("-n", "50", "-c", "2", "-t", "1", "-m", "POST", "--body", __file__,
                            "-H", "X-Test: 1", "--json", "--verify-length", str(size),
                            srv.url("/echo"))
        self.assertEqual(d["requests"], 50)
        self.assertEqual(d["errors"], 0, d["errors_by_kind"])

    def test_duration_bound_run(self):
        with RawServer() as srv:
            _, d, _ = bench("-d", "300ms", "-c", "2", "-t", "1", "--json", srv.url())
        self.assertGreater(d["requests"], 0)
        self.assertGreaterEqual(d["duration_s"], 0.25)  # ran until the deadline, not less

    def test_rate_open_loop(self):
        with RawServer() as srv:
            _, d, _ = bench("-d", "1", "-c", "2", "-t", "1", "--rate", "100", "--json", srv.url())
        # a constant 100 req/s for one second: far fewer than a closed loop would do
        self.assertGreater(d["requests"], 50)
        self.assertLess(d["requests"], 150)
        self.assertEqual(d["errors"], 0)


class BenchText(tt.TestCase):
    def test_text_output(self):
        with RawServer() as srv:
            _, out, _ = bench("-n", "50", "-c", "2", "-t", "1", srv.url(), check_json=False)
        for word in ("requests/s", "transfer/s", "p50", "p90", "p99", "p99.9", "max",
                     "connections", "errors", "non-2xx"):
            self.assertIn(word, out)
        self.assertIn("requests      50 ", out)

    def test_no_progress_when_not_a_tty(self):
        with RawServer() as srv:
            _, out, err = bench("-d", "700ms", "-c", "2", "-t", "1", srv.url(), check_json=False)
        self.assertNotIn("\r", err + out)

    def test_compare_prints_both_columns(self):
        with RawServer() as srv:
            _, out, _ = bench("-n", "100", "-c", "2", "-t", "1", "--compare", srv.url(),
                              check_json=False)
        self.assertIn("keep-alive", out)
        self.assertIn("new connection", out)
        for row in ("requests/s", "latency p50", "latency p99", "connections opened",
                    "closed first by the client", "closed first by the server",
                    "TIME_WAIT after run, client *", "TIME_WAIT after run, server *"):
            self.assertIn(row, out)
        self.assertIn("* TIME_WAIT after run: a snapshot", out)
        self.assertIn("on loopback the kernel reuses client ports still in TIME_WAIT", out)
        line = [l for l in out.splitlines() if "closed first by the client" in l][0]
        self.assertEqual(line.split()[-2:], ["2", "100"])  # bench waits for none of them
        line = [l for l in out.splitlines() if l.strip().startswith("connections opened")][0]
        self.assertEqual(line.split()[2:4], ["2", "100"])

    def test_compare_json(self):
        with tt.Tether("--echo", "--workers", "1") as srv:
            _, d, _ = bench("-n", "200", "-c", "2", "-t", "1", "--compare", "--json",
                            srv.url("/plaintext"))
        self.assertEqual(d["keepalive"]["requests"], 200)
        self.assertEqual(d["close"]["requests"], 200)
        self.assertEqual(d["close"]["connections_opened"], 200)
        self.assertLessEqual(d["keepalive"]["connections_opened"], 4)
        self.assertEqual(d["keepalive"]["errors"] + d["close"]["errors"], 0)
        self.assertIn("time_wait", d["close"])
        self.assertGreater(d["ratios"]["connections_opened"], 10)

    def test_compare_counts_who_closed_first(self):
        # A server that closes at once after Connection: close: every connection of the close
        # run was closed first by the server; the keep-alive run's connections are closed by
        # bench at the end. A server that waits for the client: the client closed first.
        for server_first in (True, False):
            with RawServer(server_first=server_first) as srv:
                _, d, _ = bench("-n", "60", "-c", "2", "-t", "1", "--compare", "--json",
                                srv.url())
            for run in ("keepalive", "close"):
                cf = d[run]["closed_first"]
                self.assertEqual(cf["server"] + cf["client"], d[run]["connections_opened"], run)
            self.assertEqual(d["keepalive"]["closed_first"], {"server": 0, "client": 2})
            want = {"server": 60, "client": 0} if server_first else {"server": 0, "client": 60}
            self.assertEqual(d["close"]["closed_first"], want, server_first)
            self.assertEqual(d["close"]["time_wait"]["snapshot"], "after_run")

    def test_closed_first_sums_to_connections_opened(self):
        with tt.Tether("--echo", "--keepalive-requests", "1") as srv:
            _, d, _ = bench("-n", "20", "-c", "1", "-t", "1", "--json", srv.url("/plaintext"))
        self.assertEqual(d["connections_opened"], 20)
        self.assertEqual(d["closed_first"]["server"] + d["closed_first"]["client"], 20)

    def test_bad_usage(self):
        for args in ([], ["-c", "0", "http://x/"], ["-d", "1", "-n", "5", "http://127.0.0.1/"],
                     ["--bogus", "http://127.0.0.1/"], ["ftp://127.0.0.1/"],
                     ["-H", "nocolon", "http://127.0.0.1/"]):
            with self.subTest(args=args):
                rc, _, err = bench(*args, check_json=False, expect_rc=2)
                self.assertTrue(err)

    def test_help(self):
        _, out, _ = bench("--help", check_json=False)
        for opt in ("--rate", "--no-keepalive", "--pipeline", "--compare", "--json", "--verify"):
            self.assertIn(opt, out)


if __name__ == "__main__":
    import unittest
    unittest.main()
