#!/usr/bin/env python3
"""Zone drills on real network faults: a gateway in front of two zones,
each in its own network namespace, a steady load from a client namespace,
one fault at a time on zone A, then the heal.

    client ns ── gateway ns ──┬── zone-a ns (2 web-demo pods)
                              └── zone-b ns (2 web-demo pods)

Faults (zone A): link down (`ip link set down`), 100 % and 30 % packet
loss (nftables `drop`, `numgen random`), added latency with jitter (tc
netem when the kernel has it, else the pods' own delay), a zone whose pods
accept connections and never answer (SIGSTOP), a zone that answers slowly
(+300 ms). Every figure comes from the client: a request "went to zone A"
when zone A answered it, it failed, or it took far longer than before the
fault (a retry after a timeout).

The same drills run through fleetgate, nginx (passive `max_fails` only)
and Envoy (active health checks, outlier detection, retries), configured
with the same timeouts, probes and retries.

Used by tests/e2e/drills.rs (one proxy, some drills, --json) and by
scripts/drill.sh (every proxy and drill, a table). Needs root (network
namespaces); everything it creates is removed on exit, also on failure
or Ctrl-C, and leftovers of runs that died are removed at start.
"""

import argparse
import atexit
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PREFIX = "fgd"
HOST = "drill.example"
GW_IP, GW_PORT = "10.77.0.2", 8080
ZONES = {"a": "10.77.1.2", "b": "10.77.2.2"}
PODS = (8080, 8081)
ADMIN = "127.0.0.1:9901"
ENVOY_ADMIN = 9902

# Shared settings of every proxy, so that the comparison is fair.
CONNECT_TIMEOUT_S = 1
READ_TIMEOUT_S = 2
RETRIES = 2
HC_INTERVAL_S = 1
HC_TIMEOUT_S = 0.5
HC_UNHEALTHY = 2
HC_HEALTHY = 2

# What the load sends (drill.py load --method POST changes it).
REQUEST = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n"

# Weighted round robin, or least request (nginx: least_conn).
BALANCE = "round_robin"

DRILLS = ["link-down", "loss-100", "blackhole", "loss-30", "latency", "slow", "errors"]


def run(*cmd, check=True, quiet=False):
    """Runs a command; raises with its output when it fails and `check`."""
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {p.returncode}: {p.stderr.strip()}")
    if not quiet and p.returncode != 0:
        print(f"drill: {' '.join(cmd)}: {p.stderr.strip()}", file=sys.stderr)
    return p


def log(*a):
    print("drill:", *a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Topology


class Topology:
    """Four namespaces joined by veth pairs; removed by `close`."""

    def __init__(self):
        self.tag = f"{PREFIX}{os.getpid()}"
        self.ns = {k: f"{self.tag}-{k}" for k in ("c", "g", "a", "b")}
        self.procs = []
        self.closed = False
        remove_stale()
        for ns in self.ns.values():
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        self.link("c", "10.77.0.1", "g", GW_IP)
        self.link("g", "10.77.1.1", "a", ZONES["a"])
        self.link("g", "10.77.2.1", "b", ZONES["b"])

    def link(self, left, left_ip, right, right_ip):
        """A veth pair between two namespaces, /24 addresses, both up. The
        ends are named after the peer: eth-<peer>."""
        ln, rn = self.ns[left], self.ns[right]
        run("ip", "link", "add", f"eth-{right}", "netns", ln, "type", "veth",
            "peer", "name", f"eth-{left}", "netns", rn)
        run("ip", "-n", ln, "addr", "add", f"{left_ip}/24", "dev", f"eth-{right}")
        run("ip", "-n", rn, "addr", "add", f"{right_ip}/24", "dev", f"eth-{left}")
        run("ip", "-n", ln, "link", "set", f"eth-{right}", "up")
        run("ip", "-n", rn, "link", "set", f"eth-{left}", "up")

    def spawn(self, where, cmd, **kw):
        """Starts `cmd` in namespace `where`; stopped by `close`."""
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[where], *cmd], **kw)
        self.procs.append(p)
        return p

    def sh(self, where, *cmd, check=True):
        """Runs a command in namespace `where`."""
        return run("ip", "netns", "exec", self.ns[where], *cmd, check=check)

    def close(self):
        if self.closed:
            return
        self.closed = True
        for p in self.procs:
            try:
                p.send_signal(signal.SIGCONT)
                p.kill()
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for ns in self.ns.values():
            kill_all_in(ns)
            run("ip", "netns", "del", ns, check=False, quiet=True)


def kill_all_in(ns):
    """Kills whatever still runs in namespace `ns` (children of children)."""
    p = run("ip", "netns", "pids", ns, check=False, quiet=True)
    for pid in p.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def remove_stale():
    """Removes namespaces of earlier runs whose process is gone."""
    p = run("ip", "netns", "list", check=False, quiet=True)
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX) or "-" not in name:
            continue
        pid = name[len(PREFIX):].split("-")[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            kill_all_in(name)
            run("ip", "netns", "del", name, check=False, quiet=True)


def wait_port(topo, where, ip, port, limit=20.0):
    """Waits until something accepts on ip:port inside namespace `where`."""
    deadline = time.time() + limit
    probe = f"import socket; socket.create_connection(('{ip}', {port}), 0.5)"
    while time.time() < deadline:
        if run("ip", "netns", "exec", topo.ns[where], sys.executable, "-c", probe,
               check=False, quiet=True).returncode == 0:
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {ip}:{port} in {where}")


# --------------------------------------------------------------------------
# Proxies


def manifest():
    return f"""apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: drill
  annotations:
    nginx.ingress.kubernetes.io/proxy-next-upstream: "error timeout http_502 http_503 http_504"
    nginx.ingress.kubernetes.io/proxy-next-upstream-tries: "{RETRIES + 1}"
spec:
  ingressClassName: fleetgate
  rules:
  - host: {HOST}
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {{service: {{name: web, port: {{number: 80}}}}}}
"""


def fleetgate_conf(work):
    eps = ", ".join(
        f'{{ cluster = "zone-{z}", address = "{ip}:{port}" }}'
        for z, ip in ZONES.items() for port in PODS)
    with open(f"{work}/ingress.yaml", "w") as f:
        f.write(manifest())
    conf = f"""[gateway]
name = "drill"
listen = ["{GW_IP}:{GW_PORT}"]
threads = 2
grace_period = "1s"

[admin]
listen = "{ADMIN}"

[log]
access = "off"

[upstream]
balance = "{BALANCE}"
connect_timeout = "{CONNECT_TIMEOUT_S}s"
read_timeout = "{READ_TIMEOUT_S}s"
retries = {RETRIES}

[[cluster]]
id = "zone-a"
zone = "zone-a"

[[cluster]]
id = "zone-b"
zone = "zone-b"

[[service]]
namespace = "drill"
name = "web"
port = 80
endpoints = [{eps}]

[service.health_check]
kind = "http"
path = "/healthz"
interval = "{HC_INTERVAL_S}s"
timeout = "{int(HC_TIMEOUT_S * 1000)}ms"
healthy_threshold = {HC_HEALTHY}
unhealthy_threshold = {HC_UNHEALTHY}

[manifests]
namespace = "drill"
files = ["ingress.yaml"]
"""
    with open(f"{work}/fleetgate.toml", "w") as f:
        f.write(conf)
    return f"{work}/fleetgate.toml"


def nginx_conf(work):
    servers = "\n".join(
        f"        server {ip}:{port} max_fails=1 fail_timeout=10s;"
        for ip in ZONES.values() for port in PODS)
    conf = f"""worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    upstream web {{
{"        least_conn;" if BALANCE == "least_request" else ""}
{servers}
        keepalive 64;
    }}
    server {{
        listen {GW_IP}:{GW_PORT} reuseport;
        location / {{
            proxy_pass http://web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_connect_timeout {CONNECT_TIMEOUT_S}s;
            proxy_read_timeout {READ_TIMEOUT_S}s;
            proxy_send_timeout {READ_TIMEOUT_S}s;
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_next_upstream_tries {RETRIES + 1};
        }}
    }}
}}
"""
    with open(f"{work}/nginx.conf", "w") as f:
        f.write(conf)
    return f"{work}/nginx.conf"


def envoy_conf(work):
    def addr(ip, port):
        return {"socket_address": {"address": ip, "port_value": port}}
    cluster = {
        "name": "web",
        "type": "STATIC",
        "connect_timeout": f"{CONNECT_TIMEOUT_S}s",
        "lb_policy": "LEAST_REQUEST" if BALANCE == "least_request" else "ROUND_ROBIN",
        "load_assignment": {"cluster_name": "web", "endpoints": [
            {"locality": {"zone": f"zone-{z}"},
             "lb_endpoints": [{"endpoint": {"address": addr(ip, port)}} for port in PODS]}
            for z, ip in ZONES.items()]},
        "health_checks": [{
            "timeout": f"{HC_TIMEOUT_S}s",
            "interval": f"{HC_INTERVAL_S}s",
            # Envoy probes at no_traffic_interval (default 60 s) until the
            # cluster has had traffic: without this, the first probe would
            # be the only one of a short drill.
            "no_traffic_interval": f"{HC_INTERVAL_S}s",
            "unhealthy_threshold": HC_UNHEALTHY,
            "healthy_threshold": HC_HEALTHY,
            "http_health_check": {"path": "/healthz"},
        }],
        "outlier_detection": {},
        # Envoy's default circuit breaker allows 3 retries in flight per
        # cluster, which fails most retries of a zone loss at this rate;
        # an operator would raise it, so the comparison does too.
        "circuit_breakers": {"thresholds": [{
            "max_connections": 10000, "max_pending_requests": 10000,
            "max_requests": 10000, "max_retries": 10000}]},
    }
    route = {
        "match": {"prefix": "/"},
        "route": {
            "cluster": "web",
            "timeout": f"{(RETRIES + 1) * READ_TIMEOUT_S + 1}s",
            "retry_policy": {
                "retry_on": "connect-failure,reset,gateway-error",
                "num_retries": RETRIES,
                "per_try_timeout": f"{READ_TIMEOUT_S}s",
                "host_selection_retry_max_attempts": 5,
                "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
            },
        },
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                 "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "drill",
        "route_config": {"name": "drill", "virtual_hosts": [
            {"name": "web", "domains": ["*"], "routes": [route]}]},
        "http_filters": [{
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }],
    }
    conf = {
        "admin": {"address": addr("127.0.0.1", ENVOY_ADMIN)},
        "static_resources": {
            "listeners": [{
                "name": "drill",
                "address": addr(GW_IP, GW_PORT),
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm}]}],
            }],
            "clusters": [cluster],
        },
    }
    with open(f"{work}/envoy.json", "w") as f:
        json.dump(conf, f, indent=1)
    return f"{work}/envoy.json"


def start_proxy(topo, proxy, work, bins):
    out = open(f"{work}/{proxy}.log", "w")
    if proxy == "fleetgate":
        cmd = [f"{bins}/fleetgate", "run", "-c", fleetgate_conf(work)]
    elif proxy == "nginx":
        cmd = [shutil.which("nginx") or "/usr/sbin/nginx", "-c", nginx_conf(work),
               "-g", "daemon off;"]
    elif proxy == "envoy":
        cmd = [os.environ.get("ENVOY", "envoy"), "-c", envoy_conf(work),
               "--concurrency", "2", "--log-level", "warn"]
    else:
        raise SystemExit(f"unknown proxy {proxy}: fleetgate, nginx or envoy")
    topo.spawn("g", cmd, stdout=out, stderr=subprocess.STDOUT)
    wait_port(topo, "c", GW_IP, GW_PORT)


# --------------------------------------------------------------------------
# Load (runs in the client namespace, as its own process)


def load_main(args):
    """`drill.py load`: an open-loop load. Requests are sent on a fixed
    schedule (`rate` per second) whether or not earlier ones have been
    answered, each on an idle kept-alive connection or a new one, so that
    requests stuck on a dead zone do not hold back the next ones (a closed
    loop would stop sending exactly when the gateway is being tested).
    One JSON line per request: when it was due (wall clock), how long it
    took from then, and the answer or the error."""
    import asyncio

    global REQUEST
    if args.method == "POST":
        body = "drill"
        REQUEST = (f"POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: text/plain\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n{body}")

    async def fetch(idle):
        """One GET on an idle connection (or a new one); (ok, body)."""
        reader, writer = idle.pop() if idle else await asyncio.open_connection(args.ip, args.port)
        try:
            writer.write(REQUEST.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode(errors="replace").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.partition(":") for line in lines[1:] if line)}
            body = (await reader.readexactly(int(headers.get("content-length", "0")))).decode()
            if headers.get("connection", "").lower() == "close":
                writer.close()
            else:
                idle.append((reader, writer))
            return status == 200, body if status == 200 else f"status {status}: {body[:80]}"
        except Exception:
            writer.close()
            raise

    async def one(due, idle, out):
        try:
            ok, body = await asyncio.wait_for(fetch(idle), 15)
        except Exception as e:  # noqa: BLE001 - every failure is a sample
            ok, body = False, f"{type(e).__name__}: {e}"
        out.write(json.dumps({"at": due, "took": time.time() - due, "ok": ok, "body": body}) + "\n")

    async def main_loop():
        idle, tasks = [], set()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(sys.stdin, stop.set)
        out = open(args.out, "w")
        interval = 1.0 / args.rate
        due = time.time()
        while not stop.is_set():
            now = time.time()
            if now < due:
                try:
                    await asyncio.wait_for(stop.wait(), due - now)
                except asyncio.TimeoutError:
                    pass
                continue
            t = asyncio.create_task(one(due, idle, out))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            due += interval
        if tasks:
            await asyncio.wait(tasks)
        out.close()

    asyncio.run(main_loop())


# --------------------------------------------------------------------------
# Faults


def netem_available(topo):
    p = run("ip", "netns", "exec", topo.ns["a"], "tc", "qdisc", "add", "dev", "eth-g", "root",
            "netem", "delay", "1ms", check=False, quiet=True)
    if p.returncode == 0:
        topo.sh("a", "tc", "qdisc", "del", "dev", "eth-g", "root")
        return True
    return False


def nft_drop(percent):
    rule = "drop" if percent >= 100 else f"numgen random mod 100 < {percent} drop"
    return ("table inet drill {\n"
            f"  chain in {{ type filter hook input priority 0; iifname \"eth-g\" {rule}; }}\n"
            f"  chain out {{ type filter hook output priority 0; oifname \"eth-g\" {rule}; }}\n"
            "}\n")


class Fault:
    """One drill's fault on zone A: `inject` then `heal`."""

    def __init__(self, topo, name, pods, work):
        self.topo, self.name, self.pods, self.work = topo, name, pods, work
        self.delay_file = f"{work}/zone-a.delay"
        self.error_file = f"{work}/zone-a.errors"
        self.how = ""

    def inject(self):
        t, n = self.topo, self.name
        if n == "link-down":
            t.sh("a", "ip", "link", "set", "eth-g", "down")
            self.how = "zone A's link set down"
        elif n in ("loss-100", "loss-30"):
            pct = 100 if n == "loss-100" else 30
            p = subprocess.run(["ip", "netns", "exec", t.ns["a"], "nft", "-f", "-"],
                               input=nft_drop(pct), text=True, capture_output=True)
            if p.returncode != 0:
                raise RuntimeError(f"nft: {p.stderr}")
            self.how = f"{pct}% of zone A's packets dropped (nftables)"
        elif n == "latency":
            if netem_available(t):
                t.sh("a", "tc", "qdisc", "add", "dev", "eth-g", "root", "netem",
                     "delay", "200ms", "50ms")
                self.how = "200 ± 50 ms on zone A's link (tc netem)"
            else:
                with open(self.delay_file, "w") as f:
                    f.write("200 50\n")
                self.how = "200 ± 50 ms in zone A's pods (this kernel has no netem)"
        elif n == "blackhole":
            for p in self.pods:
                kill_tree(p.pid, signal.SIGSTOP)
            self.how = "zone A's pods stopped: connections accepted, never answered"
        elif n == "slow":
            with open(self.delay_file, "w") as f:
                f.write("300 30\n")
            self.how = "zone A's pods answer 300 ± 30 ms late"
        elif n == "errors":
            with open(self.error_file, "w") as f:
                f.write("50\n")
            self.how = "zone A's pods answer half of all requests with 503"
        else:
            raise SystemExit(f"unknown drill {n}: {', '.join(DRILLS)}")

    def heal(self):
        t, n = self.topo, self.name
        if n == "link-down":
            t.sh("a", "ip", "link", "set", "eth-g", "up")
        elif n in ("loss-100", "loss-30"):
            t.sh("a", "nft", "delete", "table", "inet", "drill")
        elif n == "latency":
            run("ip", "netns", "exec", t.ns["a"], "tc", "qdisc", "del", "dev", "eth-g", "root",
                check=False, quiet=True)
        elif n == "blackhole":
            for p in self.pods:
                kill_tree(p.pid, signal.SIGCONT)
        for f in (self.delay_file, self.error_file):
            if os.path.exists(f):
                os.remove(f)


def kill_tree(pid, sig):
    """Signals `pid` (an `ip netns exec` wrapper's child is exec'd in place,
    so the pid is the program's own)."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------
# One drill


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def phase_stats(samples):
    lat = [s["took"] * 1000 for s in samples]
    return {
        "requests": len(samples),
        "failed": sum(1 for s in samples if not s["ok"]),
        "p50_ms": round(percentile(lat, 0.5) or 0, 1),
        "p99_ms": round(percentile(lat, 0.99) or 0, 1),
        "max_ms": round(max(lat) if lat else 0, 1),
    }


def analyse(samples, t0, fault_at, heal_at, end_at):
    before = [s for s in samples if t0 + 0.5 <= s["at"] < fault_at]
    during = [s for s in samples if fault_at <= s["at"] < heal_at]
    after = [s for s in samples if heal_at <= s["at"] < end_at]
    base = phase_stats(before)
    slow_ms = max(3 * base["p99_ms"], base["p99_ms"] + 100)
    touched = [s for s in during
               if not s["ok"] or s["body"] == "zone-a" or s["took"] * 1000 > slow_ms]
    shift = (max(s["at"] for s in touched) - fault_at) if touched else 0.0
    back = [s for s in after if s["ok"] and s["body"] == "zone-a"]
    ret = (min(s["at"] for s in back) - heal_at) if back else None
    return {
        "requests": len(samples),
        "failed": sum(1 for s in samples if not s["ok"]),
        "failures": sorted({s["body"] for s in samples if not s["ok"]})[:5],
        "zone_a_share_during": round(
            sum(1 for s in during if s["ok"] and s["body"] == "zone-a") / max(1, len(during)), 3),
        "last_touch_s": round(shift, 2),
        "shift_settled": shift < (heal_at - fault_at) - 1.0,
        "return_s": None if ret is None else round(ret, 2),
        "before": base,
        "during": phase_stats(during),
        "after": phase_stats(after),
    }


def drill(proxy, name, args, bins):
    topo = Topology()
    atexit.register(topo.close)
    work = tempfile.mkdtemp(prefix=f"drill-{proxy}-{name}-")
    try:
        pods = []
        for z, ip in ZONES.items():
            for port in PODS:
                cmd = [f"{bins}/web-demo", "--listen", f"{ip}:{port}", "--name", f"zone-{z}"]
                if z == "a":
                    cmd += ["--delay-file", f"{work}/zone-a.delay",
                            "--error-file", f"{work}/zone-a.errors"]
                p = topo.spawn(z, cmd, stdout=subprocess.DEVNULL)
                if z == "a":
                    pods.append(p)
        for z, ip in ZONES.items():
            for port in PODS:
                wait_port(topo, z, ip, port)
        start_proxy(topo, proxy, work, bins)
        fault = Fault(topo, name, pods, work)
        samples_path = f"{work}/samples.jsonl"
        load = topo.spawn("c", [sys.executable, os.path.abspath(__file__), "load",
                                "--ip", GW_IP, "--port", str(GW_PORT),
                                "--rate", str(args.rate), "--method", args.method,
                                "--out", samples_path],
                          stdin=subprocess.PIPE, text=True)
        t0 = time.time()
        time.sleep(args.before)
        fault_at = time.time()
        fault.inject()
        time.sleep(args.during)
        heal_at = time.time()
        fault.heal()
        time.sleep(args.after)
        end_at = time.time()
        load.stdin.write("stop\n")
        load.stdin.close()
        load.wait(timeout=30)
        with open(samples_path) as f:
            samples = [json.loads(line) for line in f if line.strip()]
        result = analyse(samples, t0, fault_at, heal_at, end_at)
        result.update({"proxy": proxy, "drill": name, "fault": fault.how, "balance": BALANCE,
                       "method": args.method,
                       "fault_s": round(heal_at - fault_at, 1)})
        return result
    finally:
        topo.close()
        if os.environ.get("DRILL_KEEP"):
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def table(results):
    head = ["drill", "proxy", "requests", "failed", "A's share during", "last to A (s)", "back (s)",
            "p50/p99/max before", "during", "after"]
    rows = [head]
    for r in results:
        def lat(p):
            return f"{r[p]['p50_ms']:.0f}/{r[p]['p99_ms']:.0f}/{r[p]['max_ms']:.0f}"
        rows.append([r["drill"], r["proxy"], str(r["requests"]), str(r["failed"]),
                     f"{100 * r['zone_a_share_during']:.1f}%",
                     f"{r['last_touch_s']:.2f}" + ("" if r["shift_settled"] else " (never)"),
                     "-" if r["return_s"] is None else f"{r['return_s']:.2f}",
                     lat("before"), lat("during"), lat("after")])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd")
    lp = sub.add_parser("load")
    lp.add_argument("--ip", required=True)
    lp.add_argument("--port", type=int, required=True)
    lp.add_argument("--rate", type=float, default=200)
    lp.add_argument("--out", required=True)
    lp.add_argument("--method", default="GET", choices=["GET", "POST"])
    ap.add_argument("--bin-dir", default="target/release",
                    help="where fleetgate and web-demo are")
    ap.add_argument("--proxy", default="fleetgate", help="comma-separated: fleetgate,nginx,envoy")
    ap.add_argument("--drill", default=",".join(DRILLS), help=f"comma-separated: {','.join(DRILLS)}")
    ap.add_argument("--rate", type=float, default=200, help="requests per second in all")
    ap.add_argument("--before", type=float, default=3, help="seconds of load before the fault")
    ap.add_argument("--during", type=float, default=6, help="seconds the fault lasts")
    ap.add_argument("--after", type=float, default=6, help="seconds of load after the heal")
    ap.add_argument("--balance", default="round_robin", choices=["round_robin", "least_request"],
                    help="how every proxy balances (nginx: least_conn for least_request)")
    ap.add_argument("--method", default="GET", choices=["GET", "POST"],
                    help="POST: non-idempotent requests, which are not retried once sent")
    ap.add_argument("--json", action="store_true", help="print results as JSON")
    args = ap.parse_args()
    if args.cmd == "load":
        return load_main(args)
    if os.geteuid() != 0:
        raise SystemExit("drill.py needs root: it creates network namespaces")
    bins = os.path.abspath(args.bin_dir)
    global BALANCE
    BALANCE = args.balance
    # A signal ends the run through the same clean-up as an error.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    results = []
    for proxy in args.proxy.split(","):
        for name in args.drill.split(","):
            log(f"{proxy}: {name}")
            results.append(drill(proxy, name, args, bins))
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print(table(results))
        for r in results:
            if r["failures"]:
                print(f"{r['proxy']} {r['drill']}: failures: {r['failures']}")


if __name__ == "__main__":
    main()
