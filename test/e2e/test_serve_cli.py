"""tether serve: --help, the access log, default root, the second signal, max connections."""
import os
import re
import signal
import subprocess
import tempfile
import time

import tt


class ServeCli(tt.TestCase):
    def test_help_shows_defaults(self):
        p = subprocess.run([tt.TETHER, "serve", "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        for opt in ("--listen", "--keepalive-timeout", "--keepalive-requests", "--header-timeout",
                    "--max-connections", "--max-body", "--access-log", "--echo", "--status"):
            self.assertIn(opt, p.stdout)
        self.assertIn("default 75", p.stdout)
        self.assertIn("default 1000", p.stdout)

    def test_bad_option_value(self):
        p = subprocess.run([tt.TETHER, "serve", "--keepalive-timeout", "soon"], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(p.returncode, 2)

    def test_default_root_is_bundled_site(self):
        env = dict(os.environ)
        env.pop("TETHER_ROOT", None)
        with tt.Tether(env=env) as srv:
            s = srv.connect()
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            st, h, body, rest = tt.read_response(s)
            self.assertEqual(st, 200)
            self.assertIn(b"keep-alive", body.lower())
            s.close()

    def test_access_log_common_log_format(self):
        fd, path = tempfile.mkstemp()
        os.close(fd)
        with tt.Tether("--echo", "--access-log", path) as srv:
            s = srv.connect()
            s.sendall(b"GET /logged?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            tt.read_response(s)
            s.close()
            line = tt.wait_for(lambda: open(path).read(), timeout=5)
        os.unlink(path)
        self.assertRegex(line, r'^127\.0\.0\.1 - - \[\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                               r'"GET /logged\?q=1 HTTP/1\.1" 200 13\n$')

    def test_second_signal_exits_at_once(self):
        with tt.Tether("--echo", "--drain-timeout", "60") as srv:
            busy = srv.connect()
            busy.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhe")  # in flight
            time.sleep(0.2)
            srv.proc.send_signal(signal.SIGTERM)

            def refused():
                try:
                    srv.connect(timeout=0.5).close()
                    return False
                except OSError:
                    return True
            self.assertTrue(tt.wait_for(refused, timeout=10))  # first signal seen: not accepting
            self.assertIsNone(srv.proc.poll())  # draining: waits for the busy request
            srv.proc.send_signal(signal.SIGTERM)
            self.assertNotEqual(srv.proc.wait(5), 0)
            busy.close()

    def test_max_connections_pauses_accept(self):
        with tt.Tether("--echo", "--workers", "1", "--max-connections", "5") as srv:
            busy = []
            for _ in range(5):
                s = srv.connect()
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # unfinished heads: not idle
                busy.append(s)
            time.sleep(0.2)
            extra = srv.connect()  # the kernel completes the handshake; tether does not accept
            extra.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            extra.settimeout(0.5)
            with self.assertRaises(OSError):
                extra.recv(100)
            busy[0].close()  # a slot frees: accepting resumes
            extra.settimeout(5)
            st, h, body, rest = tt.read_response(extra)
            self.assertEqual(body, b"Hello, World!")
            for s in busy[1:] + [extra]:
                s.close()

    def test_pressure_closes_oldest_idle_first(self):
        with tt.Tether("--echo", "--workers", "1", "--max-connections", "3") as srv:
            idle = []
            for _ in range(3):
                s = srv.connect()
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                tt.read_response(s)
                idle.append(s)
                time.sleep(0.05)
            new = srv.connect()
            new.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(tt.read_response(new)[2], b"Hello, World!")
            self.assertEqual(idle[0].recv(100), b"")  # the oldest idle one made room
            idle[2].sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # the newest still works
            self.assertEqual(tt.read_response(idle[2])[2], b"Hello, World!")
            for s in idle + [new]:
                s.close()


if __name__ == "__main__":
    import unittest
    unittest.main()
