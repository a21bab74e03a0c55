#!/usr/bin/env python3
"""Edge-protocol benchmark: HTTPS keep-alive, TLS handshakes and HTTP/2.

Called by bench/edge.sh (which installs the tools, builds the binaries and
makes the certificate). `edge.py gen` writes the configurations; `edge.py
run` measures; `edge.py table` reprints the tables of a finished run. Both reuse bench/gen.py (the origin, and each proxy's
configuration of workload a, moved onto a TLS listener for one host,
bench.test) and bench/driver.py (starting, pinning, stopping and measuring
processes).

Each proxy terminates TLS on LISTEN (127.0.0.1:8443) in front of the same
nginx origin, pinned to CPU 1; the clients and the origin run on CPU 0.
Per round (the proxy order rotates) each proxy is started once, checked
(200 over TLS, the certificate for bench.test, ALPN h2, session
resumption), then measured on four tests, each after a warm-up:

  keepalive  wrk -c32 over HTTPS, keep-alive: req/s, p50, p99, CPU/request
  hs-full    new connections, one full handshake and one request each:
             batches of BATCH fresh h2load clients (`h2load --h1 -c BATCH
             -n BATCH`; a fresh h2load client never resumes a session)
  hs-resume  the same with resumption: 32 h2load clients send `Connection:
             close` and reconnect after every response, offering the
             session they got (h2load resumes on reconnect)
  h2         h2load -c10 -m10: 100 streams over 10 HTTP/2 connections

CPU time is utime+stime of the proxy's process tree from /proc (as in
driver.py), per request or per handshake. Results go to
SCRATCH/edge-results.jsonl (one line per measurement) and the tables to
stdout and SCRATCH/edge-table.md. Standard library only.

Environment: SCRATCH, CERT, KEY, ROUNDS (3), DURATION (10), WARMUP (2),
BATCH (64), EDGE_PROXIES (fleetgate,bare-pingora,nginx,envoy), TESTS
(keepalive,hs-full,hs-resume,h2), FLEETGATE, BARE_PINGORA, ENVOY.
"""

import json
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import time

import driver
import gen

SCRATCH = os.environ["SCRATCH"]
DIR = os.path.join(SCRATCH, "edge")
CERT = os.environ.get("CERT", os.path.join(SCRATCH, "cert.pem"))
KEY = os.environ.get("KEY", os.path.join(SCRATCH, "key.pem"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "10"))
WARMUP = int(os.environ.get("WARMUP", "2"))
BATCH = int(os.environ.get("BATCH", "64"))
PROXIES = os.environ.get("EDGE_PROXIES", "fleetgate,bare-pingora,nginx,envoy").split(",")
TESTS = os.environ.get("TESTS", "keepalive,hs-full,hs-resume,h2").split(",")
HOST = "bench.test"
PORT = 8443
LISTEN = f"127.0.0.1:{PORT}"
URL = f"https://{HOST}/"  # h2load: SNI and :authority bench.test, connects to LISTEN

# What each test counts, and the unit of its CPU figure.
UNITS = {"keepalive": "req", "hs-full": "handshake", "hs-resume": "handshake", "h2": "req"}


# --------------------------------------------------------------------------
# configurations


def workload():
    """gen.py's workload a (one route, two origins weighted 9:1) on bench.test."""
    w = gen.Workload("a", 1)
    w.hosts = [HOST]
    return w


def fleetgate_toml(w):
    """fleetgate: gen.py's configuration with a TLS listener instead of the
    plain one. wrk sends the IP literal as SNI, which servers ignore, so
    bench.test's certificate is also the default one."""
    text = gen.fleetgate_toml(w)
    plain = f'listen = ["127.0.0.1:{gen.LISTEN_PORT}"]'
    assert plain in text, "gen.fleetgate_toml changed"
    text = text.replace(plain, f'listen_tls = ["{LISTEN}"]\n'
                               f'default_certificate = {{ cert = "{CERT}", key = "{KEY}" }}')
    return text + f'\n[[certificate]]\nhosts = ["{HOST}"]\ncert = "{CERT}"\nkey = "{KEY}"\n'


def nginx_conf(w):
    """nginx: gen.py's proxy with `ssl http2` on the listener. nginx 1.22
    offers TLS 1.0-1.2 by default; 1.2 and 1.3 match the others. 128 idle
    upstream connections (Pingora's default pool) instead of 64: with 100
    concurrent HTTP/2 streams, 64 makes nginx reconnect to the origin."""
    text = gen.nginx_conf(w, f"{DIR}/nginx")
    plain = f"listen 127.0.0.1:{gen.LISTEN_PORT};"
    assert plain in text, "gen.nginx_conf changed"
    return text.replace(plain, f"listen {LISTEN} ssl http2; ssl_certificate {CERT}; "
                               f"ssl_certificate_key {KEY}; ssl_protocols TLSv1.2 TLSv1.3;"
                        ).replace("keepalive 64;", "keepalive 128;")


def envoy_json(w):
    """Envoy: gen.py's bootstrap with a downstream TLS context (ALPN h2 and
    http/1.1, TLS 1.2-1.3) on the listener; codec AUTO picks by ALPN."""
    boot = json.loads(gen.envoy_json(w))
    listener = boot["static_resources"]["listeners"][0]
    listener["address"] = gen.sock(PORT)
    listener["filter_chains"][0]["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {
                "tls_params": {"tls_minimum_protocol_version": "TLSv1_2",
                               "tls_maximum_protocol_version": "TLSv1_3"},
                "alpn_protocols": ["h2", "http/1.1"],
                "tls_certificates": [{"certificate_chain": {"filename": CERT},
                                      "private_key": {"filename": KEY}}],
            },
        },
    }
    return json.dumps(boot, indent=1)


def write_configs():
    """Writes the origin's and every proxy's configuration, with the file
    names driver.proxy_command expects, under SCRATCH/edge."""
    w = workload()
    gen.write(f"{SCRATCH}/origin/nginx.conf", gen.origin_conf(f"{SCRATCH}/origin"))
    gen.write(f"{DIR}/fleetgate.toml", fleetgate_toml(w))
    # Proxy "fleetgate-noxff" (not run by default): without X-Forwarded-*.
    gen.write(f"{DIR}/fleetgate-noxff.toml", fleetgate_toml(w).replace(
        "[gateway]\n", "[gateway]\nforwarded_headers = false\n", 1))
    gen.write(f"{DIR}/ingress.yaml", gen.ingress_yaml(w))
    gen.write(f"{DIR}/nginx.conf", nginx_conf(w))
    os.makedirs(f"{DIR}/nginx", exist_ok=True)
    gen.write(f"{DIR}/envoy.json", envoy_json(w))
    origins = [f"127.0.0.1:{gen.ORIGIN_A}"] * 9 + [f"127.0.0.1:{gen.ORIGIN_B}"]
    gen.write(f"{DIR}/bare.args", f"--tls {CERT} {KEY} {LISTEN} " + " ".join(origins) + "\n")


# --------------------------------------------------------------------------
# checks


def client_context(alpn):
    """A client TLS context trusting only the benchmark's certificate."""
    ctx = ssl.create_default_context(cafile=CERT)
    ctx.set_alpn_protocols(alpn)
    return ctx


def https_get(ctx, session=None):
    """GET / over one new TLS connection from `ctx` (SNI bench.test, the
    certificate verified). Returns the status and the TLS socket's version,
    session and whether it was resumed (`session` must come from `ctx`)."""
    with socket.create_connection(("127.0.0.1", PORT), timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST, session=session) as s:
            s.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            try:
                while chunk := s.recv(65536):
                    data += chunk
            except (ssl.SSLEOFError, ConnectionResetError):
                pass  # closed without close_notify: the response is complete
            status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else 0
            return status, s.version(), s.session, s.session_reused


def negotiated_alpn():
    """The protocol the proxy picks when offered h2 and http/1.1."""
    ctx = client_context(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", PORT), timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            return s.selected_alpn_protocol()


def check(p, timeout=90):
    """Waits until the proxy answers 200 over TLS, then checks ALPN and
    session resumption. Returns what it saw."""
    ctx = client_context(["http/1.1"])
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"proxy exited with {p.returncode}")
        try:
            status, version, session, _ = https_get(ctx)
            if status == 200:
                break
            last = f"status {status}"
        except (OSError, ValueError) as e:
            last = e
        time.sleep(0.1)
    else:
        raise RuntimeError(f"proxy not answering 200 over TLS after {timeout}s: {last}")
    resumed = https_get(ctx, session)
    return {"tls": version, "alpn": negotiated_alpn(), "resumed_status": resumed[0],
            "resumes": resumed[3]}


# --------------------------------------------------------------------------
# clients (pinned to CPU 0)


def client(cmd, seconds):
    """Runs a client pinned to CPU 0 with a deadline; returns its stdout."""
    return subprocess.run(["taskset", "-c", "0"] + cmd, capture_output=True, text=True,
                          check=True, timeout=3 * seconds + 60).stdout


def wrk(seconds):
    """wrk over HTTPS, 32 keep-alive connections, one thread."""
    out = client(["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-H", f"Host: {HOST}",
                  f"https://{LISTEN}/"], seconds)
    res = {"count": int(re.search(r"(\d+) requests in", out).group(1)),
           "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "99"):
        res[f"p{pct}_ms"] = driver.to_ms(re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(bad.group(1)) if bad else 0
    errs = re.search(r"Socket errors: (.*)", out)
    res["errors"] = errs.group(1) if errs else ""
    return res


def h2load(args, seconds):
    """One h2load run against LISTEN; returns 2xx count, elapsed seconds,
    non-2xx responses and failed requests."""
    out = client(["h2load", "--connect-to", LISTEN] + args + [URL], seconds)
    ok, r3, r4, r5 = (int(x) for x in re.search(
        r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out).groups())
    failed, errored, timeout = (int(x) for x in re.search(
        r"(\d+) failed, (\d+) errored, (\d+) timeout", out).groups())
    elapsed = driver.to_ms(re.search(r"finished in ([\d.]+(?:us|ms|s))", out).group(1)) / 1e3
    return {"count": ok, "elapsed": elapsed, "non2xx": r3 + r4 + r5,
            "failed": failed + errored + timeout}


def merge(runs):
    """Sums h2load runs into one result with a rate."""
    res = {k: sum(r[k] for r in runs) for k in ("count", "elapsed", "non2xx", "failed")}
    res["rate"] = res["count"] / res["elapsed"] if res["elapsed"] else 0.0
    res["errors"] = f"{res['failed']} failed" if res["failed"] else ""
    return res


def hs_full(seconds):
    """Batches of BATCH fresh clients, one connection and request each,
    until `seconds` of h2load time have passed."""
    runs = []
    while sum(r["elapsed"] for r in runs) < seconds:
        runs.append(h2load(["--h1", "-c", str(BATCH), "-n", str(BATCH)], seconds))
    return merge(runs)


def hs_resume(seconds, rate=None):
    """32 clients reconnecting after every response (`Connection: close`),
    resuming their session. h2load's timed mode never ends when it
    reconnects, so the request count is sized from `rate` (or a guess)."""
    n = max(32 * 20, int((rate or 1000) * seconds) // 32 * 32)
    return merge([h2load(["--h1", "-c", "32", "-n", str(n), "-H", "Connection: close"],
                         seconds)])


def h2(seconds):
    """100 concurrent streams: 10 HTTP/2 connections (ALPN h2), 10 streams each."""
    return merge([h2load(["-c", "10", "-m", "10", "-D", str(seconds)], seconds)])


def measure(test, p, seconds, warm):
    """One measured run of `test` after its warm-up `warm` (a result)."""
    ticks0, (acc0, _) = driver.cpu_ticks(p.pid), driver.origin_counters()
    if test == "keepalive":
        res = wrk(seconds)
    elif test == "hs-full":
        res = hs_full(seconds)
    elif test == "hs-resume":
        res = hs_resume(seconds, warm["rate"])
    else:
        res = h2(seconds)
    ticks1, (acc1, _) = driver.cpu_ticks(p.pid), driver.origin_counters()
    cpu_s = (ticks1 - ticks0) / driver.CLK_TCK
    n = max(res["count"], 1)
    wall = res.get("elapsed") or seconds
    res.update({"cpu_us": cpu_s * 1e6 / n, "cpu_util": cpu_s / wall,
                # The status request itself is one accepted connection.
                "upstream_conns_per_1k": (acc1 - acc0 - 1) * 1000 / n})
    return res


WARMERS = {"keepalive": wrk, "hs-full": hs_full, "hs-resume": hs_resume, "h2": h2}


def run_proxy(rnd, proxy, out):
    """Starts `proxy`, checks it, runs every test, stops it; returns the
    results (also written to `out`)."""
    with open("/proc/loadavg", encoding="utf-8") as f:
        load1 = float(f.read().split()[0])
    # A proxy left over on the port would be measured instead of this one.
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", PORT)) == 0:
            raise RuntimeError(f"something already listens on {LISTEN}")
    p = driver.start(driver.proxy_command(proxy, DIR), 1, f"{SCRATCH}/logs/edge-{proxy}.log")
    results = []
    try:
        seen = check(p)
        print(f"round {rnd + 1}/{ROUNDS} {proxy:12} checked: {seen} (load {load1})",
              file=sys.stderr, flush=True)
        if not seen["resumes"]:
            print(f"warning: {proxy} did not resume a TLS session", file=sys.stderr, flush=True)
        for test in TESTS:
            warm = WARMERS[test](max(WARMUP, 1))
            res = measure(test, p, DURATION, warm)
            res.update({"round": rnd, "proxy": proxy, "test": test, "load1_before": load1,
                        "warmup_non2xx": warm["non2xx"], "warmup_errors": warm["errors"],
                        **seen})
            out.write(json.dumps(res) + "\n")
            out.flush()
            lat = f" p50 {res['p50_ms']:.2f} ms p99 {res['p99_ms']:.2f} ms" if "p50_ms" in res else ""
            print(f"round {rnd + 1}/{ROUNDS} {proxy:12} {test:9}: {res['rate']:9.0f}/s "
                  f"{res['cpu_us']:7.1f} µs/{UNITS[test]}{lat} util {res['cpu_util']:.2f} "
                  f"conns/1k {res['upstream_conns_per_1k']:.2f} non2xx {res['non2xx']} "
                  f"errors '{res['errors']}'", file=sys.stderr, flush=True)
            results.append(res)
    finally:
        driver.stop(p)
    return results


# --------------------------------------------------------------------------
# tables


def table(results):
    """Markdown: every round's value per test and proxy, then same-round
    ratios of fleetgate to each other proxy. "per proxy CPU-second" is
    1e6 / CPU µs: the rate the proxy would reach on a whole CPU, which is
    what compares handshakes when the client, not the proxy, is the limit."""
    by = {}
    for r in results:
        by.setdefault((r["test"], r["proxy"]), []).append(r)
    out = ["| test | proxy | rate /s, each round | CPU µs per unit, each round | median rate "
           "| median CPU µs | per proxy CPU-second | proxy CPU util | p50 / p99 ms "
           "| upstream conns /1k | non-2xx | errors |",
           "|---|---|---|---|---:|---:|---:|---:|---|---:|---:|---|"]
    for t in TESTS:
        for p in PROXIES:
            rs = sorted(by.get((t, p), []), key=lambda r: r["round"])
            if not rs:
                continue
            med = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
            lat = f"{med('p50_ms'):.2f} / {med('p99_ms'):.2f}" if "p50_ms" in rs[0] else "-"
            rates = ", ".join(f"{r['rate']:.0f}" for r in rs)
            cpus = ", ".join(f"{r['cpu_us']:.1f}" for r in rs)
            out.append(
                f"| {t} | {p} | {rates} | {cpus} | {med('rate'):.0f} "
                f"| {med('cpu_us'):.1f} | {1e6 / med('cpu_us'):.0f} | {med('cpu_util'):.2f} | {lat} "
                f"| {med('upstream_conns_per_1k'):.2f} | {sum(r['non2xx'] for r in rs)} "
                f"| {'; '.join(r['errors'] for r in rs if r['errors']) or '-'} |")
    out += ["", "fleetgate / other, per round (same round, so the machine's drift cancels), "
            "median in bold; rate > 1 and CPU < 1 favour fleetgate:", "",
            "| test | vs | rate ratio | CPU/unit ratio |", "|---|---|---|---|"]
    for t in TESTS:
        fg = {r["round"]: r for r in by.get((t, "fleetgate"), [])}
        for p in PROXIES:
            other = {r["round"]: r for r in by.get((t, p), [])}
            rounds = sorted(set(fg) & set(other))
            if p == "fleetgate" or not rounds:
                continue
            cols = []
            for k in ("rate", "cpu_us"):
                xs = [fg[i][k] / other[i][k] for i in rounds if other[i][k]]
                cols.append(", ".join(f"{x:.2f}" for x in xs)
                            + (f" (**{statistics.median(xs):.2f}**)" if xs else ""))
            out.append(f"| {t} | {p} | {cols[0]} | {cols[1]} |")
    return "\n".join(out)


def main():
    """`gen` writes the configurations; `run` measures and prints tables;
    `table` prints them again from SCRATCH/edge-results.jsonl."""
    if sys.argv[1:] == ["gen"]:
        write_configs()
        return
    if sys.argv[1:] == ["table"]:
        with open(f"{SCRATCH}/edge-results.jsonl", encoding="utf-8") as f:
            print(table([json.loads(line) for line in f]))
        return
    if sys.argv[1:] != ["run"]:
        raise SystemExit("usage: edge.py gen|run|table")
    os.makedirs(f"{SCRATCH}/logs", exist_ok=True)
    origin = driver.start(["nginx", "-p", f"{SCRATCH}/origin", "-c", f"{SCRATCH}/origin/nginx.conf",
                           "-e", f"{SCRATCH}/origin/error.log"], 0, f"{SCRATCH}/logs/origin.log")
    results = []
    try:
        for _ in range(50):
            try:
                driver.origin_counters()
                break
            except OSError:
                time.sleep(0.1)
        with open(f"{SCRATCH}/edge-results.jsonl", "w", encoding="utf-8") as out:
            for rnd in range(ROUNDS):
                order = PROXIES[rnd % len(PROXIES):] + PROXIES[:rnd % len(PROXIES)]
                for proxy in order:
                    results += run_proxy(rnd, proxy, out)
    finally:
        driver.stop(origin)
    text = table(results)
    with open(f"{SCRATCH}/edge-table.md", "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
