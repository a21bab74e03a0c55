#!/usr/bin/env bash
# Builds a Debian package of fleetgate with dpkg-deb: the binary (built with
# the `dist` profile: optimised, symbols stripped), the systemd unit, the
# logrotate file, the example configuration with its manifests, the Grafana
# dashboard and the documentation.
#
#   scripts/package-deb.sh                     # build, then package into target/deb/
#   scripts/package-deb.sh --binary PATH       # package an existing binary
#   scripts/package-deb.sh --out DIR
#   scripts/package-deb.sh --compression none  # dpkg-deb -Z: xz (default), gzip, zstd, none
#
# The package creates the `fleetgate` system user and installs the unit, but
# neither enables nor starts it: write /etc/fleetgate/fleetgate.toml first
# (an example is in /usr/share/doc/fleetgate/examples/), then
# `systemctl enable --now fleetgate`. docs/operations.md has the rest.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
out="target/deb"
compression="xz"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --compression) compression="$2"; shift 2 ;;
    *) echo "package-deb: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -z "$binary" ]; then
  cargo build --profile dist -p fleetgate --bin fleetgate
  binary="target/dist/fleetgate"
fi
[ -x "$binary" ] || { echo "package-deb: no executable at $binary" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/fleetgate_${version}_${arch}"
doc="$root/usr/share/doc/fleetgate"

install -D -m 0755 "$binary" "$root/usr/bin/fleetgate"
# The unit, pointing at the packaged binary.
install -d "$root/lib/systemd/system"
sed 's#/usr/local/bin/fleetgate#/usr/bin/fleetgate#g' conf/systemd/fleetgate.service \
  > "$root/lib/systemd/system/fleetgate.service"
chmod 0644 "$root/lib/systemd/system/fleetgate.service"
install -D -m 0644 conf/logrotate/fleetgate "$root/etc/logrotate.d/fleetgate"
install -d -m 0755 "$root/etc/fleetgate"
install -D -m 0644 conf/fleetgate.toml "$doc/examples/fleetgate.toml"
install -d "$doc/examples/seed"
install -m 0644 conf/seed/*.yaml "$doc/examples/seed/"
install -D -m 0644 conf/grafana/fleetgate-dashboard.json "$doc/grafana/fleetgate-dashboard.json"
install -d "$doc/kubernetes"
install -m 0644 conf/kubernetes/*.yaml "$doc/kubernetes/"
install -m 0644 README.md CHANGELOG.md "$doc/"
install -d "$doc/docs"
install -m 0644 docs/*.md "$doc/docs/"
install -m 0644 LICENSE "$doc/copyright"

install -d "$root/DEBIAN"
size=$(du -sk "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<EOF
Package: fleetgate
Version: $version
Architecture: $arch
Maintainer: fleetgate developers <fleetgate@example.invalid>
Installed-Size: $size
Depends: libc6, adduser
Section: net
Priority: optional
Homepage: https://example.invalid/fleetgate
Description: multi-cluster edge gateway for Kubernetes Ingress
 One gateway address in front of the same application in several
 Kubernetes clusters: Ingress routing, canary releases, cluster subsets,
 health-checked pools with lossless failover between zones. Built on
 Cloudflare's Pingora; configured by one TOML file; runs as a systemd
 service.
EOF
echo "/etc/logrotate.d/fleetgate" > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd fleetgate >/dev/null; then
    adduser --system --group --no-create-home --home /nonexistent fleetgate
  fi
  chown root:fleetgate /etc/fleetgate
  chmod 0750 /etc/fleetgate
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
  fi
fi
exit 0
EOF
cat > "$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
exit 0
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"

mkdir -p "$out"
deb="$out/fleetgate_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compression" --build "$root" "$deb" >/dev/null
echo "$deb"
