#!/usr/bin/env bash
# Installs what building and testing fleetgate needs beyond the Rust
# toolchain: cmake (pingora-core builds zlib-ng with it), a C compiler, curl,
# htpasswd (apache2-utils: the basic-auth tests make their password files
# with the real tool), dnsmasq (dnsmasq-base: a real DNS server for the
# dns endpoint source), and Python 3 with the packages of the end-to-end tests' protocol clients
# (tests/clients/requirements.txt).
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
# The dns endpoint source's tests ask a real DNS server (the binary only,
# no system service).
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# Zone drills (tests/e2e/drills.rs, scripts/drill.sh) build network
# namespaces with iproute2 and cut or thin links with nftables.
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing+=(nftables)
# Gateway replicas are tested behind a real L4 balancer (tests/e2e/replicas.rs).
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# The admin status page is tested in a real headless browser (tests/e2e/status_page.rs).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -ne 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import h2, httpx, grpc, websockets' >/dev/null 2>&1; then
  echo "setup: installing tests/clients/requirements.txt" >&2
  pip_flags=(-q --disable-pip-version-check --root-user-action=ignore)
  # A distribution's own Python (PEP 668: Debian's) refuses plain pip installs.
  stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')
  if [ -e "$stdlib/EXTERNALLY-MANAGED" ]; then
    pip_flags+=(--break-system-packages)
  fi
  python3 -m pip install "${pip_flags[@]}" -r tests/clients/requirements.txt
fi
