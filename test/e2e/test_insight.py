"""`tether serve --status`: /_tether/status, /metrics, /conn and /dashboard against known traffic,
the loopback-only default and --status-allow, the dashboard and the keep-alive demo page drawn in
headless Chromium, and `tether conns` against sockets the server put in TIME_WAIT / CLOSE_WAIT."""
import http.client
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import zlib

import tt

CLOSE_REASONS = 15


def get(conn, path, headers=None):
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.read()


def fetch(srv, path):
    c = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        return get(c, path)
    finally:
        c.close()


def status(srv):
    st, body = fetch(srv, "/_tether/status")
    if st != 200:
        raise AssertionError("status: %d %r" % (st, body[:200]))
    return json.loads(body)


def png_pixels(data):
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) with zlib only.
    Returns (width, height, rows of bytes, bytes per pixel)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
            bpp = 3 if ctype == 2 else 4
        elif typ == b"IDAT":
            idat += chunk
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows, bpp


def chromium():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    raise AssertionError("chromium is required (scripts/deps.sh installs the Debian package)")


def run_chromium(url, *extra, budget=5000):
    """Headless Chromium on url (bounded); returns (stdout, tmpdir) — the caller removes tmpdir."""
    tmp = tempfile.mkdtemp(prefix="tt-chromium-")
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + os.path.join(tmp, "p"),
            "--window-size=1200,900", "--virtual-time-budget=%d" % budget] + list(extra) + [url]
    p = subprocess.run(args, capture_output=True, text=True, timeout=90)
    return p.stdout, tmp


class InsightTest(tt.TestCase):
    def test_status_fields(self):
        with tt.Tether("--status", "--workers", "2") as srv:
            s = status(srv)
            for k in ("uptime_s", "connections", "requests", "reuse_ratio", "histograms", "closes",
                      "tcp_states", "per_worker", "workers"):
                self.assertIn(k, s)
            for k in ("active", "idle", "accepted", "open", "by_state"):
                self.assertIn(k, s["connections"])
            self.assertEqual(set(s["requests"]), {"total", "reused", "reuse_ratio"})
            self.assertEqual(len(s["closes"]), CLOSE_REASONS)
            self.assertEqual(set(s["limits"]),
                             {"evicted", "handed_in", "body_mem_refused", "log_waits"})
            self.assertEqual(s["workers"], 2)
            self.assertEqual(len(s["per_worker"]), 2)
            self.assertEqual(s["port"], srv.port)
            self.assertGreaterEqual(s["uptime_s"], 0)
            # The kernel's view of the listening port: the two SO_REUSEPORT listeners.
            self.assertEqual(s["tcp_states"]["server"]["LISTEN"], 2)
            self.assertIn("server_closed_first", s["tcp_states"])
            self.assertIn("peer_closed_first", s["tcp_states"])
            # This request is on its connection, so at least one is open and it is not idle.
            self.assertGreaterEqual(s["connections"]["active"], 1)
            self.assertIn("requests_per_connection", s["histograms"])
            self.assertIn("connection_lifetime_ms", s["histograms"])

    def test_ten_requests_on_one_connection(self):
        with tt.Tether("--status", "--echo") as srv:
            before = status(srv)
            c = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
            ids = set()
            for i in range(10):
                st, body = get(c, "/_tether/conn")
                self.assertEqual(st, 200)
                info = json.loads(body)
                ids.add(info["id"])
                self.assertEqual(info["requests"], i + 1)
            self.assertEqual(len(ids), 1, "one connection carried all ten")
            here = c.sock.getsockname()
            self.assertEqual(info["peer"], "%s:%d" % here)
            self.assertEqual(info["local"], "127.0.0.1:%d" % srv.port)
            self.assertGreaterEqual(info["age_ms"], 0)
            self.assertIn("idle_timeout_ms", info)
            after = status(srv)
            c.close()
            self.assertEqual(after["requests"]["reused"] - before["requests"]["reused"], 9)
            # ten on c, plus the second status request itself
            self.assertEqual(after["requests"]["total"] - before["requests"]["total"], 11)
            self.assertGreater(after["reuse_ratio"], 0)

    def test_close_reasons_counted(self):
        with tt.Tether("--status", "--echo") as srv:
            # Poll on one kept-open connection so that polling adds no closes of its own.
            poll = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
            self.addCleanup(poll.close)

            def poll_status():
                st, body = get(poll, "/_tether/status")
                self.assertEqual(st, 200)
                return json.loads(body)

            def closes():
                return poll_status()["closes"]
            # Wait until only the polling connection is open (the harness's readiness probe
            # has been closed and counted), so the deltas below are exactly ours.
            tt.wait_for(lambda: poll_status()["connections"]["open"] == 1, timeout=10)
            before = closes()
            # 1) a request with Connection: close
            s = srv.connect()
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            st, hdrs, _, _ = tt.read_response(s)
            self.assertEqual(st, 200)
            self.assertEqual(hdrs["connection"], ["close"])
            tt.recv_until_close(s)
            s.close()
            # 2) the client closes an idle keep-alive connection (peer FIN)
            s = srv.connect()
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            tt.read_response(s)
            s.close()
            # 3) a bad request
            s = srv.connect()
            s.sendall(b"BROKEN\r\n\r\n")
            st, _, _, _ = tt.read_response(s)
            self.assertEqual(st, 400)
            tt.recv_until_close(s)
            s.close()

            names = list(before)
            want = {n: before[n] for n in names}
            self.assertEqual(names, ["peer_fin", "peer_rst", "conn_close", "max_requests", "max_age",
                                     "idle_timeout", "header_timeout", "body_timeout",
                                     "send_timeout", "bad_request", "shutdown", "pressure", "peer_dead",
                                     "handshake_timeout", "tls_failed"])
            want["conn_close"] += 1
            want["peer_fin"] += 1
            want["bad_request"] += 1
            last = {}

            def done():
                last["c"] = closes()
                return last["c"] == want
            tt.wait_for(done, timeout=10)
            self.assertEqual(last["c"], want)

    def test_metrics_format(self):
        with tt.Tether("--status", "--echo") as srv:
            c = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
            for _ in range(3):
                get(c, "/")
            c.close()
            st, body = fetch(srv, "/_tether/metrics")
            self.assertEqual(st, 200)
            text = body.decode()
            line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_]+="[^"]*"'
                                 r'(,[a-zA-Z_]+="[^"]*")*\})? (-?[0-9.eE+-]+|\+Inf|NaN)$')
            types, samples = {}, {}
            for line in text.splitlines():
                if line.startswith("# TYPE "):
                    _, _, name, typ = line.split(" ")
                    self.assertIn(typ, ("counter", "gauge", "histogram"))
                    types[name] = typ
                    continue
                if line.startswith("# HELP ") or not line:
                    continue
                m = line_re.match(line)
                self.assertTrue(m, "bad metrics line: %r" % line)
                samples[m.group(1) + (m.group(2) or "")] = float(m.group(4))
            for name in ("tether_requests_total", "tether_connections", "tether_closes_total",
                         "tether_requests_reused_total", "tether_connections_accepted_total",
                         "tether_requests_per_connection", "tether_tcp_sockets",
                         "tether_connections_evicted_total", "tether_connections_handed_in_total",
                         "tether_bodies_refused_memory_total", "tether_access_log_waits_total"):
                self.assertIn(name, types)
            self.assertGreaterEqual(samples["tether_requests_total"], 3)
            self.assertGreaterEqual(samples["tether_requests_reused_total"], 2)
            reasons = [k for k in samples if k.startswith("tether_closes_total{")]
            self.assertEqual(len(reasons), CLOSE_REASONS)
            self.assertEqual(samples['tether_tcp_sockets{side="server",state="LISTEN"}'],
                             len(status(srv)["per_worker"]))
            # Histogram buckets are cumulative.
            b = [v for k, v in samples.items() if k.startswith("tether_requests_per_connection_bucket")]
            self.assertEqual(b, sorted(b))

    def test_histogram_after_known_connection(self):
        with tt.Tether("--status", "--echo") as srv:
            c = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
            for _ in range(3):
                get(c, "/")
            c.close()

            def bucket():
                h = status(srv)["histograms"]["requests_per_connection"]["buckets"]
                return [b for b in h if b["min"] <= 3 <= b["max"]]
            got = tt.wait_for(bucket, timeout=10)
            self.assertTrue(got, "a closed 3-request connection shows in the histogram")
            self.assertEqual(got[0]["count"], 1)

    def test_status_allow_excludes_loopback(self):
        with tt.Tether("--status", "--status-allow", "10.0.0.0/8", "--echo") as srv:
            for path in ("/_tether/status", "/_tether/metrics", "/_tether/conn",
                         "/_tether/dashboard"):
                st, _ = fetch(srv, path)
                self.assertEqual(st, 403, path)
            st, body = fetch(srv, "/")
            self.assertEqual(st, 200)

    def test_status_allow_loopback_cidr(self):
        with tt.Tether("--status", "--status-allow", "10.0.0.0/8,127.0.0.1/32") as srv:
            self.assertEqual(fetch(srv, "/_tether/conn")[0], 200)

    def test_off_by_default(self):
        with tt.Tether("--root", os.path.join(tt.ROOT, "site")) as srv:
            st, body = fetch(srv, "/_tether/status")
            self.assertEqual(st, 404)
            self.assertNotIn(b"uptime_s", body)

    def test_bad_status_allow_is_refused(self):
        for bad in ("bogus", "10.0.0.0/33", "::1/129", "10.0.0.0/8,"):
            p = subprocess.run([tt.TETHER, "serve", "--listen", "127.0.0.1:%d" % tt.free_port(),
                                "--status-allow", bad], capture_output=True, text=True, timeout=20)
            self.assertEqual(p.returncode, 2, bad)
            self.assertIn("--status", p.stderr)

    def test_unknown_path_and_method(self):
        with tt.Tether("--status") as srv:
            self.assertEqual(fetch(srv, "/_tether/nope")[0], 404)
            c = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
            c.request("POST", "/_tether/status", body=b"x")
            r = c.getresponse()
            r.read()
            c.close()
            self.assertEqual(r.status, 405)

    def test_conns_sees_server_time_wait_and_client_close_wait(self):
        with tt.Tether("--status", "--echo", "--keepalive-timeout", "1") as srv:
            s = srv.connect()
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            tt.read_response(s)
            # The server's idle timeout closes first; we keep our socket: CLOSE_WAIT here.
            p = ["--port", str(srv.port), "--json"]

            def conns():
                out = subprocess.run([tt.TETHER, "conns"] + p, capture_output=True, text=True,
                                     timeout=20).stdout
                return json.loads(out)
            last = {}

            def close_wait():
                last["j"] = conns()
                return last["j"]["client"]["CLOSE_WAIT"] == 1 and last["j"]["server"]["FIN_WAIT2"] == 1
            tt.wait_for(close_wait, timeout=15)
            self.assertEqual(last["j"]["client"]["CLOSE_WAIT"], 1)
            self.assertEqual(last["j"]["server"]["FIN_WAIT2"], 1)
            self.assertEqual(tt.tcp_states(srv.port)["client"].get("CLOSE_WAIT"), 1)
            ts = status(srv)["tcp_states"]
            self.assertEqual(ts["client"]["CLOSE_WAIT"], 1)
            self.assertEqual(ts["server_closed_first"]["FIN_WAIT2"], 1)
            s.close()

            def time_wait():
                last["j"] = conns()
                return last["j"]["server"]["TIME_WAIT"] >= 1 and last["j"]["server"]["FIN_WAIT2"] == 0
            tt.wait_for(time_wait, timeout=15)
            self.assertGreaterEqual(last["j"]["server"]["TIME_WAIT"], 1)
            out = subprocess.run([tt.TETHER, "conns", "--port", str(srv.port)], capture_output=True,
                                 text=True, timeout=20).stdout
            self.assertIn("TIME_WAIT is on the server side", out)
            self.assertGreaterEqual(status(srv)["tcp_states"]["server_closed_first"]["TIME_WAIT"], 1)
            self.assertGreaterEqual(status(srv)["closes"]["idle_timeout"], 1)

    def test_dashboard_in_chromium(self):
        with tt.Tether("--status", "--echo") as srv:
            c = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
            for _ in range(5):
                get(c, "/")
            c.close()
            st, body = fetch(srv, "/_tether/dashboard")
            self.assertEqual(st, 200)
            self.assertNotIn(b"http://", body.replace(b"http://www.w3.org", b""))  # no CDN
            self.assertNotIn(b"https://", body)
            dom, tmp = run_chromium(srv.url("/_tether/dashboard"), "--dump-dom")
            try:
                self.assertRegex(dom, r'data-charts="drawn"')
                draws = int(re.search(r'data-draws="(\d+)"', dom).group(1))
                self.assertGreaterEqual(draws, 2, "it refreshed")
                png = os.path.join(tmp, "shot.png")
                _, tmp2 = run_chromium(srv.url("/_tether/dashboard"), "--screenshot=" + png)
                shutil.rmtree(tmp2, ignore_errors=True)
                with open(png, "rb") as f:
                    data = f.read()
                w, h, rows, bpp = png_pixels(data)
                self.assertEqual((w, h), (1200, 900))
                colours, coloured = set(), 0
                for y in range(0, h, 3):
                    row = rows[y]
                    for x in range(0, w * bpp, bpp * 3):
                        r, g, b = row[x], row[x + 1], row[x + 2]
                        colours.add((r, g, b))
                        if max(r, g, b) - min(r, g, b) > 60:
                            coloured += 1
                # Chart lines and bars in several colours, not a blank or text-only page.
                self.assertGreater(len(colours), 50)
                self.assertGreater(coloured, 300)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

    def test_keepalive_page_in_chromium(self):
        site = os.path.join(tt.ROOT, "site")
        with tt.Tether("--status", "--root", site) as srv:
            dom, tmp = run_chromium(srv.url("/keepalive.html"), "--dump-dom", budget=3000)
            shutil.rmtree(tmp, ignore_errors=True)
            m = re.search(r'data-conn="id=(\d+) requests=(\d+)"', dom)
            self.assertTrue(m, "the page asked /_tether/conn: %r" % dom[:300])
            self.assertGreaterEqual(int(m.group(2)), 1)


if __name__ == "__main__":
    import unittest
    unittest.main()
