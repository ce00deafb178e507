"""`tether conns`: the kernel's TCP states on a port through sock_diag, split server/client,
checked against sockets this test puts into TIME_WAIT and CLOSE_WAIT on purpose (and against
/proc/net/tcp through tt.tcp_states as an independent reading)."""
import json
import os
import socket
import subprocess

import tt

STATES = ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
          "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"]


def conns(*args, timeout=20):
    p = subprocess.run([tt.TETHER, "conns"] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    return p


def conns_json(port):
    p = conns("--port", str(port), "--json")
    if p.returncode != 0:
        raise AssertionError("tether conns failed (%d): %s" % (p.returncode, p.stderr))
    return json.loads(p.stdout)


def nonzero(d):
    return {k: v for k, v in d.items() if v}


class Listener:
    """A tiny python server on a free loopback port: accept connections, close them when told."""

    def __init__(self, family=socket.AF_INET, host="127.0.0.1"):
        # Counts are per port, over every address and family: a port is only usable when no
        # socket at all touches it (a TIME_WAIT left on [::1]:P by an earlier run does not stop
        # a bind to 127.0.0.1:P, yet tether conns --port P rightly counts it).
        for _ in range(50):
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            self.sock.bind((host, tt.free_port(family, host)))
            self.sock.listen(64)
            port = self.sock.getsockname()[1]
            if tt.tcp_states(port) == {"server": {"LISTEN": 1}, "client": {}}:
                break
            self.sock.close()
        self.host = host
        self.family = family
        self.port = self.sock.getsockname()[1]
        self.keep = []

    def pair(self):
        c = socket.socket(self.family, socket.SOCK_STREAM)
        c.connect((self.host, self.port))
        s, _ = self.sock.accept()
        self.keep += [c, s]
        return c, s

    def close(self):
        for s in self.keep + [self.sock]:
            s.close()


class ConnsTest(tt.TestCase):
    def setUp(self):
        self.listeners = []

    def tearDown(self):
        for ln in self.listeners:
            ln.close()

    def listener(self, *a, **kw):
        ln = Listener(*a, **kw)
        self.listeners.append(ln)
        return ln

    def wait_states(self, port, server, client):
        """Bounded wait until tether reports exactly these nonzero counts (the kernel finishes
        close handshakes asynchronously) twice in a row, with /proc/net/tcp read between the
        two agreeing: the counts have settled, so tether's JSON and the independent reading
        describe the same instant. Returns tether's last JSON and that /proc reading."""
        last = {"proc": None}

        def ok():
            want = {"server": server, "client": client}
            last["j"] = conns_json(port)
            if {k: nonzero(last["j"][k]) for k in want} != want:
                return False
            last["proc"] = tt.tcp_states(port)
            again = conns_json(port)
            return last["proc"] == want and {k: nonzero(again[k]) for k in want} == want
        tt.wait_for(ok, timeout=10)
        return last["j"], last["proc"]

    def test_json_shape_lists_every_state(self):
        ln = self.listener()
        j = conns_json(ln.port)
        self.assertEqual(set(j.keys()), {"port", "server", "client", "by_process", "unowned"})
        self.assertEqual(j["port"], ln.port)
        self.assertEqual(list(j["server"].keys()), STATES)
        self.assertEqual(list(j["client"].keys()), STATES)
        self.assertEqual(nonzero(j["server"]), {"LISTEN": 1})
        self.assertEqual(nonzero(j["client"]), {})

    def test_established_both_sides(self):
        ln = self.listener()
        for _ in range(3):
            ln.pair()
        j = conns_json(ln.port)
        self.assertEqual(nonzero(j["server"]), {"LISTEN": 1, "ESTABLISHED": 3})
        self.assertEqual(nonzero(j["client"]), {"ESTABLISHED": 3})
        self.assertEqual(tt.tcp_states(ln.port), {"server": nonzero(j["server"]),
                                                  "client": nonzero(j["client"])})
        out = conns("--port", str(ln.port)).stdout
        self.assertIn("Healthy", out)
        self.assertIn("3 established connections", out)

    def test_server_closes_first_time_wait_on_server(self):
        ln = self.listener()
        pairs = [ln.pair() for _ in range(4)]
        for c, s in pairs:
            s.close()                  # the server closes first ...
            self.assertEqual(c.recv(1), b"")
            c.close()                  # ... and the client answers with its own FIN
        j, proc = self.wait_states(ln.port, {"LISTEN": 1, "TIME_WAIT": 4}, {})
        self.assertEqual(nonzero(j["server"]), {"LISTEN": 1, "TIME_WAIT": 4})
        self.assertEqual(nonzero(j["client"]), {})
        self.assertEqual(proc["server"], nonzero(j["server"]))
        out = conns("--port", str(ln.port)).stdout
        self.assertIn("TIME_WAIT is on the server side — the server closes first (4 sockets on "
                      ":%d); keeping connections alive longer" % ln.port, out)
        self.assertNotIn("--keepalive-timeout", out)  # a python listener: no tether flags
        self.assertNotIn("Healthy", out)

    def test_client_closes_first_time_wait_on_client(self):
        ln = self.listener()
        pairs = [ln.pair() for _ in range(3)]
        for c, s in pairs:
            c.close()                  # the client closes first (the healthy way round)
            self.assertEqual(s.recv(1), b"")
            s.close()
        j, proc = self.wait_states(ln.port, {"LISTEN": 1}, {"TIME_WAIT": 3})
        self.assertEqual(nonzero(j["client"]), {"TIME_WAIT": 3})
        self.assertEqual(nonzero(j["server"]), {"LISTEN": 1})
        self.assertEqual(proc["client"], {"TIME_WAIT": 3})
        out = conns("--port", str(ln.port)).stdout
        self.assertIn("3 client-side sockets in TIME_WAIT — the clients closed first", out)
        self.assertNotIn("TIME_WAIT is on the server side", out)

    def test_close_wait_on_server_is_a_leak(self):
        ln = self.listener()
        pairs = [ln.pair() for _ in range(5)]
        for c, s in pairs:
            c.close()                  # the peer closes; our server never closes its socket
        j, proc = self.wait_states(ln.port, {"LISTEN": 1, "CLOSE_WAIT": 5}, {"FIN_WAIT2": 5})
        self.assertEqual(nonzero(j["server"]), {"LISTEN": 1, "CLOSE_WAIT": 5})
        self.assertEqual(nonzero(j["client"]), {"FIN_WAIT2": 5})
        self.assertEqual(proc, {"server": nonzero(j["server"]), "client": nonzero(j["client"])})
        out = conns("--port", str(ln.port)).stdout
        self.assertIn("5 sockets in CLOSE_WAIT on :%d — held by %s (pid %d: 5) — the application "
                      "is not closing connections its peers closed"
                      % (ln.port, open("/proc/self/comm").read().strip(), os.getpid()), out)

    def test_close_wait_on_client_side(self):
        ln = self.listener()
        c, s = ln.pair()
        s.close()                      # the server closes; the client keeps its socket open
        j, _ = self.wait_states(ln.port, {"LISTEN": 1, "FIN_WAIT2": 1}, {"CLOSE_WAIT": 1})
        self.assertEqual(nonzero(j["client"]), {"CLOSE_WAIT": 1})
        self.assertEqual(nonzero(j["server"]), {"LISTEN": 1, "FIN_WAIT2": 1})
        out = conns("--port", str(ln.port)).stdout
        self.assertIn("1 client socket to :%d in CLOSE_WAIT" % ln.port, out)

    def test_ipv6_sockets_are_counted(self):
        ln = self.listener(socket.AF_INET6, "::1")
        ln.pair()
        j = conns_json(ln.port)
        self.assertEqual(nonzero(j["server"]), {"LISTEN": 1, "ESTABLISHED": 1})
        self.assertEqual(nonzero(j["client"]), {"ESTABLISHED": 1})

    def test_list_shows_four_tuples(self):
        ln = self.listener()
        c, s = ln.pair()
        cport = c.getsockname()[1]
        out = conns("--port", str(ln.port), "--list").stdout
        self.assertRegex(out, r"server ESTABLISHED +127\.0\.0\.1:%d +127\.0\.0\.1:%d"
                         % (ln.port, cport))
        self.assertRegex(out, r"client ESTABLISHED +127\.0\.0\.1:%d +127\.0\.0\.1:%d"
                         % (cport, ln.port))

    def test_watch_with_count_repeats(self):
        ln = self.listener()
        p = conns("--port", str(ln.port), "--json", "--watch", "1", "--count", "2")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.strip().splitlines()
        self.assertEqual(len(lines), 2)
        for line in lines:
            self.assertEqual(nonzero(json.loads(line)["server"]), {"LISTEN": 1})

    def test_nothing_on_port(self):
        port = tt.free_port()
        j = conns_json(port)
        self.assertEqual(nonzero(j["server"]), {})
        self.assertEqual(nonzero(j["client"]), {})
        self.assertIn("No TCP sockets use port %d" % port, conns("--port", str(port)).stdout)

    def test_default_port_and_bad_arguments(self):
        p = conns("--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["port"], 8080)
        for bad in (["--port", "0"], ["--port", "70000"], ["--port", "x"], ["--watch"],
                    ["--frobnicate"]):
            self.assertEqual(conns(*bad).returncode, 2, bad)
        self.assertEqual(conns("--help").returncode, 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
