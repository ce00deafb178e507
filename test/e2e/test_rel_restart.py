"""Reliability: graceful shutdown and restart under keep-alive load.

Every request carries a unique target and the server writes an access log, so "no accepted
request lost" is checked exactly: every target in the server's log was answered fully to its
client; every request that was not answered saw its connection refused, or closed/reset before
any byte of a response (then the client retried on a new connection); no partial response.
The handover test starts a second instance on the same port (--reuseport) and then SIGTERMs
the first: no connection may be refused at any moment (docs/deploy.md)."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "soak"))
import relkit  # noqa: E402
from loadclient import KeepAliveClient, logged_targets, merge  # noqa: E402

NCLIENTS = 6


class RestartTest(unittest.TestCase):
    def setUp(self):
        self.tmp = relkit.mkdtemp("tt-rel-restart-")

    def check_no_loss(self, res, logged):
        self.assertEqual(res["partial"], [], "responses cut in the middle")
        self.assertEqual(res["wrong"], [], "wrong answers or errors")
        lost = sorted(logged - res["answered"])
        self.assertEqual(lost[:10], [], "%d requests in the access log were not answered" % len(lost))
        self.assertGreater(len(res["answered"]), 0)
        self.assertGreater(len(logged), 0, "access log empty")

    def test_sigterm_under_keepalive_load(self):
        log = os.path.join(self.tmp, "access.log")
        srv = relkit.Server("--echo", "--workers", "2", "--access-log", log, tmpdir=self.tmp).start()
        clients = [KeepAliveClient("a%d" % i, "127.0.0.1", srv.port) for i in range(NCLIENTS)]
        try:
            for c in clients:
                c.start()
            relkit.wait_for(lambda: sum(len(c.answered) for c in clients) > 200, 10 * relkit.SLOW)
            srv.kill_sig(signal.SIGTERM)
            rc = srv.proc.wait(30 * relkit.SLOW)
            time.sleep(0.3)  # clients now see refused connections
        finally:
            for c in clients:
                c.stop.set()
            for c in clients:
                c.join(15)
            srv.stop(signal.SIGKILL)
        self.assertEqual(rc, 0, "graceful shutdown exit status; output: " + srv.output()[-2000:])
        res = merge(clients)
        self.check_no_loss(res, logged_targets(log))
        self.assertGreater(res["refused"], 0, "clients never saw the listener closed")

    def test_handover_to_new_instance_same_port(self):
        log_old = os.path.join(self.tmp, "old.log")
        log_new = os.path.join(self.tmp, "new.log")
        old = relkit.Server("--echo", "--workers", "1", "--access-log", log_old, tmpdir=self.tmp).start()
        new = relkit.Server("--echo", "--workers", "1", "--reuseport", "--access-log", log_new, port=old.port, tmpdir=self.tmp)
        clients = [KeepAliveClient("h%d" % i, "127.0.0.1", old.port) for i in range(NCLIENTS)]
        try:
            for c in clients:
                c.start()
            relkit.wait_for(lambda: sum(len(c.answered) for c in clients) > 200, 10 * relkit.SLOW)
            # 1. start the new instance on the same port and wait until its listener is up
            new.start(wait=False)
            self.assertTrue(relkit.wait_for(lambda: new.alive() and new.listening_sockets() >= 1, 15 * relkit.SLOW),
                            "new instance did not listen on the shared port: " + new.output()[-2000:])
            # 2. SIGTERM the old one; it drains while the new one accepts
            old.kill_sig(signal.SIGTERM)
            rc = old.proc.wait(30 * relkit.SLOW)
            n_at_exit = sum(len(c.answered) for c in clients)
            relkit.wait_for(lambda: sum(len(c.answered) for c in clients) > n_at_exit + 200, 10 * relkit.SLOW)
        finally:
            for c in clients:
                c.stop.set()
            for c in clients:
                c.join(15)
            old.stop(signal.SIGKILL)
            new.stop()
        self.assertEqual(rc, 0, "old instance exit status; output: " + old.output()[-2000:])
        res = merge(clients)
        self.assertEqual(res["refused"], 0, "connections refused during the handover")
        logged_new = logged_targets(log_new)
        self.check_no_loss(res, logged_targets(log_old) | logged_new)
        self.assertGreater(len(logged_new), 0, "the new instance served nothing")
        sys.stderr.write("handover: %d answered, %d not accepted (closed before a response byte, retried), "
                         "%d resets, %d connects\n" % (len(res["answered"]), len(res["not_accepted"]),
                                                      res["resets"], res["connects"]))


if __name__ == "__main__":
    unittest.main()
