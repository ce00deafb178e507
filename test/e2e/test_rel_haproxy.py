"""Reliability: scale-out behind HAProxy (Debian haproxy, config test/e2e/haproxy/tether.cfg):
two `tether serve` backends, keep-alive and connection reuse to them (http-reuse safe), HTTP
health checks. While one sequential and four parallel keep-alive clients run through HAProxy:
  1. drain s1 over the runtime API (unix stats socket: set server be/s1 state drain), check it
     gets no more requests, then SIGTERM it (graceful): no client request fails;
  2. SIGTERM a backend without draining first (health checks + layer-7 retries take over):
     no client request fails.
HAProxy and the backends are started by the test and stopped by PID."""
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "soak"))
import relkit  # noqa: E402
from loadclient import KeepAliveClient, merge  # noqa: E402

CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "haproxy", "tether.cfg")


class HAProxy:
    def __init__(self, s1, s2, tmp):
        self.port = relkit.free_port()
        self.sock = os.path.join(tmp, "haproxy.sock")
        self.out = os.path.join(tmp, "haproxy.out")
        env = dict(os.environ, TT_FRONT_PORT=str(self.port), TT_S1_PORT=str(s1), TT_S2_PORT=str(s2),
                   TT_STATS_SOCK=self.sock)
        with open(self.out, "wb") as f:
            self.proc = subprocess.Popen(["haproxy", "-f", CONF, "-db"], stdout=f, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)

    def cmd(self, line):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.sock)
            s.sendall(line.encode() + b"\n")
            out = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        return out.decode()

    def stat(self):
        """{server name: row dict} of backend be from `show stat`."""
        lines = self.cmd("show stat").splitlines()
        hdr = lines[0].lstrip("# ").split(",")
        rows = {}
        for line in lines[1:]:
            if not line:
                continue
            r = dict(zip(hdr, line.split(",")))
            if r.get("pxname") == "be":
                rows[r["svname"]] = r
        return rows

    def up(self, name):
        try:
            return self.stat()[name]["status"].startswith("UP")
        except (OSError, KeyError, IndexError):
            return False

    def requests(self, name):
        return int(self.stat()[name]["stot"] or 0)

    def output(self):
        with open(self.out, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class HAProxyTest(unittest.TestCase):
    def setUp(self):
        self.tmp = relkit.mkdtemp("tt-rel-haproxy-")
        self.s1 = relkit.Server("--echo", "--workers", "1", tmpdir=self.tmp).start()
        self.s2 = relkit.Server("--echo", "--workers", "1", tmpdir=self.tmp).start()
        self.ha = HAProxy(self.s1.port, self.s2.port, self.tmp)
        ok = relkit.wait_for(lambda: os.path.exists(self.ha.sock) and self.ha.up("s1") and self.ha.up("s2"),
                             15 * relkit.SLOW, 0.1)
        if not ok:
            self.tearDown()
            self.fail("HAProxy did not see both backends UP: " + self.ha.output()[-2000:])
        relkit.wait_for(lambda: self._front_ok(), 10)
        self.clients = [KeepAliveClient("seq", "127.0.0.1", self.ha.port, pause=0.001)]
        self.clients += [KeepAliveClient("par%d" % i, "127.0.0.1", self.ha.port) for i in range(4)]

    def _front_ok(self):
        try:
            return relkit.simple_get("127.0.0.1", self.ha.port, timeout=2) == (200, relkit.HELLO)
        except OSError:
            return False

    def tearDown(self):
        for c in getattr(self, "clients", []):
            c.stop.set()
        for c in getattr(self, "clients", []):
            if c.is_alive():
                c.join(15)
        self.ha.stop()
        self.s1.stop()
        self.s2.stop()

    def answered(self):
        return sum(len(c.answered) for c in self.clients)

    def run_more(self, n):
        base = self.answered()
        ok = relkit.wait_for(lambda: self.answered() >= base + n, 30 * relkit.SLOW, 0.05)
        self.assertTrue(ok, "clients stalled: %d answered" % self.answered())

    def finish(self):
        for c in self.clients:
            c.stop.set()
        for c in self.clients:
            c.join(15)
        res = merge(self.clients)
        self.assertEqual(res["partial"] + res["wrong"] + res["not_accepted"], [], "failed client requests")
        self.assertEqual(res["refused"], 0)
        self.assertEqual(res["connects"], len(self.clients), "HAProxy closed client connections")
        return res

    def test_drain_over_runtime_api_then_stop(self):
        for c in self.clients:
            c.start()
        self.run_more(300)
        self.assertGreater(self.ha.requests("s1"), 0)
        self.assertGreater(self.ha.requests("s2"), 0)
        self.assertEqual(self.ha.cmd("set server be/s1 state drain").strip(), "")
        time.sleep(0.5)  # requests already routed to s1 finish
        s1_before, s2_before = self.ha.requests("s1"), self.ha.requests("s2")
        self.run_more(300)
        self.assertEqual(self.ha.requests("s1"), s1_before, "a drained server got new requests")
        self.assertGreater(self.ha.requests("s2"), s2_before)
        self.assertEqual(self.s1.stop(), 0, "s1 graceful exit: " + self.s1.output()[-2000:])
        self.run_more(300)
        res = self.finish()
        sys.stderr.write("haproxy drain: %d requests, 0 failed\n" % len(res["answered"]))

    def test_sigterm_backend_with_health_checks(self):
        for c in self.clients:
            c.start()
        self.run_more(300)
        self.s1.kill_sig(signal.SIGTERM)
        self.assertEqual(self.s1.proc.wait(30 * relkit.SLOW), 0, "s1 graceful exit: " + self.s1.output()[-2000:])
        self.assertTrue(relkit.wait_for(lambda: not self.ha.up("s1"), 10 * relkit.SLOW), "s1 never marked DOWN")
        self.run_more(300)
        res = self.finish()
        sys.stderr.write("haproxy sigterm: %d requests, 0 failed\n" % len(res["answered"]))


if __name__ == "__main__":
    unittest.main()
