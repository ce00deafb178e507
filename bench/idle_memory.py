#!/usr/bin/env python3
"""User-space memory per idle keep-alive connection of a server, measured as the growth of the
server's RSS (and Private_Dirty) while N connections sit idle after one request each.

    python3 bench/idle_memory.py [--n 10000] [--server tether|nginx|CMD...]

Default: build/tether serve --echo --workers 1 on a free loopback port. The client side is this
process (raises RLIMIT_NOFILE to its hard limit). Loopback only; bounded in count and time."""
import argparse
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mem(pid):
    """(VmRSS, Private_Dirty) in bytes, summed over the process."""
    rss = dirty = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                dirty = int(line.split()[1]) * 1024
    return rss, dirty


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--bin", default=os.environ.get("TETHER_BIN", os.path.join(ROOT, "build", "tether")))
    ap.add_argument("--burst", type=int, default=100, help="requests in flight while connecting")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = free_port()
    proc = subprocess.Popen([args.bin, "serve", "--listen", "127.0.0.1:%d" % port, "--echo",
                             "--workers", "1", "--max-connections", str(args.n + 100)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        # warm up: one connection, a few requests, so that one-time allocations are counted out
        s = socket.create_connection(("127.0.0.1", port))
        for _ in range(10):
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(4096)
        s.close()
        time.sleep(0.3)
        base = mem(proc.pid)
        socks = []
        req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        t0 = time.time()
        for i in range(0, args.n, args.burst):
            batch = []
            for _ in range(min(args.burst, args.n - i)):
                c = socket.create_connection(("127.0.0.1", port))
                c.sendall(req)
                batch.append(c)
            for c in batch:
                got = b""
                while not got.endswith(b"Hello, World!"):
                    b = c.recv(4096)
                    if not b:
                        raise RuntimeError("server closed a connection")
                    got += b
            socks.extend(batch)
            if time.time() - t0 > 120:
                raise RuntimeError("too slow")
        time.sleep(1.0)
        idle = mem(proc.pid)
        n = len(socks)
        d_rss = idle[0] - base[0]
        d_dirty = idle[1] - base[1]
        print("idle connections: %d" % n)
        print("RSS: %.1f MiB -> %.1f MiB, %.0f bytes per idle connection" %
              (base[0] / 2**20, idle[0] / 2**20, d_rss / n))
        print("Private_Dirty: %.0f bytes per idle connection" % (d_dirty / n))
        for c in socks:
            c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
