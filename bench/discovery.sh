#!/usr/bin/env bash
# Watched endpoints at scale: SERVICES Services (each with an Ingress) of
# ENDPOINTS endpoints each in a `kubernetes` cluster, served by the
# protocol-level test API server (tests/clients/kube_api_server.py).
# Measures, with the release binary:
#   - start-up: time to the first list and snapshot, RSS once serving,
#     against the same configuration with the endpoints written in TOML
#     (static) for comparison;
#   - apply latency: from the API server accepting a change of the probe
#     Service's slice to the first request the new endpoint answers (p50,
#     p99, max over N changes): changes GAP seconds apart, back to back,
#     and while STORM_RATE other slice changes per second are applied
#     (bench/discovery_client.py);
#   - request-path cost while the storm runs: instructions per request of
#     the proxy's worker thread (callgrind, per thread), idle vs storm,
#     with INSTR=1.
#
#   bench/discovery.sh                       # 10,000 x 10, N=40, storm 1000/s
#   SERVICES=1000 SKIP_BUILD=1 bench/discovery.sh
#
# Environment: SERVICES (10000), ENDPOINTS (10), N (40 changes), GAP (3 s
# between isolated changes), STORM_RATE
# (1000), INSTR (1: also the callgrind pass), REQUESTS (5000 per callgrind
# phase), SCRATCH (default a new temp dir), SKIP_BUILD=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRATCH=${SCRATCH:-$(mktemp -d /tmp/fleetgate-discovery.XXXXXX)}
SERVICES=${SERVICES:-10000}
ENDPOINTS=${ENDPOINTS:-10}
N=${N:-40}
STORM_RATE=${STORM_RATE:-1000}
INSTR=${INSTR:-1}
GAP=${GAP:-3}
REQUESTS=${REQUESTS:-5000}
BIN="$ROOT/target/release/fleetgate"
WEB="$ROOT/target/release/web-demo"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

if [ "${SKIP_BUILD:-}" != 1 ]; then
  (cd "$ROOT" && cargo build --release -p fleetgate -p fleetgate-examples) >&2
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL HOST
  for _ in $(seq 1 600); do
    if curl -fs -o /dev/null -H "Host: $2" "$1"; then return 0; fi
    sleep 0.1
  done
  echo "discovery: $1 never answered" >&2; return 1
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

api_port=$(free_port); probe_port=$(free_port); listen_port=$(free_port); admin_port=$(free_port)
"$WEB" --listen "127.0.0.201:$probe_port" --name probe-a >/dev/null & pids+=($!)
"$WEB" --listen "127.0.0.202:$probe_port" --name probe-b >/dev/null & pids+=($!)
python3 "$ROOT/bench/discovery_gen.py" --out "$SCRATCH" --services "$SERVICES" --endpoints "$ENDPOINTS" \
  --api "127.0.0.1:$api_port" --probe "127.0.0.201:$probe_port" \
  --listen "127.0.0.1:$listen_port" --admin "127.0.0.1:$admin_port"
python3 "$ROOT/tests/clients/kube_api_server.py" --listen "127.0.0.1:$api_port" --token bench \
  --preload "$SCRATCH/slices.jsonl" --bookmark-seconds 30 >"$SCRATCH/api.log" 2>&1 & pids+=($!)
for _ in $(seq 1 600); do curl -fs -o /dev/null "http://127.0.0.1:$api_port/_control/stats" && break; sleep 0.1; done
echo "discovery: $SERVICES Services x $ENDPOINTS endpoints; scratch $SCRATCH" >&2

started=$(date +%s.%N)
"$BIN" run -c "$SCRATCH/gw.toml" >"$SCRATCH/fleetgate.log" 2>&1 & gw=$!; pids+=($gw)
wait_http "http://127.0.0.1:$listen_port/" probe.example
ready=$(date +%s.%N)
sleep 2
rss=$(rss_kib "$gw")
echo "start: serving $(echo "$ready - $started" | bc) s after start; RSS $((rss / 1024)) MiB" >&2

client() {
  python3 "$ROOT/bench/discovery_client.py" --api "127.0.0.1:$api_port" --gateway "127.0.0.1:$listen_port" \
    --probe-a "127.0.0.201:$probe_port" --probe-b "127.0.0.202:$probe_port" \
    --services "$SERVICES" --endpoints "$ENDPOINTS" -n "$N" "$@"
}
idle=$(client --gap "$GAP")
echo "apply latency, one change at a time ($GAP s apart): $idle" >&2
back=$(client --gap 0.05)
echo "apply latency, changes back to back (50 ms apart): $back" >&2
storm=$(client --storm-rate "$STORM_RATE")
echo "apply latency, storm of $STORM_RATE changes/s: $storm" >&2
rss_after=$(rss_kib "$gw")
builds=$(grep -c "endpoint update: generation" "$SCRATCH/fleetgate.log" || true)
echo "after the storm: RSS $((rss_after / 1024)) MiB; $builds snapshot builds" >&2
kill "$gw"; wait "$gw" 2>/dev/null || true

# The same Services with their endpoints written in TOML, for memory.
python3 - "$SCRATCH" "$ENDPOINTS" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
toml = open(f"{d}/gw.toml").read().replace('source = "kubernetes"\nkubeconfig = "bench.kubeconfig"\napi_timeout = "30s"\n', "")
eps = {}
for line in open(f"{d}/slices.jsonl"):
    o = json.loads(line)["object"]
    port = o["ports"][0]["port"]
    eps[o["metadata"]["labels"]["kubernetes.io/service-name"]] = [f'{{ cluster = "c1", address = "{e["addresses"][0]}:{port}" }}' for e in o["endpoints"]]
out = []
for block in toml.split("\n[[service]]\n"):
    if out:
        name = block.split('name = "')[1].split('"')[0]
        block = block.replace("port = 80\n", "port = 80\nendpoints = [" + ", ".join(eps[name]) + "]\n", 1)
    out.append(block)
open(f"{d}/static.toml", "w").write("\n[[service]]\n".join(out))
PY
"$BIN" run -c "$SCRATCH/static.toml" >"$SCRATCH/static.log" 2>&1 & gw=$!; pids+=($gw)
wait_http "http://127.0.0.1:$listen_port/" probe.example
sleep 2
rss_static=$(rss_kib "$gw")
echo "static endpoints in TOML: RSS $((rss_static / 1024)) MiB" >&2
kill "$gw"; wait "$gw" 2>/dev/null || true

if [ "$INSTR" = 1 ]; then
  # Instructions per request of the proxy's worker thread, idle and while
  # the storm runs: callgrind with one output per thread; the worker is
  # the thread that ran the gateway's request filter.
  prefix="$SCRATCH/vgdb"
  valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes --vgdb=yes --vgdb-prefix="$prefix" \
    --callgrind-out-file="$SCRATCH/cg.%p" "$BIN" run -c "$SCRATCH/gw.toml" >"$SCRATCH/cg.log" 2>&1 & gw=$!; pids+=($gw)
  wait_http "http://127.0.0.1:$listen_port/" probe.example
  ctl="callgrind_control --vgdb-prefix=$prefix"
  measure() { # PHASE
    python3 "$ROOT/bench/instr_client.py" --addr "127.0.0.1:$listen_port" --host probe.example --workload a \
      --warmup 500 -n "$REQUESTS" --between "$ctl -i on $gw >/dev/null; $ctl -z $gw >/dev/null" \
      --after "$ctl -d $1 $gw >/dev/null; $ctl -i off $gw >/dev/null" >/dev/null
  }
  measure idle
  python3 - "$api_port" "$SERVICES" "$ENDPOINTS" "$STORM_RATE" <<'PY' & storm_pid=$!; pids+=($storm_pid)
import http.client, json, random, sys, time
port, services, n, rate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
rng, sent, start = random.Random(11), 0, time.monotonic()
while True:
    i = rng.randrange(services)
    ips = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(n)]
    body = json.dumps({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"s{i}-1", "namespace": "bench", "labels": {"kubernetes.io/service-name": f"s{i}"}},
        "addressType": "IPv4", "ports": [{"port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]})
    conn.request("PUT", "/_control/objects/endpointslices", body, {"Content-Type": "application/json"})
    conn.getresponse().read()
    sent += 1
    delay = start + sent / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
PY
  sleep 3
  measure storm
  kill "$storm_pid" 2>/dev/null || true
  kill "$gw"; wait "$gw" 2>/dev/null || true
  python3 - "$SCRATCH" "$REQUESTS" <<'PY'
import glob, re, sys
d, requests = sys.argv[1], int(sys.argv[2])
for phase in ("idle", "storm"):
    worker = None
    for f in glob.glob(f"{d}/cg.*"):
        text = open(f, errors="replace").read()
        m = re.search(r"^desc: Trigger: .*?(\w+)$", text, re.M)
        if not m or m.group(1) != phase or "request_filter" not in text:
            continue
        total = int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))
        worker = max(worker or 0, total)
    if worker:
        print(f"instructions per request, worker thread, {phase}: {worker / requests:,.0f}")
    else:
        print(f"instructions per request, {phase}: no worker-thread dump found")
PY
fi
