"""End-to-end tests of `tether bench` over https: bounded runs (-n, a few hundred requests at
most) against `tether serve --listen https://...` and nginx with TLS and session resumption, both
with the test certificates of scripts/mkcerts.sh. Handshakes are counted by kind (full, resumed,
failed) in --json; keep-alive makes one handshake per connection, --full-handshake never
resumes, the default resumes, --compare shows three columns, and a certificate that does not
verify fails with a clear message. No timing assertions."""
import json
import os
import subprocess
import unittest

import tt

BENCH_TIMEOUT = 60

NGINX_TLS = """
  access_log off;
  keepalive_requests 100000;
  ssl_certificate {certs}/server.pem;
  ssl_certificate_key {certs}/server.key;
  ssl_session_cache shared:SSL:1m;
  ssl_session_tickets on;
  ssl_protocols TLSv1.2 TLSv1.3;
  server {{
    listen 127.0.0.1:{port} ssl;
    location = /plaintext {{ default_type text/plain; return 200 "Hello, World!"; }}
  }}
"""


def bench(*args, expect_rc=0):
    """Run tether bench; returns (rc, stdout, stderr), or the parsed JSON as stdout with --json."""
    p = subprocess.run([tt.TETHER, "bench"] + list(args), capture_output=True, text=True,
                       timeout=BENCH_TIMEOUT)
    if expect_rc is not None and p.returncode != expect_rc:
        raise AssertionError("bench exited %d (want %d): %s %s" % (p.returncode, expect_rc,
                                                                   p.stdout[-2000:], p.stderr[-2000:]))
    out = json.loads(p.stdout) if "--json" in args and p.returncode == 0 else p.stdout
    return p.returncode, out, p.stderr


class TetherTLS(tt.Tether):
    """tether serve with one https listener (the test certificate), --echo."""

    def __init__(self, *args):
        certs = tt.certs()
        super().__init__("--tls-cert", os.path.join(certs, "server.pem"), "--tls-key",
                         os.path.join(certs, "server.key"), "--echo", "--workers", "1", *args)
        self.args[3] = "https://127.0.0.1:%d" % self.port  # --listen's value

    def url(self, path="/plaintext"):
        return "https://127.0.0.1:%d%s" % (self.port, path)


class NginxTLS(tt.Nginx):
    def __init__(self):
        super().__init__(NGINX_TLS, prefix="tt-nginx-tls-", certs=tt.certs())

    def url(self, path="/plaintext"):
        return "https://127.0.0.1:%d%s" % (self.port, path)


def servers():
    """The servers every counting test runs against: tether and nginx."""
    return (("tether", TetherTLS), ("nginx", NginxTLS))


class BenchTLSTest(unittest.TestCase):
    def tls(self, d):
        t = d["tls"]
        for key in ("handshakes_full", "handshakes_resumed", "handshakes_failed",
                    "handshake_failures", "sessions"):
            self.assertIn(key, t)
        return t

    def test_keepalive_one_handshake_per_connection(self):
        for name, make in servers():
            with self.subTest(server=name), make() as srv:
                _, d, _ = bench("-n", "200", "-c", "4", "-t", "1", "-k", "--json", srv.url())
                self.assertEqual(d["requests"], 200)
                self.assertEqual(d["errors"], 0)
                self.assertEqual(d["connections_opened"], 4)
                t = self.tls(d)
                self.assertEqual(t["handshakes_full"] + t["handshakes_resumed"], 4)
                self.assertEqual(t["handshakes_failed"], 0)
                self.assertEqual(t["sessions"], "resume")

    def test_full_handshake_never_resumes(self):
        for name, make in servers():
            with self.subTest(server=name), make() as srv:
                _, d, _ = bench("-n", "30", "-c", "2", "-t", "1", "-k", "--no-keepalive",
                                "--full-handshake", "--json", srv.url())
                self.assertEqual(d["requests"], 30)
                self.assertEqual(d["errors"], 0)
                t = self.tls(d)
                self.assertEqual(t["sessions"], "full")
                self.assertEqual(t["handshakes_resumed"], 0)
                self.assertEqual(t["handshakes_full"], d["connections_opened"])
                self.assertEqual(d["connections_opened"], 30)

    def test_new_connections_resume_by_default(self):
        # A TLS 1.3 ticket resumes once: every connection slot's first connection makes a full
        # handshake, and each later one resumes a ticket an earlier connection brought back
        # (a ticket shared between connections would fall back to full handshakes).
        for name, make in servers():
            with self.subTest(server=name), make() as srv:
                _, d, _ = bench("-n", "60", "-c", "4", "-t", "1", "-k", "--no-keepalive", "--json",
                                srv.url())
                self.assertEqual(d["requests"], 60)
                self.assertEqual(d["errors"], 0)
                t = self.tls(d)
                self.assertEqual(t["handshakes_full"], 4)
                self.assertEqual(t["handshakes_resumed"], 56)

    def test_compare_prints_three_columns(self):
        with TetherTLS() as srv:
            _, out, _ = bench("-n", "40", "-c", "2", "-t", "1", "-k", "--compare", srv.url())
        header = [l for l in out.splitlines() if "keep-alive" in l][0]
        for col in ("keep-alive", "new, full hs", "new, resumed", "ratio full", "ratio resumed"):
            self.assertIn(col, header)
        rows = {}
        for l in out.splitlines():
            for label in ("TLS handshakes, full", "TLS handshakes, resumed", "connections opened",
                          "requests/s", "latency p50", "errors"):
                if l.strip().startswith(label):
                    rows[label] = l.strip()[len(label):].split()
        self.assertEqual(len(rows), 6, out)
        self.assertEqual(rows["connections opened"][:3], ["2", "40", "40"])
        full, resumed = rows["TLS handshakes, full"], rows["TLS handshakes, resumed"]
        self.assertEqual(full[1], "40")  # the full-handshake run
        self.assertEqual(resumed[1], "0")
        self.assertGreater(int(resumed[2]), 0)  # the resumed run
        self.assertEqual(rows["errors"], ["0", "0", "0"])

    def test_compare_json_has_handshakes_of_each_run(self):
        with NginxTLS() as srv:
            _, d, _ = bench("-n", "40", "-c", "2", "-t", "1", "-k", "--compare", "--json",
                            srv.url())
        for run in ("keepalive", "close", "close_resumed"):
            self.assertEqual(d[run]["requests"], 40, run)
            self.assertEqual(d[run]["errors"], 0, run)
        self.assertEqual(d["close"]["tls"]["sessions"], "full")
        self.assertEqual(d["close"]["tls"]["handshakes_resumed"], 0)
        self.assertEqual(d["close"]["tls"]["handshakes_full"], 40)
        self.assertEqual(d["close_resumed"]["tls"]["sessions"], "resume")
        self.assertGreater(d["close_resumed"]["tls"]["handshakes_resumed"], 0)
        self.assertIn("rps_resumed", d["ratios"])

    def test_cacert_verifies(self):
        with TetherTLS() as srv:
            ca = os.path.join(tt.certs(), "ca.pem")
            _, d, _ = bench("-n", "20", "-c", "2", "-t", "1", "--cacert", ca, "--json", srv.url())
            self.assertEqual(d["requests"], 20)
            self.assertEqual(d["errors"], 0)
            # localhost is in the certificate's subjectAltName as well as 127.0.0.1
            _, d, _ = bench("-n", "4", "-c", "1", "-t", "1", "--cacert", ca, "--json",
                            "https://localhost:%d/plaintext" % srv.port)
            self.assertEqual(d["requests"], 4)

    def test_untrusted_certificate_fails_clearly(self):
        with TetherTLS() as srv:
            # no --cacert: the test CA is not in the system store; -d bounds the run, but the
            # first failed verification ends it
            rc, out, err = bench("-d", "30", "-c", "2", "-t", "1", srv.url(), expect_rc=1)
            self.assertIn("TLS handshake", err)
            self.assertIn("cert", err)
            self.assertIn("--cacert", err)
            self.assertIn("-k", err)
            rc, d, err = bench("-d", "30", "-c", "2", "-t", "1", "--json", srv.url(), expect_rc=1)
            self.assertIn("--cacert", err)

    def test_usage(self):
        ca = os.path.join(tt.certs(), "ca.pem")
        for args in (["-k", "http://127.0.0.1:1/"], ["--cacert", ca, "http://127.0.0.1:1/"],
                     ["--full-handshake", "http://127.0.0.1:1/"],
                     ["--compare", "--full-handshake", "-k", "https://127.0.0.1:1/"],
                     ["--cacert", "/nonexistent/ca.pem", "https://127.0.0.1:1/"]):
            with self.subTest(args=args):
                _, _, err = bench(*args, expect_rc=2)
                self.assertIn("tether bench", err)
        _, out, _ = bench("--help")
        for opt in ("--insecure", "-k", "--cacert", "--full-handshake"):
            self.assertIn(opt, out)


if __name__ == "__main__":
    unittest.main()
