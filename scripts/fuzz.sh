#!/usr/bin/env bash
# Builds the cargo-fuzz targets under fuzz/ and runs each for a bounded
# time: scripts/fuzz.sh [seconds-per-target] [target...]. Seeds come from
# conf/ and the test inputs; a crash, a hang (over 10 s for one input) or a
# memory blow-up (over 2 GiB) fails the run and leaves the input under
# fuzz/artifacts/<target>/. The last line per target is libFuzzer's
# summary: executions and coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(config_toml manifests_yaml canary_annotations route_table canary_matchers)
fi

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# libFuzzer's instrumentation needs unstable flags: the nightly toolchain
# where the machine has one, else the stable one told to allow them.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  toolchain=()
  export RUSTC_BOOTSTRAP=1
fi

seeds=fuzz/corpus
mkdir -p "$seeds"/{config_toml,manifests_yaml,canary_annotations,route_table,canary_matchers}
for f in conf/*.toml; do
  # The target skips inputs that name files (they would read the disk).
  grep -v -E 'manifests|file|cert|key|ca_' "$f" > "$seeds/config_toml/seed-$(basename "$f")" || true
done
for f in conf/seed/*.yaml; do
  cp "$f" "$seeds/manifests_yaml/seed-$(basename "$f")"
  sed -n 's/^ *nginx.ingress.kubernetes.io\/\([a-z-]*\): *"\?\([^"]*\)"\?$/\1=\2/p' "$f" \
    > "$seeds/canary_annotations/seed-$(basename "$f")"
  cp "$seeds/canary_annotations/seed-$(basename "$f")" "$seeds/canary_matchers/seed-$(basename "$f")"
  printf '\n/?canary=gray\ncanary-dest: cluster1\napp-web-demo-version: gray\ncookie: canary=always\n' \
    >> "$seeds/canary_matchers/seed-$(basename "$f")"
done
printf 'example.com /svc1/a\nexample.com /svc1 exact\nexample.com /svc1 prefix\n*.example.com / prefix\n* / impl\n' \
  > "$seeds/route_table/seed-rules"
printf 'Example.COM:8080 /x/../svc1//%%61\nexample.com /svc1\n' > "$seeds/route_table/seed-dots"

(cd fuzz && cargo "${toolchain[@]}" fuzz build -O)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${seconds}s"
  status=0
  (cd fuzz && cargo "${toolchain[@]}" fuzz run -O "$t" "corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1) >"$log" 2>&1 || status=$?
  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|peak_rss_mb)' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz: $t failed; the input is under fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
