#!/usr/bin/env python3
"""Deterministic HTTP/1.1 keep-alive client for bench/instructions.sh.

Sends WARMUP then REQUESTS GET requests, one at a time, over CONNECTIONS
persistent connections (used in turn) to the proxy, reads every full
response, and exits non-zero if any response is not 200 or a connection is
closed. The Host headers follow the workload, like bench/lua/*.lua (but from
a fixed starting point, so that every run sends the same bytes):

  a    every request to --host (bench.example.com)
  b    request i to host-(i % HOSTS).example.com
  c    as b, and every CANARY_EVERY-th request (the 20th, 40th, ...) carries
       `x-canary: always`

--between runs a shell command after the warm-up and --after one after the
measured requests, both while the connections are still open, so that a
profile can cover exactly the measured requests (no connection set-up or
tear-down). --wait-ready first polls until the proxy answers 200. Prints
the seconds the measured requests took on stdout.

  instr_client.py --workload b --hosts 1000 --warmup 2000 -n 20000 \\
      --between 'callgrind_control -z 1234' --after 'callgrind_control -d 1234'

Standard library only.
"""

import argparse
import os
import socket
import subprocess
import sys
import time


def fail(msg):
    """Exits with `msg`."""
    print(f"instr_client: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def requests_for(args):
    """The request byte strings, and a function from index to request."""
    if args.workload == "a" or args.workload.startswith("p-"):
        # The p-* workloads' route policies: basic auth needs credentials
        # (bench:bench), CORS an allowed origin.
        extra = ""
        if args.workload in ("p-auth", "p-all"):
            extra += "Authorization: Basic YmVuY2g6YmVuY2g=\r\n"
        if args.workload in ("p-cors", "p-all"):
            extra += "Origin: https://app.example.com\r\n"
        one = f"GET / HTTP/1.1\r\nHost: {args.host}\r\n{extra}\r\n".encode()
        return lambda i: one
    hosts = [f"host-{i}.example.com" for i in range(args.hosts)]
    plain = [f"GET / HTTP/1.1\r\nHost: {h}\r\n\r\n".encode() for h in hosts]
    canary = [f"GET / HTTP/1.1\r\nHost: {h}\r\nx-canary: always\r\n\r\n".encode() for h in hosts]
    every = args.canary_every if args.workload == "c" else 0

    def request(i):
        if every > 0 and (i + 1) % every == 0:
            return canary[i % len(hosts)]
        return plain[i % len(hosts)]

    return request


class Conn:
    """One keep-alive connection with a read buffer."""

    def __init__(self, addr, timeout):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        """Closes the socket."""
        self.sock.close()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed by the proxy")
        self.buf += data

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def _exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def roundtrip(self, request):
        """Sends `request`; returns (status, headers dict, body)."""
        self.sock.sendall(request)
        status_line = self._line()
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ConnectionError(f"bad status line {status_line!r}")
        status = int(parts[1])
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode()] = value.strip().decode()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():  # trailers
                        pass
                    break
                body += self._exactly(size)
                self._line()
        elif "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        else:
            raise ConnectionError(f"response without length (status {status}, headers {headers})")
        return status, headers, body


def wait_ready(args, request):
    """Polls until one request gets a 200, or fails after --wait-ready s."""
    deadline = time.monotonic() + args.wait_ready
    last = None
    while time.monotonic() < deadline:
        if args.pid and not os.path.exists(f"/proc/{args.pid}"):
            fail(f"process {args.pid} exited before the proxy was ready")
        try:
            c = Conn(args.addr, 5)
            try:
                status, _, _ = c.roundtrip(request(0))
            finally:
                c.close()
            if status == 200:
                return
            last = f"status {status}"
        except OSError as e:
            last = e
        time.sleep(0.1)
    fail(f"proxy on {args.addr} not ready after {args.wait_ready}s: {last}")


def hook(cmd, what):
    """Runs the shell command `cmd`, failing loudly."""
    if cmd:
        r = subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            fail(f"{what} command failed ({r.returncode}): {cmd}\n{r.stdout}{r.stderr}")


def run(conns, request, start, count):
    """Sends requests start..start+count, in turn over `conns`."""
    for i in range(start, start + count):
        c = conns[i % len(conns)]
        try:
            status, headers, body = c.roundtrip(request(i))
        except (OSError, ValueError) as e:
            fail(f"request {i}: {e}")
        if status != 200:
            fail(f"request {i}: status {status}, headers {headers}, body {body[:200]!r}")
        if headers.get("connection", "").lower() == "close":
            fail(f"request {i}: the proxy closed the keep-alive connection")


def main():
    """Parses the arguments and sends the requests."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--addr", default="127.0.0.1:8400")
    ap.add_argument("--workload", required=True,
                    choices=("a", "b", "c", "p-allow", "p-limit", "p-auth", "p-cors", "p-headers", "p-all",
                             "p-regex", "p-rewrite", "p-hash"))
    ap.add_argument("--host", default="bench.example.com", help="workload a's host")
    ap.add_argument("--hosts", type=int, default=1000, help="hosts of workloads b and c")
    ap.add_argument("--canary-every", type=int, default=20, help="workload c")
    ap.add_argument("-n", "--requests", type=int, default=20000, help="measured requests")
    ap.add_argument("--warmup", type=int, default=0, help="requests before --between")
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60, help="socket timeout, seconds")
    ap.add_argument("--wait-ready", type=float, default=0, metavar="SECONDS",
                    help="first poll until the proxy answers 200")
    ap.add_argument("--pid", type=int, default=0, help="with --wait-ready: give up if it exits")
    ap.add_argument("--between", default="", help="shell command after the warm-up")
    ap.add_argument("--after", default="", help="shell command after the measured requests")
    args = ap.parse_args()

    request = requests_for(args)
    if args.wait_ready > 0:
        wait_ready(args, request)
    try:
        conns = [Conn(args.addr, args.timeout) for _ in range(max(args.connections, 1))]
    except OSError as e:
        fail(f"connect to {args.addr}: {e}")
    t0 = time.monotonic()
    run(conns, request, 0, args.warmup)
    hook(args.between, "--between")
    t1 = time.monotonic()
    run(conns, request, args.warmup, args.requests)
    t2 = time.monotonic()
    hook(args.after, "--after")
    for c in conns:
        c.close()
    print(f"{t2 - t1:.3f}")
    print(f"instr_client: workload {args.workload}: {args.warmup} warm-up requests in "
          f"{t1 - t0:.1f} s, {args.requests} requests in {t2 - t1:.1f} s, all 200",
          file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
