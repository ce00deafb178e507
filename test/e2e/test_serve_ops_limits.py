"""tether serve, resource limits (issue #16): a body that trickles is held to a minimum rate
(--body-min-rate, Apache mod_reqtimeout's MinRate) and, at --max-connections, the reading
connections making the least progress are evicted, so slow bodies cannot take the server;
bodies grow their buffers as bytes arrive and all bodies together stay under
--max-body-memory (503 above); a full worker hands new connections to one with room."""
import os
import shutil
import socket
import tempfile
import threading
import time

import tt


def vm_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def quick_get(srv, timeout=5.0):
    """A plain GET on a new connection: the status, or None when not answered in time."""
    try:
        s = srv.connect(timeout=timeout)
        s.settimeout(timeout)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        st, h, body, rest = tt.read_response(s)
        s.close()
        return st
    except (OSError, socket.timeout, ValueError, AssertionError):
        return None


class SlowBodies(tt.TestCase):
    def test_min_rate_closes_a_trickling_body(self):
        with tt.Tether("--echo", "--workers", "1", "--body-timeout", "2", "--body-min-rate", "100") as srv:
            s = srv.connect()
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
            t0 = time.time()
            closed = False
            while time.time() - t0 < 15:  # every gap (1 s) is under --body-timeout
                try:
                    s.sendall(b"x")
                except OSError:
                    closed = True
                    break
                s.settimeout(1.0)
                try:
                    d = s.recv(4096)
                    if d == b"" or d.startswith(b"HTTP/1.1 408"):
                        closed = True
                        break
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
                    break
            s.close()
            self.assertTrue(closed, "a body trickling a byte a second held its connection for 15 s")

    def test_slow_bodies_do_not_take_the_server(self):
        # The scenario: 70 clients announce 1 MB and send a byte every 2 s against
        # --max-connections 40 --body-timeout 3; a normal GET must still be answered.
        with tt.Tether("--echo", "--workers", "2", "--max-connections", "40", "--body-timeout", "3") as srv:
            stop = threading.Event()

            def attacker():
                while not stop.is_set():
                    try:
                        s = srv.connect(timeout=2)
                        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nx")
                        while not stop.wait(2):
                            s.sendall(b"x")
                    except OSError:
                        pass
                    finally:
                        try:
                            s.close()
                        except Exception:
                            pass

            ths = [threading.Thread(target=attacker, daemon=True) for _ in range(70)]
            for t in ths:
                t.start()
            try:
                time.sleep(4)  # the attackers hold every slot
                results = []
                for _ in range(6):
                    results.append(quick_get(srv, timeout=5))
                    time.sleep(0.5)
            finally:
                stop.set()
                for t in ths:
                    t.join(10)
            self.assertEqual(results, [200] * len(results))


class BodyMemory(tt.TestCase):
    def test_announced_bodies_reserve_nothing(self):
        with tt.Tether("--echo", "--workers", "2", "--max-connections", "1000") as srv:
            base = quick_get(srv)
            self.assertEqual(base, 200)
            pid = srv.proc.pid
            vsz0, rss0 = vm_kb(pid, "VmSize"), vm_kb(pid, "VmRSS")
            socks = []
            try:
                for _ in range(300):
                    s = srv.connect()
                    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n")
                    socks.append(s)
                time.sleep(1)
                self.assertEqual(quick_get(srv), 200)
                vsz, rss = vm_kb(pid, "VmSize"), vm_kb(pid, "VmRSS")
            finally:
                for s in socks:
                    s.close()
            # 300 x 1 MiB reserved at the head was +374 MB of address space; what may still
            # appear is a malloc arena per worker thread (64 MiB of address space each)
            self.assertLess(vsz - vsz0, 160 * 1024, "VmSize grew by %d kB" % (vsz - vsz0))
            self.assertLess(rss - rss0, 48 * 1024, "VmRSS grew by %d kB" % (rss - rss0))

    def test_budget_answers_503_and_recovers(self):
        with tt.Tether("--echo", "--workers", "1", "--max-body-memory", "1m", "--body-timeout", "20") as srv:
            a = srv.connect(timeout=10)
            a.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"a" * 900000)
            time.sleep(0.5)
            b = srv.connect(timeout=10)
            b.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n" + b"b" * 100000)
            st, h, body, rest = tt.read_response(b)
            self.assertEqual(st, 503)
            b.close()
            a.sendall(b"a" * 100000)
            st, h, body, rest = tt.read_response(a)
            self.assertEqual(st, 200)
            self.assertEqual(len(body), 1000000)
            a.close()
            c = srv.connect(timeout=10)
            c.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n" + b"c" * 200000)
            st, h, body, rest = tt.read_response(c)
            c.close()
            self.assertEqual(st, 200)


class AcrossWorkers(tt.TestCase):
    def test_full_worker_hands_over(self):
        d = tempfile.mkdtemp(prefix="tt-big-")
        try:
            with open(os.path.join(d, "big"), "wb") as f:
                f.write(b"z" * (48 << 20))
            with open(os.path.join(d, "index.html"), "wb") as f:
                f.write(b"hi")
            with tt.Tether("--root", d, "--workers", "2", "--max-connections", "2") as srv:
                # One connection that does not read a big file: its worker is full (WRITING
                # cannot be evicted); the other worker has room.
                hog = socket.socket()
                hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                hog.connect(("127.0.0.1", srv.port))
                hog.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(0.5)
                results = [quick_get(srv, timeout=3) for _ in range(12)]
                hog.close()
            self.assertEqual(results, [200] * len(results))
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    import unittest
    unittest.main()
