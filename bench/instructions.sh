#!/usr/bin/env bash
# User-space instructions per proxied request: fleetgate vs the bare Pingora
# proxy (and, optionally, nginx and HAProxy), measured with Valgrind's
# callgrind in front of the same nginx origin, on workloads a, b and c (see
# bench/gen.py and docs/benchmarks.md).
#
# Why instructions: CPU time and requests/s (bench/run.sh) are noisy on a
# shared machine, and hardware counters are often unavailable (VMs,
# containers). Callgrind counts the instructions the proxy executes, which
# depends on what the code does, not on the machine's load: repeated runs
# agree within ~0.5% (what is left: whether a read finds data or would
# block, and hash seeds). It counts user space only. The kernel's share is left
# out, but it is close to equal for the proxies compared here: they make
# the same syscalls per request (read/write on the downstream and upstream
# keep-alive connections, epoll).
#
# For each workload and proxy: start the origin, start the proxy under
# `valgrind --tool=callgrind --instr-atstart=no` (one worker thread or
# process), wait until it answers 200, send WARMUP requests over one
# keep-alive connection (bench/instr_client.py), switch instrumentation on
# and zero the counters, send REQUESTS requests on the same connection, dump
# the counters while the connection is still open, then zero them again,
# wait IDLE seconds and dump the idle background work (timers, health
# checks, Pingora's clock thread), and stop the proxy.
#   Ir/request = (Ir of dump 1 - idle Ir/s x seconds of the measurement) / REQUESTS
# so start-up, warm-up, connection set-up and tear-down and the idle
# background work are all left out (the idle share is small, ~1%, but it is
# the only part that depends on wall-clock time, so subtracting it keeps
# the result stable when Valgrind runs slower or faster).
#
#   bench/instructions.sh                               # a,b,c x fleetgate,bare-pingora
#   SKIP_BUILD=1 WORKLOADS=a bench/instructions.sh
#   PROXIES=fleetgate,bare-pingora,nginx,haproxy bench/instructions.sh
#   callgrind_annotate --inclusive=yes SCRATCH/callgrind/a-fleetgate.out | head -60
#
# Environment: REQUESTS (10000, measured requests per run), WARMUP (2000,
# requests before the measurement), CONNECTIONS (1, keep-alive connections,
# used in turn), HOSTS (1000, workloads b/c), CANARY_EVERY (20: every n-th
# request of workload c carries the header canary's header), PROXIES
# (fleetgate,bare-pingora; also nginx, haproxy), WORKLOADS (a,b,c; the
# route-policy workloads p-allow, p-limit, p-auth, p-cors, p-headers,
# p-all, p-regex, p-rewrite and p-hash are workload a plus one policy, for
# PROXIES=fleetgate), IDLE
# (5, seconds), SCRATCH (default a new temp dir; configs, logs,
# callgrind/<workload>-<proxy>.out and .idle.out, results.tsv, table.md),
# READY_TIMEOUT (300 s), RUN_TIMEOUT (900 s per client run),
# SKIP_BUILD=1 to use the binaries already in target/release,
# VALGRIND_ARGS (extra callgrind options, e.g. "--cache-sim=yes" to also
# simulate cache misses: callgrind_annotate then shows D1mr/DLmr per function).
# The default run takes about 4 minutes. CPU 0: the client and the origin;
# CPU 1: the proxy under test (as in bench/run.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
SCRATCH=${SCRATCH:-$(mktemp -d /tmp/fleetgate-instr.XXXXXX)}
SCRATCH=$(mkdir -p "$SCRATCH" && cd "$SCRATCH" && pwd)
REQUESTS=${REQUESTS:-10000}
WARMUP=${WARMUP:-2000}
CONNECTIONS=${CONNECTIONS:-1}
HOSTS=${HOSTS:-1000}
CANARY_EVERY=${CANARY_EVERY:-20}
PROXIES=${PROXIES:-fleetgate,bare-pingora}
WORKLOADS=${WORKLOADS:-a,b,c}
IDLE=${IDLE:-5}
READY_TIMEOUT=${READY_TIMEOUT:-300}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
CG="$SCRATCH/callgrind"
VGDB_PREFIX="$SCRATCH/vgdb/pipe"
mkdir -p "$CG" "$SCRATCH/logs" "$SCRATCH/vgdb"
: >"$SCRATCH/pids"

cleanup() {
    # Every process group this script started (recorded in SCRATCH/pids).
    if [[ -s "$SCRATCH/pids" ]]; then
        while read -r pid; do
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        done <"$SCRATCH/pids"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ $(nproc) -lt 2 ]]; then
    echo "instructions: needs at least 2 CPUs (client + origin on CPU 0, the proxy on CPU 1)" >&2
    exit 1
fi

# --- tools -------------------------------------------------------------------
missing=()
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || missing+=(valgrind)
command -v nginx >/dev/null || missing+=(nginx)
[[ ",$PROXIES," != *,haproxy,* ]] || command -v haproxy >/dev/null || missing+=(haproxy)
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "instructions: installing ${missing[*]}" >&2
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

# --- build ------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    (cd "$ROOT" && cargo build --release -p fleetgate -p fleetgate-bench)
fi
FLEETGATE=${FLEETGATE:-"$ROOT/target/release/fleetgate"}
BARE_PINGORA=${BARE_PINGORA:-"$ROOT/target/release/bare-pingora"}

# --- configs ----------------------------------------------------------------
python3 "$BENCH/gen.py" --out "$SCRATCH" --hosts "$HOSTS" --workloads "$WORKLOADS"
if [[ ",$PROXIES," == *,fleetgate,* ]]; then
    for w in ${WORKLOADS//,/ }; do
        "$FLEETGATE" check -c "$SCRATCH/$w/fleetgate.toml" >/dev/null
    done
fi

# --- processes ----------------------------------------------------------------
# The ports of bench/gen.py: another benchmark using them would answer in
# place of ours.
for port in 8400 9911 18501 18502 18599; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "instructions: port $port is in use (another benchmark running?)" >&2
        exit 1
    fi
done

# start LOG CPU CMD...: starts CMD pinned to CPU in a new session (so its
# process group id is its pid, the one `setsid` execs without forking in a
# non-interactive shell) and records it; sets STARTED.
start() {
    local log=$1 cpu=$2
    shift 2
    RUST_LOG=warn setsid taskset -c "$cpu" "$@" >"$log" 2>&1 </dev/null &
    STARTED=$!
    echo "$STARTED" >>"$SCRATCH/pids"
}

# stop PID [SIGNAL]: SIGNAL (default INT: fast shutdown for Pingora and
# nginx; HAProxy wants TERM), then Valgrind writes its exit dump and removes
# its FIFOs; SIGKILL after 30 s.
stop() {
    local pid=$1 sig=${2:-INT} i
    kill "-$sig" -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* || -z $(ps -o pid= -p "$pid") ]] && break
        sleep 0.1
    done
    if ((i == 300)); then
        echo "instructions: $pid did not exit 30 s after SIG$sig; killing it" >&2
    fi
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# proxy_command PROXY DIR: sets CMD to PROXY's command line on workload DIR.
proxy_command() {
    local proxy=$1 d=$2
    case $proxy in
    fleetgate | fleetgate-noxff) CMD=("$FLEETGATE" run -c "$d/$proxy.toml") ;;
    bare-pingora)
        read -ra CMD <"$d/bare.args"
        CMD=("$BARE_PINGORA" --threads 1 "${CMD[@]}")
        ;;
    # One process, no master (Valgrind follows forks, but one pid is simpler).
    nginx) CMD=(nginx -p "$d/nginx" -c "$d/nginx.conf" -e "$d/nginx/error.log" -g "master_process off;") ;;
    haproxy) CMD=(haproxy -db -f "$d/haproxy.cfg") ;;
    *)
        echo "instructions: unknown proxy $proxy" >&2
        exit 1
        ;;
    esac
}

client() {
    timeout "$RUN_TIMEOUT" taskset -c 0 python3 "$BENCH/instr_client.py" --workload "$1" \
        --host "$(cat "$SCRATCH/$1/host")" --hosts "$HOSTS" --canary-every "$CANARY_EVERY" \
        --connections "$CONNECTIONS" "${@:2}"
}

echo "instructions: scratch dir $SCRATCH; $(valgrind --version); $REQUESTS requests after $WARMUP warm-up, $CONNECTIONS connection(s)" >&2
start "$SCRATCH/logs/origin.log" 0 nginx -p "$SCRATCH/origin" -c "$SCRATCH/origin/nginx.conf" \
    -e "$SCRATCH/origin/error.log"
ORIGIN=$STARTED
python3 - <<'EOF'
import socket, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", 18599), timeout=1).close()
        break
    except OSError:
        time.sleep(0.1)
else:
    raise SystemExit("instructions: the origin did not start")
EOF

total_ir() { awk '/^(totals|summary):/ { print $2; exit }' "$1"; }

: >"$SCRATCH/results.tsv"
T0=$SECONDS
for w in ${WORKLOADS//,/ }; do
    for p in ${PROXIES//,/ }; do
        t0=$SECONDS
        proxy_command "$p" "$SCRATCH/$w"
        out="$CG/$w-$p"
        rm -f "$out".*
        # shellcheck disable=SC2086 # VALGRIND_ARGS is a list of options
        start "$SCRATCH/logs/$w-$p.log" 1 valgrind --tool=callgrind --instr-atstart=no \
            ${VALGRIND_ARGS:-} --vgdb-prefix="$VGDB_PREFIX" --callgrind-out-file="$out.atexit" "${CMD[@]}"
        pid=$STARTED
        ctl="callgrind_control --vgdb-prefix=$VGDB_PREFIX"
        client "$w" -n 1 --wait-ready "$READY_TIMEOUT" --pid "$pid" >/dev/null
        t_ready=$((SECONDS - t0))
        # Dump 1: the measured requests.
        if ! secs=$(client "$w" --warmup "$WARMUP" -n "$REQUESTS" \
            --between "$ctl -i on $pid && $ctl -z $pid" --after "$ctl -d $pid"); then
            echo "instructions: workload $w $p failed; log: $SCRATCH/logs/$w-$p.log" >&2
            tail -20 "$SCRATCH/logs/$w-$p.log" >&2
            exit 1
        fi
        # Dump 2: IDLE seconds without requests (timers, health checks,
        # Pingora's clock thread), to take their share out of dump 1.
        $ctl -z "$pid" >/dev/null 2>&1
        i0=$EPOCHREALTIME
        sleep "$IDLE"
        i1=$EPOCHREALTIME
        $ctl -d "$pid" >/dev/null 2>&1
        stop "$pid" "$([[ $p == haproxy ]] && echo TERM || echo INT)"
        for n in 1 2; do
            if [[ ! -s "$out.atexit.$n" ]]; then
                echo "instructions: no callgrind dump $out.atexit.$n" >&2
                exit 1
            fi
        done
        mv "$out.atexit.1" "$out.out"
        mv "$out.atexit.2" "$out.idle.out"
        rm -f "$out".atexit*
        ir=$(total_ir "$out.out")
        idle_ir=$(total_ir "$out.idle.out")
        read -r idle_rate per_req <<<"$(python3 -c 'import sys
ir, n, s, iir, i0, i1 = map(float, sys.argv[1:])
rate = iir / (i1 - i0)
print(f"{rate:.0f} {(ir - rate * s) / n:.0f}")' "$ir" "$REQUESTS" "$secs" "$idle_ir" "$i0" "$i1")"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$p" "$REQUESTS" "$ir" "$secs" "$idle_rate" "$out.out" \
            >>"$SCRATCH/results.tsv"
        echo "instructions: workload $w $p: $ir Ir / $REQUESTS requests in $secs s," \
            "idle $idle_rate Ir/s: $per_req Ir/request (ready ${t_ready} s, run $((SECONDS - t0)) s)" >&2
    done
done
stop "$ORIGIN"

python3 - "$SCRATCH/results.tsv" <<'EOF' | tee "$SCRATCH/table.md"
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1], encoding="utf-8")]
per, idle = {}, {}
for w, p, n, ir, secs, rate, _ in rows:
    idle[(w, p)] = float(rate) * float(secs) / float(n)
    per[(w, p)] = int(ir) / int(n) - idle[(w, p)]
def ratio(x, y):
    return f"{x / y:.3f}" if y else "-"
print("| workload | proxy | Ir/request | idle Ir/request (subtracted) | vs bare-pingora | vs nginx "
      "| callgrind file |")
print("|---|---|---:|---:|---:|---:|---|")
for w, p, *_, path in rows:
    x = per[(w, p)]
    print(f"| {w} | {p} | {x:,.0f} | {idle[(w, p)]:,.0f} | {ratio(x, per.get((w, 'bare-pingora')))} "
          f"| {ratio(x, per.get((w, 'nginx')))} | {path} |")
EOF
echo "instructions: $((SECONDS - T0)) s; results in $SCRATCH/results.tsv, table in $SCRATCH/table.md" >&2
echo "instructions: where they go: callgrind_annotate --inclusive=yes $CG/<workload>-<proxy>.out | head -60" >&2
