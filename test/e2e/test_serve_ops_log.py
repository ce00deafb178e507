"""tether serve, the access log (issues #15 and #16): SIGHUP reopens it and the server keeps
serving (logrotate), --log-format takes nginx's variables, request bytes are escaped as nginx
does (\\xHH), the request's own version is logged, and nothing is dropped when the sink is slow."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import tt


def get(srv, path, extra=b""):
    s = srv.connect()
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"Connection: close\r\n\r\n")
    st, h, body, rest = tt.read_response(s)
    s.close()
    return st


def lines_of(path):
    with open(path, "rb") as f:
        return f.read().splitlines()


class AccessLog(tt.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tt-alog-")
        self.log = os.path.join(self.tmp, "access.log")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def wait_lines(self, path, n):
        tt.wait_for(lambda: os.path.exists(path) and len(lines_of(path)) >= n, timeout=10)
        return lines_of(path)

    def test_sighup_reopens_and_keeps_serving(self):
        with tt.Tether("--echo", "--workers", "2", "--access-log", self.log) as srv:
            self.assertEqual(get(srv, b"/before"), 200)
            self.assertEqual(len(self.wait_lines(self.log, 1)), 1)
            os.rename(self.log, self.log + ".1")  # what logrotate does
            srv.proc.send_signal(signal.SIGHUP)
            ok = tt.wait_for(lambda: os.path.exists(self.log), timeout=10)
            self.assertTrue(ok, "SIGHUP did not reopen the log")
            self.assertIsNone(srv.proc.poll(), "SIGHUP killed the server")
            self.assertEqual(get(srv, b"/after"), 200)
            new = self.wait_lines(self.log, 1)
            self.assertEqual(len(new), 1)
            self.assertIn(b"/after", new[0])
            old = lines_of(self.log + ".1")
            self.assertEqual(len(old), 1)
            self.assertIn(b"/before", old[0])

    def test_log_format_variables(self):
        fmt = ("$remote_addr|$remote_port|$request_method|$request_uri|$uri|$args|"
               "$server_protocol|$status|$body_bytes_sent|$connection|$connection_requests|"
               "$http_user_agent|$http_x_missing|$request_time|$msec|[$time_local]|$request")
        with tt.Tether("--echo", "--workers", "1", "--access-log", self.log, "--log-format", fmt) as srv:
            s = srv.connect()
            port = s.getsockname()[1]
            for i in range(2):
                s.sendall(b"GET /p?q=%d HTTP/1.1\r\nHost: x\r\nUser-Agent: ua/1\r\n\r\n" % i)
                st, h, body, rest = tt.read_response(s)
                self.assertEqual(st, 200)
            s.close()
            got = [l.decode().split("|") for l in self.wait_lines(self.log, 2)]
        self.assertEqual(len(got), 2)
        for i, f in enumerate(got):
            self.assertEqual(f[:9], ["127.0.0.1", str(port), "GET", "/p?q=%d" % i, "/p", "q=%d" % i,
                                     "HTTP/1.1", "200", "13"])
            self.assertEqual(f[10], str(i + 1))  # $connection_requests: keep-alive at work
            self.assertEqual(f[11:13], ["ua/1", "-"])
            self.assertRegex(f[13], r"^\d+\.\d{3}$")
            self.assertRegex(f[14], r"^\d{10}\.\d{3}$")
            self.assertRegex(f[15], r"^\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]$")
            self.assertEqual(f[16], "GET /p?q=%d HTTP/1.1" % i)
        self.assertEqual(got[0][9], got[1][9])  # $connection: one connection

    def test_unknown_variable_is_refused(self):
        p = subprocess.run([tt.TETHER, "serve", "--echo", "--listen", "127.0.0.1:%d" % tt.free_port(),
                            "--log-format", "$remote_addr $nonsense"], stderr=subprocess.PIPE,
                           stdout=subprocess.DEVNULL, timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"log-format", p.stderr)

    def test_escaping_and_real_version(self):
        with tt.Tether("--echo", "--workers", "1", "--access-log", self.log, "--log-format",
                       "$http_x_test|$request") as srv:
            self.assertEqual(get(srv, b"/e", b"X-Test: a\"b\\c\td\xff\r\n"), 200)
            s = srv.connect()  # an error answered by the server for an HTTP/1.0 request
            s.sendall(b"GET /v HTTP/1.0\r\nHost: x\r\nExpect: something\r\n\r\n")
            st, h, body, rest = tt.read_response(s)
            s.close()
            self.assertEqual(st, 417)
            got = self.wait_lines(self.log, 2)
        self.assertEqual(got[0], b"a\\x22b\\x5Cc\\x09d\\xFF|GET /e HTTP/1.1")
        self.assertEqual(got[1], b"-|GET /v HTTP/1.0")

    def test_pipelined_lines_all_present_with_a_slow_sink(self):
        # The log goes to a pipe that is read slowly: the sink is slower than the server.
        N, CONNS = 6000, 4
        srv = tt.Tether("--echo", "--workers", "2", "--keepalive-requests", "0", "--access-log", "-")
        srv.__enter__()
        seen = []

        def reader():
            while True:
                chunk = srv.proc.stdout.read1(4096) if hasattr(srv.proc.stdout, "read1") else srv.proc.stdout.read(4096)
                if not chunk:
                    return
                seen.append(chunk)
                time.sleep(0.002)

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        try:
            def client(k):
                s = srv.connect(timeout=60)
                req = b"".join(b"GET /k%d/%d HTTP/1.1\r\nHost: x\r\n\r\n" % (k, i) for i in range(N))
                threading.Thread(target=s.sendall, args=(req,), daemon=True).start()
                got, tail, pat = 0, b"", b"HTTP/1.1 200"
                while got < N:
                    d = s.recv(1 << 16)
                    if not d:
                        break
                    got += (tail + d).count(pat)
                    tail = (tail + d)[-(len(pat) - 1):]
                s.close()
                return got

            res = [0] * CONNS
            ths = [threading.Thread(target=lambda k=k: res.__setitem__(k, client(k))) for k in range(CONNS)]
            for t in ths:
                t.start()
            for t in ths:
                t.join(120)
            self.assertEqual(res, [N] * CONNS)
        finally:
            srv.stop()
            th.join(30)
            srv.proc.stderr.close()
        lines = b"".join(seen).splitlines()
        for k in range(CONNS):
            mine = [l for l in lines if b" /k%d/" % k in l]
            self.assertEqual(len(mine), N, "connection %d: %d of %d lines" % (k, len(mine), N))


if __name__ == "__main__":
    import unittest
    unittest.main()
