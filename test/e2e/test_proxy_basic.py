"""tether proxy with real peers: the CLI, two `tether serve --echo` upstreams, nginx and a python
backend behind it, curl and wrk through it, hop-by-hop fields and X-Forwarded-*, pipelined
clients, the upstreams in the status JSON and metrics."""
import http.client
import json
import os
import re
import shutil
import subprocess
import unittest

import proxy_peers as pp
import tt


def run(*args):
    return subprocess.run([tt.TETHER, "proxy"] + list(args), capture_output=True, text=True,
                          timeout=20)


def get(p, path="/", headers=None, method="GET", body=None):
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


class ProxyCli(tt.TestCase):
    def test_usage_errors_name_the_flag(self):
        for args, msg in ((["--listen", "127.0.0.1:1"], "--upstream URL is required"),
                          (["--upstream", "http://127.0.0.1:1", "--balance", "random"],
                           "--balance: 'random'"),
                          (["--upstream", "http://127.0.0.1:1", "--upstream-timeout", "soon"],
                           "--upstream-timeout: 'soon' is not a duration"),
                          (["--upstream", "http://127.0.0.1:1", "--upstream-keepalive", "x"],
                           "--upstream-keepalive: 'x' is not a whole number"),
                          (["--upstream", "ftp://127.0.0.1:1"], "--upstream ftp://127.0.0.1:1"),
                          (["--upstream", "http://127.0.0.1:1", "--keepalive-timeout", "soon"],
                           "--keepalive-timeout: 'soon'")):
            with self.subTest(args=args):
                p = run(*args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("tether proxy: " + msg, p.stderr)

    def test_help_lists_serve_and_upstream_flags(self):
        p = run("--help")
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith("usage: tether proxy "))
        # every connection flag of serve is a flag of proxy: one table (src/connopt.c)
        serve = subprocess.run([tt.TETHER, "serve", "--help"], capture_output=True, text=True,
                               timeout=20).stdout
        for flag in re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", serve, re.M):
            if flag not in ("--root", "--echo"):
                self.assertIn(flag + " ", p.stdout)
        for flag in ("--upstream URL", "--upstream-keepalive N", "--upstream-idle-timeout SEC",
                     "--upstream-connect-timeout SEC", "--upstream-timeout SEC",
                     "--balance least-conn|round-robin", "--upstream-host NAME"):
            self.assertIn(flag, p.stdout)
        self.assertIn("(default 32)", p.stdout)


class ProxyEcho(tt.TestCase):
    """In front of two `tether serve --echo`."""

    def test_two_echo_upstreams_round_robin(self):
        with pp.echo_backend() as a, pp.echo_backend() as b, \
                pp.proxy([a, b], "--balance", "round-robin") as p:
            for i in range(10):
                st, h, body = get(p)
                self.assertEqual((st, body), (200, b"Hello, World!"))
            st, h, body = get(p, "/", method="POST", body=b"x" * 1000)
            self.assertEqual((st, body), (200, b"x" * 1000))
            d = pp.status(p)
            ups = d["upstreams"]
            self.assertEqual([u["url"] for u in ups], [a.url(""), b.url("")])
            for u in ups:
                self.assertGreaterEqual(u["requests"], 3, u)  # both got their turn
                self.assertTrue(u["healthy"])
                for k in ("open", "idle", "leased", "responses", "opened", "reused",
                          "reuse_ratio", "retries", "failures", "time_wait"):
                    self.assertIn(k, u)
                self.assertEqual(sum(u["failures"].values()), 0, u)
                self.assertIsInstance(u["time_wait"], int)
            self.assertEqual(sum(u["requests"] for u in ups), 11)
            # the upstream connections are reused: 11 requests over at most 2 workers x 2
            self.assertLessEqual(sum(u["opened"] for u in ups), 4)
            self.assertGreater(sum(u["reused"] for u in ups), 0)

    def test_curl_through_proxy_reuses_one_connection(self):
        with pp.echo_backend() as a, pp.proxy([a]) as p:
            out = subprocess.run(["curl", "-sv", p.url("/"), p.url("/again")], capture_output=True,
                                 text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout, "Hello, World!Hello, World!")
            self.assertIn("Re-using existing connection", out.stderr)
            self.assertRegex(out.stderr, r"(?i)< via: 1.1 tether")

    @unittest.skipUnless(shutil.which("wrk"), "wrk is not installed (scripts/deps.sh)")
    def test_wrk_through_proxy(self):
        # the backend keeps its connections for any number of requests (its default closes
        # after about 1000, which would add that many upstream closes here)
        with pp.echo_backend("--keepalive-requests", "0") as a, pp.proxy([a]) as p:
            out = subprocess.run(["wrk", "-t1", "-c4", "-d1", "--timeout", "10s", p.url("/")],
                                 capture_output=True, text=True, timeout=60).stdout
            m = re.search(r"(\d+) requests in", out)
            self.assertTrue(m, out)
            n = int(m.group(1))
            self.assertGreater(n, 0)
            self.assertNotIn("Socket errors", out)
            self.assertNotIn("Non-2xx", out)
            u = pp.status(p)["upstreams"][0]
            self.assertGreaterEqual(u["requests"], n)
            # keep-alive upstream: a handful of connections carry every request
            self.assertLessEqual(u["opened"], 2 * 4 + 2, u)
            # wrk stops with requests in flight: those upstream exchanges are abandoned and
            # their connections closed (at most one per wrk connection), and the start-up
            # probe of the backend's port left one; no TIME_WAIT per request
            self.assertLessEqual(u["time_wait"], u["opened"] - u["open"] + 1, u)
            self.assertLessEqual(u["time_wait"], 4 + 1, u)

    def test_metrics_per_upstream(self):
        with pp.echo_backend() as a, pp.proxy([a]) as p:
            get(p)
            st, h, body = get(p, "/_tether/metrics", headers={"Host": "localhost"})
            self.assertEqual(st, 200)
            text = body.decode()
            self.assertIn('tether_upstream_requests_total{upstream="%s"} 1' % a.url(""), text)
            self.assertIn('tether_upstream_failures_total{upstream="%s",reason="connect"} 0'
                          % a.url(""), text)
            self.assertIn("tether_upstream_time_wait{", text)


class ProxyPeers(tt.TestCase):
    """In front of nginx and of a python backend."""

    @unittest.skipUnless(shutil.which("nginx"), "nginx is not installed (scripts/deps.sh)")
    def test_nginx_upstream(self):
        http = """
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 200 "nginx saw $http_x_forwarded_for via $http_via host $host\\n"; }}
  }}"""
        with tt.Nginx(http) as n, pp.proxy([n.url("")]) as p:
            for _ in range(3):
                st, h, body = get(p, "/x", headers={"Host": "app.example"})
                self.assertEqual(st, 200)
                self.assertEqual(body, b"nginx saw 127.0.0.1 via 1.1 tether host app.example\n")
            u = pp.status(p)["upstreams"][0]
            self.assertEqual(u["responses"], 3)
            self.assertGreater(u["reused"], 0)

    def test_hop_by_hop_removed_and_forwarded_added(self):
        with pp.backend() as b, pp.proxy([b]) as p:
            s = p.connect()
            s.sendall(b"GET /headers?hop=1 HTTP/1.1\r\nHost: front.example\r\n"
                      b"Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=9\r\n"
                      b"TE: trailers\r\nProxy-Connection: keep-alive\r\n"
                      b"Proxy-Authorization: Basic eDp5\r\nX-Forwarded-For: 10.1.2.3\r\n"
                      b"X-Keep: yes\r\n\r\n")
            st, h, body, _ = tt.read_response(s)
            s.close()
            self.assertEqual(st, 200)
            doc = json.loads(body)
            names = [k.lower() for k, _ in doc["headers"]]
            got = dict((k.lower(), v) for k, v in doc["headers"])
            for hop in ("connection", "x-hop", "keep-alive", "te", "proxy-connection",
                        "proxy-authorization", "upgrade", "transfer-encoding"):
                self.assertNotIn(hop, names)
            self.assertEqual(got["x-keep"], "yes")
            self.assertEqual(got["host"], "front.example")
            self.assertEqual(got["x-forwarded-for"], "10.1.2.3, 127.0.0.1")
            self.assertEqual(got["x-forwarded-proto"], "http")
            self.assertEqual(got["x-forwarded-host"], "front.example")
            self.assertIn("1.1 tether", got["via"])
            # and on the way back
            self.assertNotIn("x-resp-hop", h)
            self.assertNotIn("timeout=5", ",".join(h.get("keep-alive", [])))  # the proxy's own
            self.assertNotIn("proxy-authenticate", h)
            self.assertEqual(h["x-resp-end"], ["1"])
            self.assertNotEqual(h.get("connection"), ["X-Resp-Hop"])

    def test_upstream_host_rewrites_host(self):
        with pp.backend() as b, pp.proxy([b], "--upstream-host", "internal.example") as p:
            st, h, body = get(p, "/headers", headers={"Host": "front.example"})
            got = dict((k.lower(), v) for k, v in json.loads(body)["headers"])
            self.assertEqual(got["host"], "internal.example")
            self.assertEqual(got["x-forwarded-host"], "front.example")

    def test_tls_listener(self):
        # serve's TLS flags are proxy's too (one table): an https:// listener in front of a
        # cleartext upstream, X-Forwarded-Proto https
        d = tt.certs()
        port = tt.free_port()
        with pp.backend() as b, pp.proxy([b], "--tls-cert", os.path.join(d, "server.pem"),
                                         "--tls-key", os.path.join(d, "server.key"), port=port,
                                         listen="https://127.0.0.1:%d" % port):
            out = subprocess.run(["curl", "-sS", "--cacert", os.path.join(d, "ca.pem"),
                                  "https://localhost:%d/headers" % port], capture_output=True,
                                 timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            got = dict((k.lower(), v) for k, v in json.loads(out.stdout)["headers"])
            self.assertEqual(got["x-forwarded-proto"], "https")

    def test_pipelined_requests_answered_in_order(self):
        with pp.backend() as b, pp.proxy([b]) as p:
            s = p.connect(timeout=30)
            s.sendall(b"".join(b"GET /headers?i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                               for i in range(10)))
            buf = b""
            for i in range(10):
                st, h, body, buf = tt.read_response(s, buf)
                self.assertEqual(st, 200)
                self.assertEqual(json.loads(body)["request_line"], "GET /headers?i=%d HTTP/1.1" % i)
            s.close()

    def test_head_and_no_body_statuses(self):
        with pp.backend() as b, pp.proxy([b]) as p:
            s = p.connect()
            s.sendall(b"HEAD /gen?n=1000 HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            st, h, body, buf = tt.read_response(s, head_only=True)
            self.assertEqual(st, 200)
            self.assertEqual(h.get("content-length"), ["1000"])
            st, h, body, buf = tt.read_response(s, buf)  # the next response follows at once
            self.assertEqual((st, body), (200, b"hello from b\n"))
            s.close()


if __name__ == "__main__":
    unittest.main()
