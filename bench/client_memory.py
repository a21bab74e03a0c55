#!/usr/bin/env python3
"""Memory a burst of slow clients takes, and how much of it comes back.

Starts the release fleetgate (and a web-demo backend) with the given
`[gateway]` lines, records its resident size, opens N connections that each
send an unfinished request head of B bytes and hold it, records the size
again, closes them all, and records it after the trimmer has had its turn.

    bench/client_memory.py                               # 1000 x 30 KB, default limits
    bench/client_memory.py --head-bytes 1000000 \\
        --gateway 'client_max_header_size = "1m"'        # Pingora's own 1 MiB bound

Prints one line per phase; numbers go to docs/benchmarks.md, not to tests.
"""

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def wait_port(port, limit=20):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--conns", type=int, default=1000)
    p.add_argument("--head-bytes", type=int, default=30_000)
    p.add_argument("--gateway", action="append", default=[], help="extra [gateway] line")
    p.add_argument("--settle", type=float, default=12.0, help="seconds to wait after closing")
    a = p.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    target = os.path.join(ROOT, "target", "release")
    work = tempfile.mkdtemp(prefix="fleetgate-memory-")
    backend = subprocess.Popen(
        [os.path.join(target, "web-demo"), "--listen", "127.0.0.1:18751", "--name", "pod"],
        stdout=subprocess.DEVNULL,
    )
    conf = os.path.join(work, "gw.toml")
    with open(conf, "w") as f:
        f.write(
            '[gateway]\nlisten = ["127.0.0.1:18750"]\nthreads = 2\n'
            + "\n".join(a.gateway)
            + '\ndefault_backend = { namespace = "default", service = "pod", port = 80 }\n'
            '[admin]\nlisten = "127.0.0.1:18752"\n'
            '[[cluster]]\nid = "c1"\n'
            '[[service]]\nname = "pod"\nport = 80\n'
            'endpoints = [ { cluster = "c1", address = "127.0.0.1:18751" } ]\n'
        )
    gateway = subprocess.Popen(
        [os.path.join(target, "fleetgate"), "run", "-c", conf],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(18751)
        wait_port(18750)
        time.sleep(1)
        base = rss_mib(gateway.pid)
        print(f"idle: {base:.1f} MiB")
        head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"a" * a.head_bytes
        socks = []
        refused = 0
        for _ in range(a.conns):
            s = socket.create_connection(("127.0.0.1", 18750))
            try:
                s.sendall(head)
            except OSError:
                refused += 1
            socks.append(s)
        time.sleep(2)
        held = rss_mib(gateway.pid)
        print(
            f"{a.conns} connections holding {a.head_bytes} B heads: {held:.1f} MiB"
            f" (+{held - base:.1f}; {refused} sends refused)"
        )
        for s in socks:
            s.close()
        time.sleep(a.settle)
        after = rss_mib(gateway.pid)
        print(f"{a.settle:.0f} s after they closed: {after:.1f} MiB (+{after - base:.1f})")
    finally:
        gateway.terminate()
        backend.terminate()
        gateway.wait()
        backend.wait()


if __name__ == "__main__":
    main()
