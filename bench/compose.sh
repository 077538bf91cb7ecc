#!/usr/bin/env bash
# `compose up -d` of a 5-service project from cached images, then `down`: dockbuild compose vs
# Debian's docker-compose (1.29) on Debian's dockerd (docker-ref.sh: no bridge there, so both
# sides use network_mode: host; dockbuild is also timed with its default project network).
# Needs root, busybox-static; docker-compose and /work/shared/peers/docker-ref.sh for the peer.
# Usage: bench/compose.sh [dockbuild-binary]    (RUNS=5 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-${DOCKBUILD:-.build/release/dockbuild}}")
RUNS=${RUNS:-5}
REF=${DOCKER_REF:-/work/shared/peers/docker-ref.sh}
[ "$(id -u)" = 0 ] || { echo "bench/compose.sh: needs root" >&2; exit 1; }
[ -x "$BIN" ] || { echo "bench/compose.sh: $BIN not built (make release)" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "bench/compose.sh: /bin/busybox is missing (apt-get install busybox-static)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/compose-bench.XXXXXX)
export DOCKBUILD_ROOT=$work/root DOCKBUILD_BRIDGE=dbbench$$ DOCKBUILD_SUBNET=10.89.250.0/24
cleanup() {
  (cd "$work/host" 2>/dev/null && "$BIN" compose down -t 0 >/dev/null 2>&1) || true
  (cd "$work/bridge" 2>/dev/null && "$BIN" compose down -t 0 >/dev/null 2>&1) || true
  # the project networks (bridges br-...) a failed `down` left
  "$BIN" network ls -q 2>/dev/null | while read -r n; do "$BIN" network rm "$n" >/dev/null 2>&1 || true; done
  ip link del "$DOCKBUILD_BRIDGE" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# a busybox image in dockbuild's store
mkdir -p "$work/ctx/bin" "$work/ctx/etc" "$work/ctx/tmp"
cp /bin/busybox "$work/ctx/bin/"
for a in sh sleep true; do ln -s busybox "$work/ctx/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/ctx/etc/passwd"
printf 'FROM scratch\nCOPY . /\nENV PATH=/bin\n' > "$work/ctx/Dockerfile"
"$BIN" build -q -t busybox:latest "$work/ctx" >/dev/null

project() {  # $1: dir, $2: network_mode line or empty
  mkdir -p "$1"
  { echo "services:"
    for s in web api worker cache db; do
      printf '  %s:\n    image: busybox:latest\n    command: ["sleep", "3600"]\n    stop_signal: SIGKILL\n' "$s"
      if [ -n "$2" ]; then printf '    %s\n' "$2"; fi
    done; } > "$1/docker-compose.yml"
}
project "$work/host" "network_mode: host"
project "$work/bridge" ""

ms() { echo $(( $(date +%s%N) / 1000000 )); }
measure() {  # $1: label, $2: dir, then the command prefix
  local label=$1 dir=$2; shift 2
  local total=0 best=999999
  for _ in $(seq "$RUNS"); do
    local t0; t0=$(ms)
    (cd "$dir" && "$@" up -d >/dev/null 2>&1)
    local t=$(( $(ms) - t0 ))
    (cd "$dir" && "$@" down -t 0 >/dev/null 2>&1)
    total=$((total + t)); [ $t -lt $best ] && best=$t
  done
  printf '%-40s mean %6d ms   best %6d ms\n' "$label" $((total / RUNS)) "$best"
}

echo "up -d of 5 services, $RUNS runs each ($(nproc) cores)"
measure "dockbuild compose (network host)" "$work/host" "$BIN" compose
measure "dockbuild compose (bridge)" "$work/bridge" "$BIN" compose
if command -v docker-compose >/dev/null && [ -x "$REF" ]; then
  "$REF" start >/dev/null
  eval "$("$REF" env)"
  measure "docker-compose 1.29 + dockerd (host)" "$work/host" docker-compose
else
  echo "docker-compose or $REF missing: the peer was not measured"
fi
