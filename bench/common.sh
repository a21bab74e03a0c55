# Shared by bench/run.sh and bench/edge.sh (sourced, not run): the scratch
# directory, the clean-up of every process a driver started, and the CPU
# check. Expects SCRATCH to be set; a driver records each process group it
# starts in $SCRATCH/pids and runs in its own group ($DRIVER_PID, setsid).

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
