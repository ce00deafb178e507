"""tether get over https against real peers: nginx with TLS (reuse of one connection, session
resumption seen in its log as $ssl_session_reused), python ssl servers for the failure cases
(expired, self-signed and wrong-host certificates: exit 60; a handshake failure: exit 35; a
close-delimited body cut without close_notify: a truncation error), -k, --cacert, -v, --stats."""
import os
import socket
import ssl

import test_get_nginx as gn
import tt
from test_get_nginx import get

HTTP = """
  log_format tls '$uri $status $connection $connection_requests s$ssl_session_reused $ssl_protocol';
  access_log {d}/access.log tls;
  keepalive_requests 1000;
  keepalive_timeout 60s;
  ssl_session_cache shared:SSL:1m;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {certs}/server.pem;
    ssl_certificate_key {certs}/server.key;
    ssl_protocols {protocols};
    root {d}/html;
    location /close {{ keepalive_timeout 0; return 200 "bye\\n"; }}
    location /short {{ keepalive_timeout 1s; return 200 "short\\n"; }}
  }}
"""


certs = tt.certs


class Nginx(gn.Nginx):
    """nginx with TLS (our HTTP block); log() as test_get_nginx's."""

    def __init__(self, protocols="TLSv1.2 TLSv1.3"):
        tt.Nginx.__init__(self, HTTP, prefix="tt-get-tls-", certs=certs(), protocols=protocols)
        os.makedirs(os.path.join(self.dir, "html"))
        with open(os.path.join(self.dir, "html", "index.html"), "w") as f:
            f.write("hello\n")
        with open(os.path.join(self.dir, "html", "big.txt"), "w") as f:
            f.write("".join("%07d\n" % i for i in range(40000)))  # 320 KB, many TLS records

    def url(self, path="/"):
        return "https://127.0.0.1:%d%s" % (self.port, path)


class TLSServer(tt.ThreadedListener):
    """A python ssl server: each connection gets one handshake and, when it succeeds, the bytes
    `response` and then a close, with close_notify (clean=True) or a bare FIN (clean=False)."""

    def __init__(self, cert="server", response=b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                 b"Connection: close\r\n\r\nok\n", clean=True, max_version=None):
        super().__init__()
        d = certs()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(d, cert + ".pem"), os.path.join(d, cert + ".key"))
        self.ctx.set_alpn_protocols(["http/1.1"])
        if max_version:
            self.ctx.maximum_version = max_version
        self.response = response
        self.clean = clean
        self.handshakes = 0

    def url(self, path="/", host="127.0.0.1"):
        return "https://%s:%d%s" % (host, self.port, path)

    def handle(self, c):
        c.settimeout(10)
        try:
            s = self.ctx.wrap_socket(c, server_side=True)
        except (OSError, ssl.SSLError):
            c.close()
            return
        self.handshakes += 1
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = s.recv(4096)
                if not d:
                    break
                buf += d
            s.sendall(self.response)
            if self.clean:
                s.unwrap().close()  # close_notify, then the socket
            else:
                # a bare FIN: close the TCP socket under the TLS layer
                c2 = socket.socket(fileno=os.dup(s.fileno()))
                c2.shutdown(socket.SHUT_RDWR)
                c2.close()
                s.close()
        except (OSError, ssl.SSLError):
            s.close()


class PlainServer(tt.ThreadedListener):
    """Cleartext HTTP on the port an https URL names: answers whatever arrives with a 400."""

    def handle(self, c):
        with c:
            c.settimeout(5)
            try:
                c.recv(4096)
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                          b"Connection: close\r\n\r\n")
            except OSError:
                pass


class GetTLSNginxTest(tt.TestCase):
    def test_several_urls_one_connection(self):
        with Nginx() as ng:
            p, st = get("--stats", "--cacert", os.path.join(certs(), "ca.pem"), *[ng.url()] * 5)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"hello\n" * 5)
            self.assertEqual(st["connections_opened"], 1)
            self.assertEqual(st["connections_reused"], 4)
            self.assertEqual(st["tls"]["handshakes_full"], 1)
            self.assertEqual(st["tls"]["handshakes_resumed"], 0)
            self.assertGreater(st["tls"]["handshake_us_p50"], 0)
            log = ng.log(5)
            self.assertEqual({line[2] for line in log}, {log[0][2]})  # one $connection
            self.assertEqual([line[3] for line in log], ["1", "2", "3", "4", "5"])

    def test_large_bodies_and_parallel(self):
        with Nginx() as ng:
            with open(os.path.join(ng.dir, "html", "big.txt"), "rb") as f:
                big = f.read()
            p, st = get("--stats", "--parallel", "4", "--max-connections", "2", "--cacert",
                        os.path.join(certs(), "ca.pem"), *[ng.url("/big.txt")] * 12)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, big * 12)
            self.assertLessEqual(st["connections_opened"], 2)
            self.assertEqual(st["errors"], 0)
            self.assertEqual(st["tls"]["handshakes_full"] + st["tls"]["handshakes_resumed"],
                             st["connections_opened"])

    def test_idle_connection_closed_by_nginx_is_evicted(self):
        # nginx closes the idle connection after 1 s (close_notify, FIN; 3 s leave room on a
        # loaded machine): the client sees it while idle, evicts it, and the next request
        # resumes on a new connection, no retry
        with Nginx() as ng:
            p, st = get("--stats", "--interval", "3", "--cacert",
                        os.path.join(certs(), "ca.pem"), ng.url("/short"), ng.url("/short"))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"short\n" * 2)
            self.assertEqual(st["evictions"]["peer_closed"], 1)
            self.assertEqual(st["retries"], 0)
            self.assertEqual(st["connections_opened"], 2)
            self.assertEqual(st["tls"]["handshakes_resumed"], 1)

    def check_resumption(self, ng, args, url, n=4):
        p, st = get("--stats", "--cacert", os.path.join(certs(), "ca.pem"), *args, *[url] * n)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(st["connections_opened"], n)
        log = ng.log(n)
        self.assertEqual(len({line[2] for line in log}), n)  # n connections
        self.assertEqual(log[0][4], "s.")  # the first one: a full handshake
        self.assertEqual([line[4] for line in log[1:]], ["sr"] * (n - 1), log)
        self.assertEqual(st["tls"]["handshakes_full"], 1)
        self.assertEqual(st["tls"]["handshakes_resumed"], n - 1)
        return log

    def test_no_keepalive_connections_resume(self):
        with Nginx() as ng:
            log = self.check_resumption(ng, ["--no-keepalive"], ng.url())
            self.assertEqual(log[0][5], "TLSv1.3")

    def test_server_close_connections_resume(self):
        # nginx closes after each response (keepalive_timeout 0): the next request resumes
        with Nginx() as ng:
            self.check_resumption(ng, [], ng.url("/close"))

    def test_tls12_session_cache_resumes(self):
        with Nginx(protocols="TLSv1.2") as ng:
            log = self.check_resumption(ng, ["--no-keepalive"], ng.url())
            self.assertEqual(log[0][5], "TLSv1.2")

    def test_parallel_new_connections_each_resume(self):
        # 4 at a time, a new connection per request: only the first 4 (opened at once, nothing
        # to offer yet) make full handshakes; every later one takes its own session out of the
        # route's pool (a TLS 1.3 session resumes once) and resumes
        n, par = 16, 4
        with Nginx() as ng:
            p, st = get("--stats", "--parallel", str(par), "--max-connections", str(par),
                        "--no-keepalive", "--cacert", os.path.join(certs(), "ca.pem"),
                        *[ng.url()] * n)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(st["connections_opened"], n)
            self.assertEqual(st["errors"], 0)
            full, resumed = st["tls"]["handshakes_full"], st["tls"]["handshakes_resumed"]
            self.assertEqual(full + resumed, n)
            self.assertLessEqual(full, par, st["tls"])
            log = ng.log(n)
            self.assertEqual(sum(line[4] == "sr" for line in log), resumed, log)

    def test_verbose_shows_the_connection(self):
        with Nginx() as ng:
            p, _ = get("-v", "--no-keepalive", "--cacert", os.path.join(certs(), "ca.pem"),
                       ng.url(), ng.url())
            self.assertEqual(p.returncode, 0, p.stderr)
            err = p.stderr.decode()
            self.assertEqual(err.count("* SSL connection using TLSv1.3 / TLS_"), 2, err)
            self.assertIn("* ALPN: server accepted http/1.1", err)
            self.assertIn("*  subject: ", err)
            self.assertIn("server", err.split("*  subject: ")[1].splitlines()[0])
            self.assertIn("tether test CA", err.split("*  issuer: ")[1].splitlines()[0])
            self.assertIn("* SSL session new (full handshake)", err)
            self.assertIn("* SSL session resumed", err)

    def test_without_cacert_the_test_ca_is_not_trusted(self):
        with Nginx() as ng:
            p, _ = get(ng.url())
            self.assertEqual(p.returncode, 60, p.stderr)
            self.assertIn(b"SSL certificate problem: ", p.stderr)
            self.assertEqual(p.stdout, b"")
            self.assertEqual(ng.log(), [])  # no request reached nginx
            p, _ = get("-k", ng.url())
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"hello\n")

    def test_http_and_https_on_one_port_are_two_routes(self):
        # the same host:port with two schemes never shares a connection: the http one fails
        # against the TLS port, the https one still works on its own connection
        with Nginx() as ng:
            plain = "http://127.0.0.1:%d/" % ng.port
            p, st = get("--stats", "--cacert", os.path.join(certs(), "ca.pem"), ng.url(), plain,
                        ng.url())
            self.assertEqual([r["scheme"] for r in st["routes"]].count("https"), 1)
            self.assertEqual([r["scheme"] for r in st["routes"]].count("http"), 1)
            self.assertIn(b"hello\n", p.stdout)
            https = [r for r in st["routes"] if r["scheme"] == "https"][0]
            self.assertEqual(https["requests"], 2)


class GetTLSFailureTest(tt.TestCase):
    def assert_cert_error(self, srv, *args, url=None, text=None):
        p, st = get("--stats", "--cacert", os.path.join(certs(), "ca.pem"), *args,
                    url or srv.url())
        self.assertEqual(p.returncode, 60, p.stderr)
        line = p.stderr.decode().splitlines()[0]
        self.assertIn("SSL certificate problem: ", line)
        if text:
            self.assertIn(text, line)
        self.assertEqual(st["retries"], 0)  # a certificate error is never retried
        self.assertEqual(st["tls"]["failures"], 1)

    def test_expired_certificate(self):
        with TLSServer("expired") as srv:
            self.assert_cert_error(srv, text="expired")
            p, _ = get("-k", srv.url())
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"ok\n")

    def test_self_signed_certificate(self):
        with TLSServer("self") as srv:
            self.assert_cert_error(srv, url=srv.url(host="localhost"))
            p, _ = get("--insecure", srv.url(host="localhost"))
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_wrong_host_certificate(self):
        with TLSServer("wronghost") as srv:
            self.assert_cert_error(srv)
            p, _ = get("-k", srv.url())
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_localhost_name_verifies(self):
        with TLSServer() as srv:
            p, _ = get("--cacert", os.path.join(certs(), "ca.pem"), srv.url(host="localhost"))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"ok\n")

    def test_plain_http_server_is_a_handshake_failure(self):
        with PlainServer() as srv:
            p, st = get("--stats", "-k", "https://127.0.0.1:%d/" % srv.port)
            self.assertEqual(p.returncode, 35, p.stderr)
            self.assertIn(b"TLS connect error: ", p.stderr)
            self.assertEqual(st["retries"], 0)

    def test_tls_min_mismatch_is_a_handshake_failure(self):
        with TLSServer(max_version=ssl.TLSVersion.TLSv1_2) as srv:
            p, _ = get("--tls-min", "1.3", "--cacert", os.path.join(certs(), "ca.pem"), srv.url())
            self.assertEqual(p.returncode, 35, p.stderr)
            p, _ = get("--tls-min", "1.2", "--cacert", os.path.join(certs(), "ca.pem"), srv.url())
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_bad_tls_min_is_usage(self):
        p, _ = get("--tls-min", "1.1", "https://127.0.0.1:1/")
        self.assertEqual(p.returncode, 2)

    def test_missing_cacert_file(self):
        p, _ = get("--cacert", "/nonexistent/ca.pem", "https://127.0.0.1:1/")
        self.assertEqual(p.returncode, 77, p.stderr)
        self.assertIn(b"tls setup", p.stderr)

    def test_close_delimited_body_without_close_notify_is_truncated(self):
        resp = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 1000
        with TLSServer(response=resp, clean=False) as srv:
            p, _ = get("--cacert", os.path.join(certs(), "ca.pem"), srv.url())
            self.assertNotEqual(p.returncode, 0, p.stderr)
            self.assertIn(b"truncated: no close_notify", p.stderr)
            self.assertEqual(srv.handshakes, 1)  # not retried

    def test_close_delimited_body_with_close_notify_is_complete(self):
        resp = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 1000
        with TLSServer(response=resp, clean=True) as srv:
            p, _ = get("--cacert", os.path.join(certs(), "ca.pem"), srv.url())
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"x" * 1000)

    def test_handshake_timeout(self):
        # a server that accepts and never answers the ClientHello
        with Silent() as srv:
            p, _ = get("--tls-timeout", "0.5", "-k", "https://127.0.0.1:%d/" % srv.port)
            self.assertEqual(p.returncode, 28, p.stderr)
            self.assertIn(b"TLS connect error: timeout", p.stderr)


class Silent(tt.ThreadedListener):
    """Accepts connections and holds them open without a byte."""

    def __init__(self):
        super().__init__()
        self.held = []

    def handle(self, c):
        self.held.append(c)

    def __exit__(self, *exc):
        super().__exit__(*exc)
        for c in self.held:
            c.close()


if __name__ == "__main__":
    import unittest
    unittest.main()
