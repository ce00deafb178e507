"""Reliability: the client pool against a vanished server. In two network namespaces made by the
test (veth pair, 10.231.X.0/30, deleted after), `tether get --tcp-keepalive 1:1:3 --interval 30`
fetches a first URL from a server in the other namespace and keeps the connection idle in its
pool; then the link is cut. The pool's TCP keepalive probes fail and the client must drop that
connection (close its fd) while it waits — long before the next request. The server runs with
a 600 s idle timeout so it is not the server that ends the connection. Bounded waits only."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "soak"))
import relkit  # noqa: E402


def tail(path):
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")[-1000:]


def socket_fds(pid):
    n = 0
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        return None
    return n


class VanishedServerTest(unittest.TestCase):
    def test_pool_drops_idle_connection_to_vanished_server(self):
        with relkit.NetnsPair() as net:
            srv = relkit.Server("--echo", "--workers", "1", "--keepalive-timeout", "600", host=net.ip_s, port=8080,
                                netns=net.ns_s)
            client = None
            out = os.path.join(srv.tmp, "get.out")
            try:
                srv.start()
                idle_socks = srv.socket_fds()
                url = "http://%s:8080/" % net.ip_s
                with open(out, "wb") as f:
                    client = subprocess.Popen(net.exec_argv(net.ns_c, [relkit.TETHER, "get", "-v", "--tcp-keepalive",
                                                                       "1:1:3", "--interval", "30", url, url]),
                                              stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                # the first request was served and its connection sits idle in the client's pool
                held = relkit.wait_for(lambda: srv.socket_fds() == idle_socks + 1 and socket_fds(client.pid) == 1,
                                       15 * relkit.SLOW)
                self.assertTrue(held, "no pooled connection (server sockets %s, client sockets %s): %s" %
                                (srv.socket_fds(), socket_fds(client.pid), tail(out)))
                net.cut()
                gone = relkit.wait_for(lambda: socket_fds(client.pid) == 0, 15 * relkit.SLOW, 0.1)
                self.assertIsNone(client.poll(), "client exited instead of waiting its interval")
                self.assertTrue(gone, "client still holds its pooled connection to the vanished server: " + tail(out))
            finally:
                if client is not None and client.poll() is None:
                    client.kill()
                if client is not None:
                    client.wait()
                srv.stop()


if __name__ == "__main__":
    unittest.main()
