"""tether proxy with https:// upstreams: `tether serve --listen https://...` (and nginx with ssl)
behind it. GET and POST through, the upstream TLS connection kept alive and new ones resuming
the session, verification on by default (502 tls_cert without the CA, 200 with
--upstream-insecure), SNI, a handshake failure (502 tls_handshake), mixed http/https upstreams,
TLS on both legs. Certificates: scripts/mkcerts.sh (tt.certs())."""
import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest

import proxy_peers as pp
import test_proxy_basic as basic
import tt


def cert(name):
    return os.path.join(tt.certs(), name)


def tls_backend(*extra):
    """`tether serve --echo --status` with one https:// listener (the test server cert, for
    localhost and 127.0.0.1); .url() is its https URL."""
    port = tt.free_port()
    b = pp.Proc([tt.TETHER, "serve", "--echo", "--status", "--workers", "1", "--listen",
                 "https://127.0.0.1:%d" % port, "--tls-cert", cert("server.pem"), "--tls-key",
                 cert("server.key")] + list(extra), port)
    b.url = lambda path="/": "https://127.0.0.1:%d%s" % (port, path)
    return b


def https_get(port, path="/", method="GET", body=None):
    """A verified https request to localhost (SNI and name checked against the test CA's
    certificate) at 127.0.0.1:port: (status, headers, body)."""
    ctx = ssl.create_default_context(cafile=cert("ca.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        head = "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" % (method, path)
        if body is not None:
            head += "Content-Length: %d\r\n" % len(body)
        s.sendall(head.encode() + b"\r\n" + (body or b""))
        r = http.client.HTTPResponse(s, method=method)
        r.begin()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()


def backend_tls(b):
    """The https backend's "tls" status object (handshakes_full, handshakes_resumed...)."""
    st, _, body = https_get(b.port, "/_tether/status")
    assert st == 200, st
    return json.loads(body)["tls"]


def get(p, path="/", method="GET", body=None):
    """A cleartext request to the proxy: (status, body)."""
    st, _, b = basic.get(p, path, method=method, body=body)
    return st, b


class ProxyTlsUpstream(tt.TestCase):
    def test_get_and_post_over_one_kept_alive_tls_connection(self):
        with tls_backend() as b, \
                pp.proxy([b], "--upstream-cacert", cert("ca.pem"), "--workers", "1") as p:
            c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
            for i in range(30):
                c.request("GET", "/")
                r = c.getresponse()
                self.assertEqual((r.status, r.read()), (200, b"Hello, World!"))
            body = os.urandom(200000)
            c.request("POST", "/", body=body)
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, body))
            c.close()
            up = pp.status(p)["upstreams"][0]
            self.assertEqual(up["scheme"], "https")
            self.assertEqual(up["url"], b.url(""))
            self.assertGreaterEqual(up["requests"], 31, up)
            self.assertLessEqual(up["opened"], 2, up)  # kept alive: not one per request
            self.assertGreaterEqual(up["reused"], 29, up)
            tls = backend_tls(b)  # our own status request is one more handshake
            self.assertLessEqual(tls["handshakes_full"] + tls["handshakes_resumed"], 4, tls)
            # the proxy's own view (published with its gauges, about once a second)
            self.assertTrue(tt.wait_for(lambda: pp.status(p)["upstream_tls"]["handshakes_full"]
                                        >= 1, timeout=15), pp.status(p)["upstream_tls"])
            ut = pp.status(p)["upstream_tls"]
            self.assertLessEqual(ut["handshakes_full"] + ut["handshakes_resumed"], 2, ut)
            self.assertEqual(ut["failures"], 0, ut)

    def test_10mb_bodies_both_framings_through_tls(self):
        # tether serve --echo sends the body back: 10 MB up and down the TLS upstream leg
        data = os.urandom(1 << 20) * 10
        want = hashlib.sha256(data).hexdigest()
        with tls_backend("--max-body", "16m") as b, \
                pp.proxy([b], "--upstream-cacert", cert("ca.pem")) as p:
            for chunked in (False, True):
                with self.subTest(chunked=chunked):
                    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=120)
                    if chunked:
                        blocks = (data[i:i + 65536] for i in range(0, len(data), 65536))
                        c.request("POST", "/", body=blocks, encode_chunked=True,
                                  headers={"Transfer-Encoding": "chunked"})
                    else:
                        c.request("POST", "/", body=data)
                    r = c.getresponse()
                    h = hashlib.sha256()
                    n = 0
                    while True:
                        piece = r.read(1 << 16)
                        if not piece:
                            break
                        h.update(piece)
                        n += len(piece)
                    c.close()
                    self.assertEqual((r.status, n, h.hexdigest()), (200, len(data), want))

    def test_new_upstream_connections_resume_the_session(self):
        # the backend closes after each response: every request needs a new TLS connection
        with tls_backend("--keepalive-requests", "1") as b, \
                pp.proxy([b], "--upstream-cacert", cert("ca.pem"), "--workers", "1") as p:
            for i in range(10):
                self.assertEqual(get(p), (200, b"Hello, World!"))
            tls = backend_tls(b)
            self.assertGreaterEqual(tls["handshakes_full"] + tls["handshakes_resumed"], 10, tls)
            self.assertGreater(tls["handshakes_resumed"], 0, tls)
            self.assertGreaterEqual(tls["handshakes_resumed"], 5, tls)  # most of them

    def test_unverified_certificate_is_502_tls_cert_and_insecure_is_200(self):
        with tempfile.TemporaryDirectory() as d, tls_backend() as b:
            log = os.path.join(d, "access.log")
            # no --upstream-cacert: the system store does not know the test CA
            with pp.proxy([b], "--access-log", log, "--log-format",
                          '"$request" $status $log_note') as p:
                st, body = get(p, "/x")
                self.assertEqual(st, 502)
                self.assertIn(b"tls_cert", body)
                up = pp.status(p)["upstreams"][0]
                self.assertGreaterEqual(up["failures"]["tls_cert"], 1, up)
                self.assertEqual(up["responses"], 0, up)
            with open(log) as f:
                lines = f.read().splitlines()
            self.assertIn('"GET /x HTTP/1.1" 502 tls_cert', lines)
            with pp.proxy([b], "--upstream-insecure") as p:
                self.assertEqual(get(p), (200, b"Hello, World!"))

    def test_sni_names_the_certificate_checked(self):
        with tls_backend() as b:
            # the URL's host 127.0.0.1 and the name localhost are both in the certificate
            with pp.proxy([b], "--upstream-cacert", cert("ca.pem"), "--upstream-sni",
                          "localhost", "--upstream-host", "example.org") as p:
                self.assertEqual(get(p), (200, b"Hello, World!"))
            # --upstream-host rewrites Host only: the name verified is still the URL's
            with pp.proxy([b], "--upstream-cacert", cert("ca.pem"), "--upstream-host",
                          "wrong.example") as p:
                self.assertEqual(get(p), (200, b"Hello, World!"))
            with pp.proxy([b], "--upstream-cacert", cert("ca.pem"), "--upstream-sni",
                          "wrong.example") as p:
                st, body = get(p)
                self.assertEqual((st, b"tls_cert" in body), (502, True), body)

    def test_expired_and_wrong_host_certificates_are_502(self):
        for name in ("expired", "wronghost"):
            with self.subTest(cert=name):
                port = tt.free_port()
                b = pp.Proc([tt.TETHER, "serve", "--echo", "--workers", "1", "--listen",
                             "https://127.0.0.1:%d" % port, "--tls-cert", cert(name + ".pem"),
                             "--tls-key", cert(name + ".key")], port)
                with b, pp.proxy(["https://127.0.0.1:%d" % port], "--upstream-cacert",
                                 cert("ca.pem")) as p:
                    st, body = get(p)
                    self.assertEqual(st, 502)
                    self.assertIn(b"tls_cert", body)

    def test_plain_http_upstream_named_https_is_502_tls_handshake(self):
        with pp.echo_backend() as plain:
            url = "https://127.0.0.1:%d" % plain.port
            with pp.proxy([url], "--upstream-cacert", cert("ca.pem"), "--fail-threshold",
                          "2") as p:
                for _ in range(2):
                    st, body = get(p)
                    self.assertEqual(st, 502)
                    self.assertIn(b"tls_handshake", body)
                up = pp.status(p)["upstreams"][0]
                self.assertEqual(up["failures"]["tls_handshake"], 2, up)
                self.assertEqual(up["rests"], 1, up)  # a connect-phase failure: passive health
                self.assertFalse(up["healthy"], up)

    def test_failed_tls_upstream_goes_to_the_other(self):
        with pp.echo_backend() as plain, tls_backend() as b:
            bad = "https://127.0.0.1:%d" % plain.port  # not TLS: every handshake fails
            with pp.proxy([bad, b], "--upstream-cacert", cert("ca.pem"), "--balance",
                          "round-robin") as p:
                for _ in range(6):
                    self.assertEqual(get(p), (200, b"Hello, World!"))
                ups = pp.status(p)["upstreams"]
                self.assertGreater(ups[0]["failures"]["tls_handshake"], 0, ups)
                self.assertEqual(ups[1]["responses"], 6, ups)

    def test_mixed_http_and_https_upstreams(self):
        with pp.echo_backend() as plain, tls_backend() as b, \
                pp.proxy([plain, b], "--upstream-cacert", cert("ca.pem"), "--balance",
                         "round-robin") as p:
            for i in range(8):
                self.assertEqual(get(p, "/", "POST", b"n%d" % i), (200, b"n%d" % i))
            ups = pp.status(p)["upstreams"]
            self.assertEqual([u["scheme"] for u in ups], ["http", "https"])
            for u in ups:
                self.assertGreaterEqual(u["responses"], 3, ups)

    def test_tls_on_both_legs(self):
        with tls_backend() as b:
            port = tt.free_port()
            argv = [tt.TETHER, "proxy", "--listen", "https://127.0.0.1:%d" % port, "--tls-cert",
                    cert("server.pem"), "--tls-key", cert("server.key"), "--workers", "1",
                    "--upstream", b.url(""), "--upstream-cacert", cert("ca.pem")]
            with pp.Proc(argv, port):
                for i in range(5):
                    st, h, body = https_get(port)
                    self.assertEqual((st, body), (200, b"Hello, World!"))
                data = b"y" * 100000
                st, h, body = https_get(port, "/", method="POST", body=data)
                self.assertEqual((st, body), (200, data))
                self.assertIn("tether", h.get("via", ""))
                if shutil.which("curl"):
                    out = subprocess.run(["curl", "-sS", "--cacert", cert("ca.pem"), "--resolve",
                                          "localhost:%d:127.0.0.1" % port,
                                          "https://localhost:%d/" % port],
                                         capture_output=True, timeout=30)
                    self.assertEqual(out.stdout, b"Hello, World!", out.stderr)
            tls = backend_tls(b)
            self.assertLessEqual(tls["handshakes_full"] + tls["handshakes_resumed"], 4, tls)

    @unittest.skipUnless(shutil.which("nginx"), "nginx not installed")
    def test_nginx_tls_upstream(self):
        http = """
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {crt}; ssl_certificate_key {key};
    keepalive_requests 1000;
    location / {{ return 200 "nginx over tls\\n"; }}
  }}"""
        with tt.Nginx(http, crt=cert("server.pem"), key=cert("server.key")) as n, \
                pp.proxy(["https://127.0.0.1:%d" % n.port], "--upstream-cacert",
                         cert("ca.pem"), "--workers", "1") as p:
            for _ in range(10):
                self.assertEqual(get(p), (200, b"nginx over tls\n"))
            up = pp.status(p)["upstreams"][0]
            self.assertEqual(up["opened"], 1, up)
            self.assertEqual(up["reused"], 9, up)


class ProxyTlsCli(tt.TestCase):
    def test_flags_in_help_and_usage_errors(self):
        h = basic.run("--help")
        for flag in ("--upstream-cacert FILE", "--upstream-insecure", "--upstream-sni NAME",
                     "https://HOST[:PORT]"):
            self.assertIn(flag, h.stdout)
        for args, msg in ((["--upstream", "https://127.0.0.1:1", "--upstream-cacert",
                            "/nonexistent/ca.pem"], "--upstream-cacert /nonexistent/ca.pem"),
                          (["--upstream", "https://127.0.0.1:1", "--upstream-sni", "a/b"],
                           "--upstream-sni 'a/b'"),
                          (["--upstream", "https://127.0.0.1:0"], "--upstream https://127.0.0.1:0")):
            with self.subTest(args=args):
                r = basic.run("--listen", "127.0.0.1:%d" % tt.free_port(), *args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("tether proxy: " + msg, r.stderr)


if __name__ == "__main__":
    unittest.main()
