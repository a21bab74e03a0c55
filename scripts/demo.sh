#!/usr/bin/env bash
# The demo: the zone-disaster-recovery scenario on this machine.
#
# Builds fleetgate, starts the demo backends (9 web-demo pods of service1 in
# cluster-demo-1 on 127.0.0.1:18001-18009, 1 in cluster-demo-2 on
# 127.0.0.1:18011), starts the gateway on 127.0.0.1:8080 with conf/fleetgate.toml,
# and on https://127.0.0.1:8443 (HTTP/1.1 and HTTP/2, with a throwaway
# certificate for example.com made by openssl at start), sends 100 requests
# to example.com/svc1 and prints who answered, then keeps serving until
# Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release -p fleetgate -p fleetgate-examples --bins

run_dir=.fleetgate-run
mkdir -p "$run_dir"
pids=()
# The gateway's pid file ([gateway] runtime_dir defaults to /tmp outside
# systemd): after a binary upgrade (SIGUSR2) it names the new process.
pid_file=/tmp/fleetgate-ackone-gateway-hongkong.pid
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -s "$pid_file" ]; then kill "$(cat "$pid_file")" 2>/dev/null || true; fi
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_line() { # file pattern what
  for _ in $(seq 1 500); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.02
  done
  echo "demo: $3 did not start; its log:" >&2
  cat "$1" >&2
  exit 1
}

start_backend() { # name port
  local log="$run_dir/web-demo-$2.log"
  : > "$log"
  target/release/web-demo --listen "127.0.0.1:$2" --name "$1" > "$log" 2>&1 &
  pids+=($!)
  wait_for_line "$log" "listening on" "web-demo $1 on port $2"
}

for port in 18001 18002 18003 18004 18005 18006 18007 18008 18009; do
  start_backend cluster-demo-1 "$port"
done
start_backend cluster-demo-2 18011
start_backend cluster-demo-1-canary 18021
echo "demo: backends up: service1 = 9 x cluster-demo-1 + 1 x cluster-demo-2; service1-canary-1 = 1 x cluster-demo-1-canary"

# HTTPS: a throwaway self-signed certificate for example.com, and the demo
# configuration plus a TLS listener that serves it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
  -subj /CN=example.com -addext subjectAltName=DNS:example.com \
  -keyout "$run_dir/example.com.key" -out "$run_dir/example.com.crt" 2>/dev/null
config="$run_dir/fleetgate.toml"
sed -e 's|^listen = \["127.0.0.1:8080"\]|&\nlisten_tls = ["127.0.0.1:8443"]|' \
    -e "s|\"seed/|\"$PWD/conf/seed/|" conf/fleetgate.toml > "$config"
printf '\n[[certificate]]\nhosts = ["example.com"]\ncert = "example.com.crt"\nkey = "example.com.key"\n' >> "$config"

# A pid file left by an earlier run must not name what cleanup kills.
rm -f "$pid_file"
target/release/fleetgate check -c "$config"
target/release/fleetgate routes -c "$config"

RUST_LOG=${RUST_LOG:-info} target/release/fleetgate run -c "$config" > "$run_dir/fleetgate.log" 2>&1 &
gateway=$!
pids+=("$gateway")
for _ in $(seq 1 500); do
  curl -s -o /dev/null -H 'Host: example.com' http://127.0.0.1:8080/svc1 && break
  kill -0 "$gateway" 2>/dev/null || { echo "demo: fleetgate exited:" >&2; cat "$run_dir/fleetgate.log" >&2; exit 1; }
  sleep 0.02
done
sed -n '/listening on/,/admin API/p' "$run_dir/fleetgate.log"

echo
echo "demo: 100 requests to http://127.0.0.1:8080/svc1 with Host: example.com"
for _ in $(seq 1 100); do
  curl -s -H 'Host: example.com' http://127.0.0.1:8080/svc1
  echo
done | sort | uniq -c | awk '{printf "  %-16s %3d requests\n", $2, $1}'

split() { # title, curl args...
  local title=$1; shift
  echo
  echo "demo: $title"
  for _ in $(seq 1 100); do
    curl -s "$@"
    echo
  done | sort | uniq -c | awk '{printf "  %-24s %3d requests\n", $2, $1}'
}
split "100 requests to /svc1 with canary-dest: cluster1 (header canary)" \
  -H 'Host: example.com' -H 'canary-dest: cluster1' http://127.0.0.1:8080/svc1
split "100 requests to /service1 (pinned to cluster-demo-1)" \
  -H 'Host: example.com' http://127.0.0.1:8080/service1
split "100 requests to /service1 with app-web-demo-version: gray (cluster-level canary)" \
  -H 'Host: example.com' -H 'app-web-demo-version: gray' http://127.0.0.1:8080/service1

split "100 requests to https://example.com:8443/svc1 over HTTP/2 (TLS, the throwaway certificate)" \
  --http2 --cacert "$run_dir/example.com.crt" --resolve example.com:8443:127.0.0.1 \
  https://example.com:8443/svc1

echo
echo "demo: the gateway keeps serving on http://127.0.0.1:8080 and https://127.0.0.1:8443 (logs: $run_dir/fleetgate.log). Ctrl-C to stop."
echo "      try: curl -H 'Host: example.com' http://127.0.0.1:8080/svc1"
echo "           curl --http2 --cacert $run_dir/example.com.crt --resolve example.com:8443:127.0.0.1 https://example.com:8443/svc1"
echo "           open http://127.0.0.1:9901/ (the status page)"
echo "           kill -USR2 \$(cat $pid_file)   # binary upgrade in place: the demo goes on"
# Until Ctrl-C, or until the gateway (whichever process the pid file
# names after an upgrade) is gone.
while kill -0 "$(cat "$pid_file" 2>/dev/null || echo "$gateway")" 2>/dev/null; do
  sleep 1
done
