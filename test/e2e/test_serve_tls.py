"""`tether serve` over TLS: https:// listeners beside cleartext ones, against real peers (curl,
openssl s_client, python's ssl module, headless Chromium): keep-alive over one TLS connection,
ALPN, resumption (TLS 1.3 tickets, the TLS 1.2 session cache), --tls-min, close_notify on clean
closes, cleartext HTTP and garbage on the TLS port, a stalled handshake, SIGHUP reloading the
certificate, the status pages over https. Certificates: scripts/mkcerts.sh (tt.certs())."""
import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile

import tt
from test_insight import run_chromium


def cert(name):
    return os.path.join(tt.certs(), name)


class TlsServer(tt.Tether):
    """tt.Tether with an https:// listener (self.tls_port) beside the cleartext one."""

    def __init__(self, *args, cert_file=None, key_file=None, **kw):
        self.tls_port = tt.free_port()
        super().__init__("--status", "--listen", "https://127.0.0.1:%d" % self.tls_port,
                         "--tls-cert", cert_file or cert("server.pem"),
                         "--tls-key", key_file or cert("server.key"), *args, **kw)

    def __enter__(self):
        super().__enter__()
        try:
            tt.wait_port(self.tls_port, proc=self.proc)
        except Exception:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        rc = self.stop()
        err = self.proc.stderr.read().decode(errors="replace") if not self.proc.stderr.closed else ""
        super().__exit__(*exc)
        # A graceful stop exits 0; a sanitizer build (TETHER_BIN) reports here.
        if exc[0] is None:
            assert rc == 0, "exit %s: %s" % (rc, err[-2000:])
            assert "Sanitizer" not in err and "runtime error" not in err, err[-4000:]

    def https(self, path="/"):
        return "https://localhost:%d%s" % (self.tls_port, path)

    def resolve(self):
        return "localhost:%d:127.0.0.1" % self.tls_port


def client_ctx(alpn=True):
    ctx = ssl.create_default_context(cafile=cert("ca.pem"))
    if alpn:
        ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def tls_connect(srv, ctx=None, session=None, ragged_is_error=True):
    """A verified TLS connection to srv's https:// port (SNI localhost). With ragged_is_error an
    end of input without close_notify raises ssl.SSLEOFError instead of reading as b''."""
    raw = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
    return (ctx or client_ctx()).wrap_socket(raw, server_hostname="localhost", session=session,
                                             suppress_ragged_eofs=not ragged_is_error)


def request(s, path="/", close=False, buf=b""):
    s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n" %
               (path, "Connection: close\r\n" if close else "")).encode())
    return tt.read_response(s, buf)


def status(srv):
    s = tls_connect(srv)
    try:
        st, _, body, _ = request(s, "/_tether/status", close=True)
    finally:
        s.close()
    assert st == 200, st
    return json.loads(body)


def s_client(srv, *args, data=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"):
    """openssl s_client against srv's TLS port with data on stdin; (returncode, output)."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.tls_port,
                        "-servername", "localhost", "-CAfile", cert("ca.pem"), "-ign_eof"]
                       + list(args), input=data, capture_output=True, timeout=30)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


class ServeTlsTest(tt.TestCase):
    def test_curl_two_requests_one_connection(self):
        with TlsServer("--echo") as srv:
            p = subprocess.run(["curl", "-sS", "--cacert", cert("ca.pem"), "--resolve", srv.resolve(),
                                "-w", "%{http_code} %{num_connects}\n", "-o", "/dev/null", srv.https("/a"),
                                "-o", "/dev/null", srv.https("/b")],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout.split("\n")[:2], ["200 1", "200 0"], "the second rode the first")
            st = status(srv)
            self.assertGreaterEqual(st["requests"]["reused"], 1)
            self.assertTrue(st["tls"]["enabled"])

    def full_then_resumed(self, srv, *flags):
        """Two s_client runs with flags: a full handshake saving its session, then one offering
        it; both get a 200. Returns the two outputs."""
        outs = []
        with tempfile.TemporaryDirectory() as d:
            sess = os.path.join(d, "sess.pem")
            for io in ("-sess_out", "-sess_in"):
                rc, out = s_client(srv, *flags, io, sess)
                self.assertEqual(rc, 0, out)
                self.assertIn("HTTP/1.1 200", out)
                outs.append(out)
        return outs

    def test_s_client_alpn_and_resumption_tls13(self):
        with TlsServer("--echo") as srv:
            full, resumed = self.full_then_resumed(srv, "-alpn", "http/1.1")
            self.assertIn("ALPN protocol: http/1.1", full)
            self.assertIn("Verify return code: 0 (ok)", full)
            self.assertIn("New, TLSv1.3", full)
            self.assertIn("Reused, TLSv1.3", resumed)
            t = status(srv)["tls"]
            self.assertGreaterEqual(t["handshakes_resumed"], 1)
            self.assertGreaterEqual(t["handshakes_full"], 1)

    def test_tls12_and_session_cache(self):
        with TlsServer("--echo") as srv:
            # -no_ticket: resumption by session id, i.e. the server's TLS 1.2 session cache.
            full, resumed = self.full_then_resumed(srv, "-tls1_2", "-no_ticket")
            self.assertIn("Protocol  : TLSv1.2", full)
            self.assertIn("Reused, TLSv1.2", resumed)

    def test_tls_min_13_refuses_tls12(self):
        with TlsServer("--echo", "--tls-min", "1.3") as srv:
            rc, out = s_client(srv, "-tls1_2")
            self.assertNotEqual(rc, 0, out)
            self.assertNotIn("HTTP/1.1 200", out)
            rc, out = s_client(srv, "-tls1_3")
            self.assertEqual(rc, 0, out)
            self.assertIn("HTTP/1.1 200", out)
            st = status(srv)
            self.assertGreaterEqual(st["tls"]["handshake_failures"]["protocol"], 1, st["tls"])
            self.assertGreaterEqual(st["closes"]["tls_failed"], 1, st["closes"])

    def test_cleartext_http_on_tls_port_gets_400(self):
        with TlsServer("--echo") as srv:
            s = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = tt.recv_until_close(s)
            s.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 400 "), data[:200])
            self.assertIn(b"\r\nConnection: close\r\n", data)
            # Both listeners still serve.
            t = tls_connect(srv)
            self.assertEqual(request(t, close=True)[0], 200)
            t.close()
            c = srv.connect()
            c.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            self.assertTrue(tt.recv_until_close(c).startswith(b"HTTP/1.1 200 "))
            c.close()
            st = status(srv)
            self.assertGreaterEqual(st["tls"]["handshake_failures"]["plaintext"], 1, st["tls"])

    def test_garbage_instead_of_client_hello_closed_at_once(self):
        # The handshake deadline is long: a close before it is the garbage being refused.
        with TlsServer("--echo", "--tls-handshake-timeout", "60") as srv:
            s = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=20)
            s.sendall(bytes([0x00, 0xff, 0x13, 0x37]) + os.urandom(200))
            data = tt.recv_until_close(s)
            s.close()
            self.assertNotIn(b"HTTP/", data)
            t = tls_connect(srv)
            self.assertEqual(request(t, close=True)[0], 200)
            t.close()
            st = status(srv)
            self.assertGreaterEqual(st["tls"]["handshake_failures"]["not_tls"], 1, st["tls"])

    def test_stalled_handshake_closed_at_timeout(self):
        with TlsServer("--echo", "--tls-handshake-timeout", "1") as srv:
            s = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=30)
            s.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then nothing
            data = tt.recv_until_close(s)
            s.close()
            self.assertEqual(data, b"")
            st = tt.wait_for(lambda: (lambda x: x if x["tls"]["handshake_failures"]["timeout"] else None)(status(srv)))
            self.assertTrue(st)
            self.assertGreaterEqual(st["tls"]["handshake_failures"]["timeout"], 1)
            self.assertGreaterEqual(st["closes"]["handshake_timeout"], 1)

    def test_close_notify_on_clean_closes(self):
        with TlsServer("--echo", "--keepalive-timeout", "1", "--keepalive-requests", "2") as srv:
            # Connection: close: the response, then close_notify (no SSLEOFError).
            s = tls_connect(srv)
            st, h, _, rest = request(s, close=True)
            self.assertEqual(st, 200)
            self.assertEqual(h["connection"], ["close"])
            self.assertEqual(rest + s.recv(100), b"")
            s.close()
            # The idle timeout.
            s = tls_connect(srv)
            self.assertEqual(request(s)[0], 200)
            self.assertEqual(s.recv(100), b"")
            s.close()
            # keepalive_requests reached (2): the server closes after the second response.
            s = tls_connect(srv)
            _, _, _, rest = request(s)
            st, h, _, rest = request(s, buf=rest)
            self.assertEqual(h["connection"], ["close"])
            self.assertEqual(rest + s.recv(100), b"")
            s.close()

    def test_close_notify_on_shutdown(self):
        srv = TlsServer("--echo")
        with srv:
            s = tls_connect(srv)
            self.assertEqual(request(s)[0], 200)
            srv.stop()
            self.assertEqual(s.recv(100), b"")
            s.close()

    def test_sighup_reloads_certificate(self):
        with tempfile.TemporaryDirectory() as d:
            cf, kf = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
            shutil.copy(cert("server.pem"), cf)
            shutil.copy(cert("server.key"), kf)
            with TlsServer("--echo", cert_file=cf, key_file=kf) as srv:
                old = tls_connect(srv)
                self.assertEqual(request(old)[0], 200)
                serial0 = old.getpeercert()["serialNumber"]
                shutil.copy(cert("server2.pem"), cf)
                shutil.copy(cert("server2.key"), kf)
                srv.proc.send_signal(signal.SIGHUP)

                def new_serial():
                    t = tls_connect(srv)
                    try:
                        sn = t.getpeercert()["serialNumber"]
                    finally:
                        t.close()
                    return sn if sn != serial0 else None
                serial1 = tt.wait_for(new_serial)
                self.assertTrue(serial1, "a new connection sees the new certificate")
                # The connection opened before keeps working.
                self.assertEqual(request(old)[0], 200)
                old.close()
                # A bad pair: the reload fails, is reported, and the current pair stays.
                with open(cf, "w") as f:
                    f.write("not a certificate\n")
                srv.proc.send_signal(signal.SIGHUP)
                t = tls_connect(srv)
                self.assertEqual(request(t, close=True)[0], 200)
                self.assertEqual(t.getpeercert()["serialNumber"], serial1)
                t.close()
                srv.stop()
                err = srv.proc.stderr.read().decode(errors="replace")
                self.assertIn("TLS reload failed", err)
                srv.proc.stderr.close()

    def test_status_pages_and_conn_over_https(self):
        with TlsServer("--echo") as srv:
            ctx = client_ctx()
            s = tls_connect(srv, ctx)
            st, _, body, _ = request(s, "/_tether/conn")
            self.assertEqual(st, 200)
            c = json.loads(body)
            self.assertEqual(c["scheme"], "https")
            self.assertEqual(c["tls"]["version"], "TLSv1.3")
            self.assertEqual(c["tls"]["alpn"], "http/1.1")
            self.assertFalse(c["tls"]["resumed"])
            self.assertTrue(c["tls"]["cipher"])
            # The session ticket came with the response: a new connection resumes it.
            sess = s.session
            s.close()
            r = tls_connect(srv, ctx, session=sess)
            st, _, body, _ = request(r, "/_tether/conn", close=True)
            r.close()
            self.assertTrue(json.loads(body)["tls"]["resumed"])
            m = tls_connect(srv)
            st, _, body, _ = request(m, "/_tether/metrics", close=True)
            m.close()
            self.assertEqual(st, 200)
            self.assertRegex(body.decode(), r'tether_tls_handshakes_total\{kind="resumed"\} [1-9]')
            self.assertIn('tether_tls_handshake_failures_total{reason="timeout"} 0', body.decode())
            # The cleartext listener's conn has no TLS.
            p = subprocess.run(["curl", "-sS", "-H", "Host: localhost", srv.url("/_tether/conn")],
                               capture_output=True, text=True, timeout=30)
            c = json.loads(p.stdout)
            self.assertEqual(c["scheme"], "http")
            self.assertIsNone(c["tls"])

    def test_static_file_over_tls(self):
        with tempfile.TemporaryDirectory() as d:
            blob = os.urandom(3 << 20)  # bigger than the socket buffers: the fallback loops
            with open(os.path.join(d, "big.bin"), "wb") as f:
                f.write(blob)
            with TlsServer("--root", d) as srv:
                p = subprocess.run(["curl", "-sS", "--cacert", cert("ca.pem"), "--resolve", srv.resolve(),
                                    srv.https("/big.bin"), "--next", "--cacert", cert("ca.pem"),
                                    "--resolve", srv.resolve(), "-r", "100-199", srv.https("/big.bin")],
                                   capture_output=True, timeout=60)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stdout, blob + blob[100:200])

    def test_dashboard_in_chromium_over_https(self):
        spki = subprocess.run("openssl x509 -in '%s' -pubkey -noout | openssl pkey -pubin -outform der"
                              " | openssl dgst -sha256 -binary" % cert("server.pem"),
                              shell=True, capture_output=True, timeout=30, check=True).stdout
        self.assertEqual(len(spki), 32)
        pin = base64.b64encode(spki).decode()
        with TlsServer("--echo") as srv:
            dom, tmp = run_chromium(srv.https("/_tether/dashboard"), "--dump-dom",
                                    "--ignore-certificate-errors-spki-list=" + pin)
            try:
                self.assertRegex(dom, r'data-charts="drawn"')
                self.assertRegex(dom, r'data-tls="[1-9]')
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

    def test_https_listener_needs_cert_and_key(self):
        port = tt.free_port()
        p = subprocess.run([tt.TETHER, "serve", "--listen", "https://127.0.0.1:%d" % port],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--tls-cert", p.stderr)
        p = subprocess.run([tt.TETHER, "serve", "--listen", "https://127.0.0.1:%d" % port,
                            "--tls-cert", cert("server.pem"), "--tls-key", cert("server2.key")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("TLS", p.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
