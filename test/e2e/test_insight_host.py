"""`tether serve --status`: who may reach /_tether/ (issue #16). --status-allow refuses a
malformed CIDR by name; the pages answer only under a Host the server answers to (localhost,
a loopback address, the address the request came in on, a --listen name), so a page in a local
browser cannot read them through DNS rebinding (a name of the attacker's resolving to
127.0.0.1). Also ?pretty indents the JSON pages."""
import json
import socket
import subprocess

import tt


def fetch(srv, path, host=None, http10=False):
    """GET path with the given Host header (None: http.client's own); (status, body)."""
    s = srv.connect()
    try:
        if http10:
            s.sendall(b"GET %s HTTP/1.0\r\n\r\n" % path.encode())
        else:
            h = host if host is not None else "%s:%d" % (srv.host, srv.port)
            s.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                      % (path.encode(), h.encode()))
        s.shutdown(socket.SHUT_WR)  # our FIN: the server closes after the response at once
        data = tt.recv_until_close(s)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


class StatusAllow(tt.TestCase):
    def serve(self, allow):
        return subprocess.run([tt.TETHER, "serve", "--listen", "127.0.0.1:%d" % tt.free_port(),
                               "--status-allow", allow], capture_output=True, text=True,
                              timeout=5)

    def test_malformed_cidr_is_a_usage_error_naming_it(self):
        # "/-1" and "/+8" and "/ 8" were taken by strtol (-1 became "no prefix": /32) before.
        for bad, shown in (("10.0.0.0/-1", "'10.0.0.0/-1'"), ("10.0.0.0/+8", "'10.0.0.0/+8'"),
                           ("127.0.0.1/8,10.0.0.0/ 8", "'10.0.0.0/ 8'"),
                           ("10.0.0.0/33", "'10.0.0.0/33'"), ("::1/129", "'::1/129'"),
                           ("10.0.0.0/8,bogus", "'bogus'"), ("10.0.0.0/8,", "an empty element")):
            try:
                p = self.serve(bad)
            except subprocess.TimeoutExpired:
                self.fail("--status-allow %r was accepted (the server started)" % bad)
            self.assertEqual(p.returncode, 2, bad)
            self.assertIn("--status-allow", p.stderr, bad)
            self.assertIn(shown, p.stderr, bad)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)  # said once


class HostCheck(tt.TestCase):
    def test_rebinding_host_is_refused(self):
        with tt.Tether("--status", "--echo") as srv:
            for host in ("attacker.example", "attacker.example:%d" % srv.port,
                         "127.0.0.1.attacker.example", "localhost.attacker.example",
                         "", "localhost:x", "[::1"):
                st, body = fetch(srv, "/_tether/status", host)
                self.assertIn(st, (400, 403), host)
                self.assertNotIn(b"uptime_s", body, host)
            st, body = fetch(srv, "/_tether/status", "attacker.example")
            self.assertEqual(st, 403)
            self.assertIn(b"Host", body)
            # Everything else the server serves is not affected.
            self.assertEqual(fetch(srv, "/", "attacker.example")[0], 200)

    def test_local_names_with_and_without_port(self):
        with tt.Tether("--status", "--echo") as srv:
            for host in ("localhost", "localhost:%d" % srv.port, "LOCALHOST.", "127.0.0.1",
                         "127.0.0.1:%d" % srv.port, "[::1]", "[::1]:%d" % srv.port,
                         "app.localhost:%d" % srv.port):
                st, body = fetch(srv, "/_tether/status", host)
                self.assertEqual(st, 200, host)
                self.assertIn(b"uptime_s", body)
            # HTTP/1.0 without Host: no browser sends that; allowed.
            self.assertEqual(fetch(srv, "/_tether/conn", http10=True)[0], 200)

    def test_listen_name_and_local_address(self):
        # The address the request arrived on (a wildcard listener reached on 127.0.0.2) and the
        # machine's name are names the server answers to.
        port = tt.free_port()
        with tt.Tether("--status", "--echo", port=port, host="0.0.0.0") as srv:
            srv.host = "127.0.0.2"
            self.assertEqual(fetch(srv, "/_tether/status", "127.0.0.2:%d" % port)[0], 200)
            self.assertEqual(fetch(srv, "/_tether/status", socket.gethostname())[0], 200)
            self.assertEqual(fetch(srv, "/_tether/status", "evil.example")[0], 403)


class Pretty(tt.TestCase):
    def test_pretty_indents_status_and_conn(self):
        with tt.Tether("--status", "--echo") as srv:
            for path in ("/_tether/status", "/_tether/conn"):
                st, compact = fetch(srv, path)
                self.assertEqual(st, 200)
                self.assertEqual(compact.count(b"\n"), 1, path)
                st, pretty = fetch(srv, path + "?pretty")
                self.assertEqual(st, 200)
                self.assertGreater(pretty.count(b"\n"), 5, path)
                self.assertIn(b'\n  "', pretty)
                self.assertEqual(set(json.loads(pretty)), set(json.loads(compact)))
                st, off = fetch(srv, path + "?x=1&pretty=0")
                self.assertEqual(off.count(b"\n"), 1, path)


if __name__ == "__main__":
    import unittest
    unittest.main()
