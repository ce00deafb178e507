"""Reliability: fd exhaustion. The server runs with RLIMIT_NOFILE 256 and 1,000 clients connect
and send an incomplete head (so they hold their connection and cannot be reclaimed as idle).
Connections accepted before the flood keep being served (or are closed cleanly between two
responses, the documented reclaim of idle connections under pressure), the server does not spin
while saturated (its CPU time grows by less than half the wall time over a 2 s window: a bound
against a busy loop, not a speed test); when the 1,000 complete their request (with Connection:
close) every one of them is answered through the 256 fds; and once the clients leave, new
requests are served."""
import errno
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "soak"))
import relkit  # noqa: E402

N_FLOOD = 1000
N_EARLY = 8


class EarlyClient(threading.Thread):
    """A connection accepted before the flood: requests in a loop on the same connection."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10 * relkit.SLOW)
        self.s.sendall(relkit.get_request("/early"))
        st, _, body, _ = relkit.read_response(self.s)
        assert st == 200 and body == relkit.HELLO
        self.stop = threading.Event()
        self.ok = 0
        self.closed_cleanly = False  # EOF before any byte of a response: reclaimed while idle
        self.errors = []

    def run(self):
        while not self.stop.is_set():
            try:
                self.s.sendall(relkit.get_request("/early"))
                st, h, body, rest = relkit.read_response(self.s)
            except EOFError as e:
                if e.args[0] == b"":
                    self.closed_cleanly = True
                else:
                    self.errors.append("partial response %r" % e.args[0][:80])
                break
            except (ConnectionResetError, BrokenPipeError):
                self.closed_cleanly = True
                break
            except Exception as e:
                self.errors.append(repr(e))
                break
            if st != 200 or body != relkit.HELLO or rest:
                self.errors.append((st, body[:80]))
                break
            self.ok += 1
            if h.get("connection", "").lower() == "close":
                self.closed_cleanly = True
                break
            time.sleep(0.02)
        self.s.close()


class FdLimitTest(unittest.TestCase):
    def test_ulimit_256_with_1000_clients(self):
        relkit.raise_nofile(8192)
        srv = relkit.Server("--echo", "--workers", "2", "--header-timeout", "120", "--keepalive-timeout", "120",
                            nofile=256)
        flood = []
        early = []
        with srv:
            try:
                early = [EarlyClient(srv.port) for _ in range(N_EARLY)]
                for c in early:
                    c.start()
                for i in range(N_FLOOD):
                    s = socket.socket()
                    s.setblocking(False)
                    err = s.connect_ex(("127.0.0.1", srv.port))
                    if err in (0, errno.EINPROGRESS):
                        flood.append(s)
                    else:
                        s.close()
                # each flood socket that completed its handshake sends an incomplete head
                time.sleep(0.2)
                for s in flood:
                    try:
                        s.send(b"GET /flood HTTP/1.1\r\nHost: t\r\n")
                    except OSError:
                        pass
                # saturated: the server is at its fd limit
                sat = relkit.wait_for(lambda: (srv.fds() or 0) >= 240, 20 * relkit.SLOW)
                self.assertTrue(sat, "server never reached its fd limit (fds=%s)" % srv.fds())
                ok0 = sum(c.ok for c in early)
                cpu0, t0 = srv.cpu_seconds(), time.time()
                time.sleep(2.0)
                cpu1, t1 = srv.cpu_seconds(), time.time()
                ok1 = sum(c.ok for c in early)
                still_saturated = (srv.fds() or 0) >= 240
                self.assertTrue(srv.alive(), "server died: " + srv.output()[-2000:])
                self.assertLess(cpu1 - cpu0, 0.5 * (t1 - t0),
                                "server burned %.2fs CPU in %.2fs while saturated (busy loop?)" %
                                (cpu1 - cpu0, t1 - t0))
                self.assertTrue(still_saturated, "the window was not saturated")
                for c in early:
                    c.stop.set()
                for c in early:
                    c.join(10)
                errors = [e for c in early for e in c.errors]
                self.assertEqual(errors, [], "early clients got errors or partial responses")
                served_through = [c for c in early if not c.closed_cleanly]
                sys.stderr.write("fdlimit: early clients: %d answers in the window, %d of %d reclaimed while idle; "
                                 "server cpu %.3fs in %.2fs\n" % (ok1 - ok0, N_EARLY - len(served_through), N_EARLY,
                                                                  cpu1 - cpu0, t1 - t0))
                if served_through:
                    self.assertGreater(ok1, ok0, "accepted clients not served while saturated")
                # every flood client now completes its head (asking to close after the answer):
                # the accepted ones are answered at once, each answer frees an fd for the next
                # one waiting in the listen queue, so all 1,000 are served through 256 fds
                for s in flood:
                    s.setblocking(True)
                    s.settimeout(30 * relkit.SLOW)
                    s.sendall(b"Connection: close\r\n\r\n")
                served = bad = 0
                for s in flood:
                    try:
                        st, _, body, _ = relkit.read_response(s)
                        ok = st == 200 and body == relkit.HELLO
                    except (OSError, EOFError):
                        ok = False
                    served += ok
                    bad += not ok
                sys.stderr.write("fdlimit: %d of %d flood clients served through 256 fds\n" % (served, len(flood)))
                self.assertEqual((served, bad), (len(flood), 0), "flood clients not all served")
            finally:
                for c in early:
                    c.stop.set()
                for s in flood:
                    s.close()
            # recovery: the clients left; fresh connections are served
            results = []
            deadline = time.time() + 30 * relkit.SLOW
            while len(results) < 20 and time.time() < deadline:
                try:
                    results.append(relkit.simple_get("127.0.0.1", srv.port, timeout=5))
                except OSError:
                    time.sleep(0.2)
            self.assertEqual(results, [(200, relkit.HELLO)] * 20, "no full recovery after the flood")
            self.assertTrue(relkit.wait_for(lambda: relkit.close_wait_count(srv.port) == 0, 15),
                            "CLOSE_WAIT left on the server")
            self.assertTrue(relkit.wait_for(lambda: srv.fds() is not None and srv.fds() < 64, 15 * relkit.SLOW),
                            "server fds did not come back down: %s" % srv.fds())


if __name__ == "__main__":
    unittest.main()
