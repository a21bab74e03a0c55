#!/usr/bin/env bash
# Side-by-side benchmark: fleetgate, a bare Pingora proxy, nginx, HAProxy and
# Envoy in front of the same nginx origin, on workloads a, b and c (see
# bench/gen.py and docs/benchmarks.md).
#
#   bench/run.sh                                # 3 rounds x 10 s
#   ROUNDS=2 DURATION=5 bench/run.sh            # quick run
#   PROXIES=fleetgate,bare-pingora WORKLOADS=a bench/run.sh
#
# Environment: ROUNDS (3), DURATION (10, seconds per measurement), WARMUP (2),
# CONNECTIONS (32, wrk keep-alive connections), HOSTS (1000, workloads b/c),
# CANARY_EVERY (20: every n-th request of workload c carries the header
# canary's header), PROXIES, WORKLOADS, SCRATCH (default a new temp dir),
# SKIP_BUILD=1 to use the binaries already in target/release.
# CPU 0: wrk and the origin; CPU 1: the proxy under test.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
export SCRATCH=${SCRATCH:-$(mktemp -d /tmp/fleetgate-bench.XXXXXX)}
# shellcheck source=bench/common.sh
source "$BENCH/common.sh"

# --- tools -------------------------------------------------------------------
missing=()
for tool in nginx haproxy wrk; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "bench: installing ${missing[*]}" >&2
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y nginx haproxy wrk
fi
bench_find_envoy

# --- build ------------------------------------------------------------------
bench_build

# --- configs ----------------------------------------------------------------
export WORKLOADS=${WORKLOADS:-a,b,c}
python3 "$BENCH/gen.py" --out "$SCRATCH" --hosts "${HOSTS:-1000}" --workloads "$WORKLOADS"
for w in ${WORKLOADS//,/ }; do
    "$FLEETGATE" check -c "$SCRATCH/$w/fleetgate.toml" >/dev/null
done

echo "bench: scratch dir $SCRATCH; $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-); kernel $(uname -r)" >&2
echo "bench: $("$ENVOY" --version | grep -o 'version: [^ ]*'); $(nginx -v 2>&1); $(haproxy -v | head -1)" >&2

setsid python3 "$BENCH/driver.py" &
DRIVER_PID=$!
wait "$DRIVER_PID"
DRIVER_PID=
echo "bench: results in $SCRATCH/results.jsonl, table in $SCRATCH/table.md" >&2
