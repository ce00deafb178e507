"""`tether conns` names who holds the sockets (issue #15): "by_process" in --json (sock_diag
inodes matched against /proc/PID/fd, as `ss -p`), the process named behind a CLOSE_WAIT pile-up
in the text view, and advice that names tether's flags only for a tether listener, nginx's
directives for nginx, and the general remedy for anything else."""
import json
import os
import shutil
import socket
import subprocess
import sys
import unittest

import tt

HOLDER = r"""
import socket, sys
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(64)
print(l.getsockname()[1], flush=True)
held = []
while True:
    c, _ = l.accept()
    if sys.argv[1] == "close":
        c.close()       # the server closes first: TIME_WAIT on its side
    else:
        held.append(c)  # never closed: CLOSE_WAIT once the peer closes
"""


def conns(port, *args):
    p = subprocess.run([tt.TETHER, "conns", "--port", str(port)] + list(args),
                       capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        raise AssertionError("tether conns failed (%d): %s" % (p.returncode, p.stderr))
    return p.stdout


def by_pid(j, pid):
    for p in j["by_process"]:
        if p["pid"] == pid:
            return p
    return None


class Holder:
    """A python process (not this one) listening on a loopback port, holding every connection
    it accepts."""

    def __init__(self, mode="hold"):
        self.mode = mode

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, self.mode],
                                     stdout=subprocess.PIPE,
                                     text=True)
        self.port = int(self.proc.stdout.readline())
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


class Owners(tt.TestCase):
    def test_python_holding_close_wait_is_named_with_its_pid(self):
        with Holder() as h:
            for _ in range(4):
                c = socket.create_connection(("127.0.0.1", h.port))
                c.close()  # we close; the holder never does: CLOSE_WAIT on its side
            last = {}

            def held():
                last["j"] = json.loads(conns(h.port, "--json"))
                p = by_pid(last["j"], h.proc.pid)
                return p is not None and p["states"].get("CLOSE_WAIT") == 4
            tt.wait_for(held, timeout=10)
            p = by_pid(last["j"], h.proc.pid)
            self.assertIsNotNone(p, last["j"])
            self.assertEqual(p["name"], os.path.basename(sys.executable)[:15])
            self.assertEqual(p["states"], {"LISTEN": 1, "CLOSE_WAIT": 4})
            self.assertIsNone(by_pid(last["j"], os.getpid()))  # our sockets are closed
            out = conns(h.port)
            self.assertRegex(out, r"  python3?\S* +%d  CLOSE_WAIT 4, LISTEN 1\n" % h.proc.pid)
            self.assertRegex(out, r"4 sockets in CLOSE_WAIT on :%d — held by python3?\S* "
                             r"\(pid %d: 4\)" % (h.port, h.proc.pid))
            # Not a tether listener: the general remedy, no tether flag.
            self.assertIn("must close a socket once a read returns 0", out)
            self.assertNotIn(" --", out)

    def server_time_wait(self, port, close_first):
        """Leave one server-side TIME_WAIT on port: close_first(sock) makes the server close
        first; then we close. Returns the text view."""
        s = socket.create_connection(("127.0.0.1", port))
        close_first(s)
        s.close()
        tt.wait_for(lambda: json.loads(conns(port, "--json"))["server"]["TIME_WAIT"] >= 1,
                    timeout=15)
        return conns(port)

    def test_advice_differs_for_tether_and_python_listeners(self):
        def tether_closes(s):
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            tt.read_response(s)
            self.assertEqual(tt.recv_until_close(s), b"")  # the idle timeout closes first

        with tt.Tether("--echo", "--keepalive-timeout", "1") as srv:
            out = self.server_time_wait(srv.port, tether_closes)
            j = json.loads(conns(srv.port, "--json"))
            self.assertEqual(by_pid(j, srv.proc.pid)["name"], "tether")
            self.assertGreaterEqual(by_pid(j, srv.proc.pid)["states"]["LISTEN"], 1)
        self.assertIn("tether listens on :%d" % srv.port, out)
        self.assertIn("TIME_WAIT is on the server side", out)
        self.assertIn("see --keepalive-timeout", out)

        with Holder("close") as h:
            def python_closes(s):
                self.assertEqual(tt.recv_until_close(s), b"")
            out2 = self.server_time_wait(h.port, python_closes)
        self.assertIn("python3", out2.split("What this means:")[1])
        self.assertIn("TIME_WAIT is on the server side", out2)
        self.assertNotIn("--keepalive-timeout", out2)
        self.assertNotIn("keepalive_timeout", out2)
        self.assertIn("the server's keep-alive idle timeout", out2)

    @unittest.skipUnless(shutil.which("nginx"), "nginx not installed")
    def test_advice_names_nginx_directives_for_nginx(self):
        conf = ("server {{ listen 127.0.0.1:{port}; keepalive_timeout 1s; access_log off;"
                " location / {{ return 200 'ok'; }} }}")
        with tt.Nginx(conf) as ng:
            def nginx_closes(s):
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                tt.read_response(s)
                self.assertEqual(tt.recv_until_close(s), b"")
            out = self.server_time_wait(ng.port, nginx_closes)
        self.assertIn("nginx listens on :%d" % ng.port, out)
        self.assertIn("keepalive_timeout", out)
        self.assertNotIn("--keepalive-timeout", out)


if __name__ == "__main__":
    unittest.main()
