#!/usr/bin/env bash
# Edge-protocol benchmark: fleetgate, a bare Pingora proxy (--tls), nginx and
# Envoy terminating TLS for bench.test in front of the same nginx origin.
# Tests: HTTPS keep-alive (wrk), new TLS handshakes without and with session
# resumption (h2load, one request per connection), and HTTP/2 with 100
# concurrent streams (h2load). See bench/edge.py and docs/benchmarks.md.
#
#   bench/edge.sh                         # 3 rounds x 10 s per test
#   ROUNDS=1 DURATION=5 bench/edge.sh     # quick run
#   EDGE_PROXIES=fleetgate,bare-pingora TESTS=hs-full bench/edge.sh
#
# Environment: ROUNDS (3), DURATION (10), WARMUP (2), BATCH (64 fresh
# clients per h2load batch in hs-full), EDGE_PROXIES, TESTS, SCRATCH
# (default a new temp dir), SKIP_BUILD=1 to use target/release as it is.
# CPU 0: the clients and the origin; CPU 1: the proxy under test.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
export SCRATCH=${SCRATCH:-$(mktemp -d /tmp/fleetgate-edge.XXXXXX)}
export PYTHONDONTWRITEBYTECODE=1 # edge.py imports gen.py and driver.py: no bench/__pycache__
# shellcheck source=bench/common.sh
source "$BENCH/common.sh"

# --- tools -------------------------------------------------------------------
missing=()
for tool in nginx wrk h2load openssl; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "edge: installing nginx wrk nghttp2-client openssl (missing: ${missing[*]})" >&2
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y nginx wrk nghttp2-client openssl
fi
export EDGE_PROXIES=${EDGE_PROXIES:-fleetgate,bare-pingora,nginx,envoy}
if [[ ,$EDGE_PROXIES, == *,envoy,* ]]; then
    bench_find_envoy
fi

# --- build ------------------------------------------------------------------
bench_build

# --- certificate and configs ------------------------------------------------
# A throwaway ECDSA P-256 certificate for bench.test (self-signed, 2 days).
export CERT="$SCRATCH/cert.pem" KEY="$SCRATCH/key.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
    -keyout "$KEY" -out "$CERT" 2>/dev/null
python3 "$BENCH/edge.py" gen
"$FLEETGATE" check -c "$SCRATCH/edge/fleetgate.toml" >/dev/null

echo "edge: scratch dir $SCRATCH; $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-); kernel $(uname -r)" >&2
echo "edge: $(nginx -v 2>&1); $(wrk -v 2>&1 | head -1); $(h2load --version); $(openssl version)${ENVOY:+; $("$ENVOY" --version | grep -o 'version: [^ ]*')}" >&2

setsid python3 "$BENCH/edge.py" run &
DRIVER_PID=$!
wait "$DRIVER_PID"
DRIVER_PID=
echo "edge: results in $SCRATCH/edge-results.jsonl, table in $SCRATCH/edge-table.md" >&2
