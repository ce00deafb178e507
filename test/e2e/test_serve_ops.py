"""tether serve, operating it (issue #15): a busy port is an error unless --reuseport asks to
share it, --listen errors name the address, --listen unix:PATH serves on a Unix-domain socket."""
import http.client
import os
import shutil
import socket
import subprocess
import tempfile

import tt


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=5)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.path)


def run_serve(*args, timeout=10):
    """Run `tether serve ARGS` expecting it to fail at start: (exit status, stderr)."""
    p = subprocess.run([tt.TETHER, "serve", "--echo"] + list(args), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stderr.decode()


class Listen(tt.TestCase):
    def test_busy_port_is_an_error(self):
        with tt.Tether("--echo", "--workers", "2") as srv:
            addr = "127.0.0.1:%d" % srv.port
            rc, err = run_serve("--listen", addr, "--workers", "1")
            self.assertNotEqual(rc, 0)
            self.assertIn(addr, err)
            self.assertIn("in use", err)

    def test_reuseport_shares_explicitly(self):
        with tt.Tether("--echo", "--workers", "1") as old:
            with tt.Tether("--echo", "--workers", "1", "--reuseport", port=old.port) as new:
                self.assertIsNone(new.proc.poll())

    def test_second_address_named(self):
        port = tt.free_port()
        rc, err = run_serve("--listen", "127.0.0.1:%d" % port, "--listen", "nonsense:1")
        self.assertNotEqual(rc, 0)
        self.assertIn("nonsense:1", err)

    def test_unix_socket(self):
        d = tempfile.mkdtemp(prefix="tt-unix-")
        path = os.path.join(d, "s.sock")
        try:
            args = [tt.TETHER, "serve", "--echo", "--workers", "2", "--listen", "unix:" + path]
            p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                self.assertTrue(tt.wait_for(lambda: os.path.exists(path), timeout=10))
                c = UnixHTTPConnection(path)
                for _ in range(3):  # keep-alive over the Unix socket
                    c.request("POST", "/", body=b"ping")
                    r = c.getresponse()
                    self.assertEqual(r.status, 200)
                    self.assertEqual(r.read(), b"ping")
                c.close()
                if shutil.which("curl"):
                    out = subprocess.run(["curl", "-s", "--unix-socket", path, "http://x/"],
                                         stdout=subprocess.PIPE, timeout=10).stdout
                    self.assertEqual(out, b"Hello, World!")
            finally:
                p.terminate()
                p.wait(10)
                p.stderr.close()
            self.assertFalse(os.path.exists(path), "the socket file is removed at exit")
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    import unittest
    unittest.main()
