"""tether behind nginx (docs/deploy.md, "Behind nginx"): nginx keeps upstream connections alive
to two tether servers, so hundreds of requests ride a handful of connections; a tether that
closes idle upstream connections first (a keep-alive timeout below nginx's) costs no request,
because the FIN reaches nginx's cache; a drained and stopped tether costs no request either
(nginx retries the idempotent request on the other one)."""
import http.client
import json
import time

import tt

HTTP = """
  access_log off;
  upstream tether {{
    server 127.0.0.1:{a} max_fails=2 fail_timeout=5s;
    server 127.0.0.1:{b} max_fails=2 fail_timeout=5s;
    keepalive 8;
    keepalive_timeout 60s;
    keepalive_requests 1000;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://tether;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_next_upstream error timeout http_502;
    }}
  }}
"""


def status(srv):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        c.request("GET", "/_tether/status")
        return json.loads(c.getresponse().read())
    finally:
        c.close()


class NginxFront(tt.TestCase):
    def front(self, *args):
        """Two tether servers (extra args) behind one nginx; returns (a, b, nginx)."""
        a = tt.Tether("--echo", "--status", "--workers", "1", *args).__enter__()
        self.addCleanup(a.__exit__, None, None, None)
        b = tt.Tether("--echo", "--status", "--workers", "1", *args).__enter__()
        self.addCleanup(b.__exit__, None, None, None)
        ng = tt.Nginx(HTTP, prefix="tt-front-", a=a.port, b=b.port).__enter__()
        self.addCleanup(ng.__exit__, None, None, None)
        return a, b, ng

    def requests(self, ng, n, pause=0.0):
        """n GETs through nginx on one client connection; returns the statuses."""
        c = http.client.HTTPConnection("127.0.0.1", ng.port, timeout=10)
        out = []
        for i in range(n):
            c.request("GET", "/r%d" % i)
            r = c.getresponse()
            body = r.read()
            out.append(r.status if body == b"Hello, World!" else -r.status)
            if pause:
                time.sleep(pause)
        c.close()
        return out

    def test_upstream_connections_are_reused(self):
        a, b, ng = self.front()
        self.assertEqual(self.requests(ng, 300), [200] * 300)
        sa, sb = status(a), status(b)
        reqs = sa["requests"]["total"] + sb["requests"]["total"] - 2  # minus our status calls
        accepted = sa["connections"]["accepted"] + sb["connections"]["accepted"] - 2
        self.assertGreaterEqual(reqs, 300)
        self.assertLessEqual(accepted, 8, "nginx opened %d upstream connections" % accepted)
        self.assertEqual(sa["tcp_states"]["close_wait"] + sb["tcp_states"]["close_wait"], 0)

    def test_tether_closing_idle_upstreams_first_costs_nothing(self):
        # tether's idle timeout (1 s) is below nginx's upstream keepalive_timeout (60 s): the
        # misconfiguration docs/deploy.md warns about. tether closes first, nginx sees the FIN
        # on its cached connection and drops it; the next request opens a fresh one.
        a, b, ng = self.front("--keepalive-timeout", "1")
        self.assertEqual(self.requests(ng, 6, pause=1.3), [200] * 6)
        closes = status(a)["closes"]["idle_timeout"] + status(b)["closes"]["idle_timeout"]
        self.assertGreaterEqual(closes, 4, "tether closed idle upstream connections")

    def test_draining_one_backend_costs_nothing(self):
        a, b, ng = self.front()
        self.assertEqual(self.requests(ng, 50), [200] * 50)
        self.assertEqual(a.stop(), 0)  # graceful: idle upstream connections closed, then exit
        self.assertEqual(self.requests(ng, 100), [200] * 100)
        self.assertGreaterEqual(status(b)["requests"]["total"], 100)


if __name__ == "__main__":
    import unittest
    unittest.main()
