#!/usr/bin/env python3
"""Run the side-by-side benchmark over configurations made by bench/gen.py.

Called by bench/run.sh (which installs the tools, builds the binaries and
generates the configurations). For each round, each workload, and each
proxy (the order rotates every round), it:

  1. starts the proxy pinned to CPU 1 (taskset), in its own process group;
  2. waits until it answers 200 for the workload's host;
  3. warms up with wrk, then measures with wrk (pinned to CPU 0, like the
     origin): requests/s, p50, p99;
  4. reads the proxy's CPU time (utime+stime of it and its children, from
     /proc/<pid>/stat) and the origin's stub_status `accepts` (upstream
     connections opened) before and after, and VmHWM after;
  5. stops the proxy.

Results go to SCRATCH/results.jsonl (one line per run) and a Markdown table
(medians over rounds) to stdout and SCRATCH/table.md. Standard library only.

Environment: SCRATCH, ROUNDS, DURATION, WARMUP, CONNECTIONS, PROXIES,
WORKLOADS, HOSTS, FLEETGATE, BARE_PINGORA, ENVOY, CANARY_EVERY.
"""

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
SCRATCH = os.environ["SCRATCH"]
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "10"))
WARMUP = int(os.environ.get("WARMUP", "2"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "32"))
PROXIES = os.environ.get("PROXIES", "fleetgate,bare-pingora,nginx,haproxy,envoy").split(",")
WORKLOADS = os.environ.get("WORKLOADS", "a,b,c").split(",")
HOSTS = int(os.environ.get("HOSTS", "1000"))
CANARY_EVERY = int(os.environ.get("CANARY_EVERY", "20"))
LISTEN = "127.0.0.1:8400"
STATUS_URL = "http://127.0.0.1:18599/"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PIDS_FILE = os.path.join(SCRATCH, "pids")

NOTES = {
    ("bare-pingora", "a"): "no routing (round robin 9:1)",
    ("bare-pingora", "b"): "no routing: the floor",
    ("bare-pingora", "c"): "no routing: the floor",
    ("nginx", "c"): "approximation: if/$http_x_canary + split_clients 10% + backup server as subset",
    ("haproxy", "c"): "approximation: 3 Host maps, rand(100) lt 10, backup server as subset",
    ("envoy", "c"): "header route + weighted_clusters 10/90 + priority levels (Envoy's own model)",
    ("fleetgate", "c"): "native: annotations in Ingress YAML",
}


def proxy_command(proxy, d):
    """The command line of `proxy` on workload directory `d`."""
    if proxy in ("fleetgate", "fleetgate-noxff"):
        return [os.environ["FLEETGATE"], "run", "-c", f"{d}/{proxy}.toml"]
    if proxy == "bare-pingora":
        with open(f"{d}/bare.args", encoding="utf-8") as f:
            return [os.environ["BARE_PINGORA"], "--threads", "1"] + f.read().split()
    if proxy == "nginx":
        return ["nginx", "-p", f"{d}/nginx", "-c", f"{d}/nginx.conf", "-e", f"{d}/nginx/error.log"]
    if proxy == "haproxy":
        return ["haproxy", "-db", "-f", f"{d}/haproxy.cfg"]
    if proxy == "envoy":
        return [os.environ["ENVOY"], "-c", f"{d}/envoy.json", "--concurrency", "1",
                "--disable-hot-restart", "-l", "warn"]
    raise SystemExit(f"unknown proxy {proxy}")


def start(cmd, cpu, log):
    """Starts `cmd` pinned to `cpu` in a new process group; records it."""
    env = dict(os.environ, RUST_LOG="warn")
    with open(log, "ab") as out:
        p = subprocess.Popen(["taskset", "-c", str(cpu)] + cmd, stdout=out, stderr=out,
                             stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    with open(PIDS_FILE, "a", encoding="utf-8") as f:
        f.write(f"{p.pid}\n")
    return p


def stop(p):
    """Stops a process group started by `start`."""
    # SIGINT: fast shutdown for all of them (no graceful drain).
    for sig, wait in ((signal.SIGINT, 3), (signal.SIGKILL, 5)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            break
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader exited; make sure no child (nginx worker) is left.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break


def tree(pid):
    """`pid` and all its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_ticks(pid):
    """utime+stime (clock ticks) of `pid` and its descendants."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat", encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def peak_rss_kib(pid):
    """The largest VmHWM among `pid` and its descendants, in KiB."""
    best = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        best = max(best, int(line.split()[1]))
        except OSError:
            pass
    return best


def origin_counters():
    """(accepts, requests) of the origin's stub_status."""
    with urllib.request.urlopen(STATUS_URL, timeout=5) as r:
        lines = r.read().decode().splitlines()
    accepts, _handled, requests = (int(x) for x in lines[2].split())
    return accepts, requests


def wait_ready(host, p, timeout=90):
    """Waits until the proxy answers 200 for `host`."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"proxy exited with {p.returncode}")
        try:
            req = urllib.request.Request(f"http://{LISTEN}/", headers={"Host": host})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception as e:  # noqa: BLE001 - any failure means not ready yet
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"proxy not ready after {timeout}s: {last}")


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def to_ms(text):
    """wrk's `1.23ms` / `456.00us` / `1.2s` in milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(workload, seconds):
    """Runs wrk pinned to CPU 0; returns the parsed summary."""
    if workload == "a":
        script, env = "single.lua", {"HOST": "bench.example.com"}
    else:
        every = CANARY_EVERY if workload == "c" else 0
        script, env = "hosts.lua", {"HOSTS": str(HOSTS), "CANARY_EVERY": str(every)}
    cmd = ["taskset", "-c", "0", "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
           "-s", f"{BENCH}/lua/{script}", f"http://{LISTEN}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env=dict(os.environ, **env)).stdout
    res = {"requests": int(re.search(r"(\d+) requests in", out).group(1)),
           "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "99"):
        res[f"p{pct}_ms"] = to_ms(re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(bad.group(1)) if bad else 0
    errs = re.search(r"Socket errors: (.*)", out)
    res["socket_errors"] = errs.group(1) if errs else ""
    return res


def run_one(rnd, workload, proxy):
    """One measured run."""
    d = f"{SCRATCH}/{workload}"
    with open(f"{d}/host", encoding="utf-8") as f:
        host = f.read().strip()
    log = f"{SCRATCH}/logs/{proxy}-{workload}.log"
    with open("/proc/loadavg", encoding="utf-8") as f:
        load1 = float(f.read().split()[0])
    if load1 > 0.5:
        print(f"warning: load average {load1} before the run: something else is using the CPUs",
              file=sys.stderr, flush=True)
    p = start(proxy_command(proxy, d), 1, log)
    try:
        t0 = time.time()
        wait_ready(host, p)
        ready_s = time.time() - t0
        if WARMUP > 0:
            wrk(workload, WARMUP)
        ticks0, (acc0, req0) = cpu_ticks(p.pid), origin_counters()
        res = wrk(workload, DURATION)
        ticks1, (acc1, req1) = cpu_ticks(p.pid), origin_counters()
        rss = peak_rss_kib(p.pid)
    finally:
        stop(p)
    cpu_s = (ticks1 - ticks0) / CLK_TCK
    n = max(res["requests"], 1)
    res.update({
        "round": rnd, "workload": workload, "proxy": proxy, "load1_before": load1, "ready_s": round(ready_s, 2),
        "cpu_us_per_req": cpu_s * 1e6 / n,
        "cpu_util": cpu_s / DURATION,
        # The status request itself is one accepted connection and one request.
        "upstream_conns_per_1k": (acc1 - acc0 - 1) * 1000 / n,
        "origin_requests": req1 - req0 - 1,
        "peak_rss_mib": rss / 1024,
    })
    return res


def fmt_ratio(x, y):
    """x/y to two places, or a dash."""
    return f"{x / y:.2f}" if x and y else "-"


def table(results):
    """Markdown table of medians over rounds."""
    rows = {}
    for r in results:
        rows.setdefault((r["workload"], r["proxy"]), []).append(r)
    med = {}
    for key, rs in rows.items():
        med[key] = {k: statistics.median(r[k] for r in rs)
                    for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "cpu_util",
                              "upstream_conns_per_1k")}
        med[key]["peak_rss_mib"] = max(r["peak_rss_mib"] for r in rs)
        med[key]["errors"] = sum(r["non2xx"] for r in rs)
        med[key]["rounds"] = len(rs)
    out = [
        "| workload | proxy | req/s | p50 ms | p99 ms | CPU µs/req | proxy CPU util | peak RSS MiB "
        "| upstream conns /1k req | CPU/req ratio vs nginx / Envoy / bare | req/s ratio vs nginx / Envoy / bare "
        "| non-2xx | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|",
    ]
    for w in WORKLOADS:
        base = {p: med.get((w, p)) for p in ("nginx", "envoy", "bare-pingora")}
        for p in PROXIES:
            m = med.get((w, p))
            if not m:
                continue
            cpu = " / ".join(fmt_ratio(m["cpu_us_per_req"], b and b["cpu_us_per_req"])
                             for b in base.values())
            rps = " / ".join(fmt_ratio(m["rps"], b and b["rps"]) for b in base.values())
            out.append(
                f"| {w} | {p} | {m['rps']:.0f} | {m['p50_ms']:.3f} | {m['p99_ms']:.3f} "
                f"| {m['cpu_us_per_req']:.1f} | {m['cpu_util']:.2f} | {m['peak_rss_mib']:.1f} "
                f"| {m['upstream_conns_per_1k']:.3f} | {cpu} | {rps} | {m['errors']} "
                f"| {NOTES.get((p, w), '')} |")
    return "\n".join(out)


def main():
    """Runs every round and prints the table."""
    os.makedirs(f"{SCRATCH}/logs", exist_ok=True)
    origin = start(["nginx", "-p", f"{SCRATCH}/origin", "-c", f"{SCRATCH}/origin/nginx.conf",
                    "-e", f"{SCRATCH}/origin/error.log"], 0, f"{SCRATCH}/logs/origin.log")
    results = []
    try:
        for _ in range(50):
            try:
                origin_counters()
                break
            except OSError:
                time.sleep(0.1)
        with open(f"{SCRATCH}/results.jsonl", "w", encoding="utf-8") as out:
            for rnd in range(ROUNDS):
                for w in WORKLOADS:
                    order = PROXIES[rnd % len(PROXIES):] + PROXIES[:rnd % len(PROXIES)]
                    for p in order:
                        r = run_one(rnd, w, p)
                        results.append(r)
                        out.write(json.dumps(r) + "\n")
                        out.flush()
                        print(f"round {rnd + 1}/{ROUNDS} workload {w} {p:12}: "
                              f"{r['rps']:9.0f} req/s p50 {r['p50_ms']:.3f} ms "
                              f"p99 {r['p99_ms']:.3f} ms {r['cpu_us_per_req']:6.1f} µs/req "
                              f"rss {r['peak_rss_mib']:.1f} MiB "
                              f"conns/1k {r['upstream_conns_per_1k']:.3f} "
                              f"non2xx {r['non2xx']} ready {r['ready_s']} s",
                              file=sys.stderr, flush=True)
    finally:
        stop(origin)
    text = table(results)
    with open(f"{SCRATCH}/table.md", "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
