"""Reliability: a vanished peer. Two network namespaces made by the test (ttrel-s*, ttrel-c*)
joined by a veth pair on 10.231.X.0/30 (no other address is used; both are deleted after, even
on failure). The server runs in one, a python client in the other holds a keep-alive
connection, then the client's link is cut (its veth set down): nothing ever arrives again.
With --tcp-keepalive 1:1:3 the kernel's probes fail and the server must close its side (its
socket fd count returns to the listeners only) although its idle timeout is 600 s; without TCP
keepalive, the idle timeout (--keepalive-timeout 3) must close it. All waits are bounded."""
import json
import os
import select
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "soak"))
import relkit  # noqa: E402

CLIENT = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
buf = b""
while b"Hello, World!" not in buf:
    b = s.recv(4096)
    if not b:
        break
    buf += b
print("OK" if b"Hello, World!" in buf else "FAIL %r" % buf[:200], flush=True)
time.sleep(120)
"""


def established_in_ns(ns, port):
    """ESTABLISHED/CLOSE_WAIT sockets with local port inside namespace ns (via ss)."""
    p = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htn", "state", "established", "state", "close-wait",
                        "sport = :%d" % port], capture_output=True, text=True, timeout=10)
    return len([line for line in p.stdout.splitlines() if line.strip()])


STATUS = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
# the status pages answer only a Host the server answers to (DNS rebinding): its own address
s.sendall(b"GET /_tether/status HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % sys.argv[1].encode())
buf = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    buf += b
print(buf.split(b"\r\n\r\n", 1)[1].decode())
"""


class VanishedPeerTest(unittest.TestCase):
    def closes(self, net):
        """The server's close reasons, read from its status page inside its namespace."""
        p = subprocess.run(net.exec_argv(net.ns_s, [sys.executable, "-c", STATUS, net.ip_s, "8080"]),
                           capture_output=True, text=True, timeout=20)
        return json.loads(p.stdout)["closes"]

    def hold_and_cut(self, server_args, expect_reason=None):
        with relkit.NetnsPair() as net:
            srv = relkit.Server("--echo", "--workers", "1", *server_args, host=net.ip_s, port=8080, netns=net.ns_s)
            client = None
            try:
                srv.start()
                idle_socks = srv.socket_fds()
                client = subprocess.Popen(net.exec_argv(net.ns_c, [sys.executable, "-c", CLIENT, net.ip_s, "8080"]),
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                r, _, _ = select.select([client.stdout], [], [], 15 * relkit.SLOW)
                line = client.stdout.readline().strip() if r else "(no answer)"
                self.assertEqual(line, "OK", "the client in the other namespace was not served")
                self.assertTrue(relkit.wait_for(lambda: srv.socket_fds() == idle_socks + 1, 5),
                                "server does not hold the keep-alive connection (%s sockets, %s idle)" %
                                (srv.socket_fds(), idle_socks))
                self.assertEqual(established_in_ns(net.ns_s, 8080), 1)
                net.cut()
                gone = relkit.wait_for(lambda: srv.socket_fds() == idle_socks, 15 * relkit.SLOW, 0.1)
                self.assertTrue(gone, "server still holds the connection to the vanished peer "
                                      "(%s sockets, ss: %s)" % (srv.socket_fds(), established_in_ns(net.ns_s, 8080)))
                self.assertEqual(established_in_ns(net.ns_s, 8080), 0, "socket left ESTABLISHED/CLOSE_WAIT")
                self.assertTrue(srv.alive(), srv.output()[-2000:])
                if expect_reason:
                    closes = self.closes(net)
                    self.assertEqual(closes[expect_reason], 1, closes)
                    self.assertEqual(closes["peer_rst"], 0, closes)
            finally:
                if client is not None:
                    client.kill()
                    client.wait()
                    client.stdout.close()
                rc = srv.stop()
            self.assertEqual(rc, 0, "exit status after SIGTERM: " + srv.output()[-2000:])

    def test_tcp_keepalive_closes_vanished_peer(self):
        # the idle timeout (600 s) cannot be what closes it within the bounded wait
        # and the close is counted as a dead peer, not as a reset (issue #15)
        self.hold_and_cut(["--tcp-keepalive", "1:1:3", "--keepalive-timeout", "600", "--status",
                           "--status-allow", "10.231.0.0/16"], expect_reason="peer_dead")

    def test_idle_timeout_closes_vanished_peer_without_tcp_keepalive(self):
        self.hold_and_cut(["--keepalive-timeout", "3"])


if __name__ == "__main__":
    unittest.main()
