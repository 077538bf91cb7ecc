#!/usr/bin/env bash
# Start-to-exit latency of /bin/true in a busybox bundle: dockbuild vs runc vs crun.
# Needs root, hyperfine, runc, crun, busybox-static. Usage: bench/runtime.sh [dockbuild-binary]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${DOCKBUILD:-.build/release/dockbuild}}
RUNS=${RUNS:-30}
[ "$(id -u)" = 0 ] || { echo "bench/runtime.sh: needs root" >&2; exit 1; }
for t in hyperfine runc busybox; do command -v $t >/dev/null || { echo "bench/runtime.sh: $t is missing" >&2; exit 1; }; done
[ -x "$BIN" ] || { echo "bench/runtime.sh: $BIN not built (make release)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bundle=$work/bundle
mkdir -p $bundle/rootfs/{bin,proc,sys,dev,tmp,etc}
cp "$(command -v busybox)" $bundle/rootfs/bin/busybox
for a in $($bundle/rootfs/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox $bundle/rootfs/bin/$a; done
(cd $bundle && runc spec)
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"\/bin\/true"/' $bundle/config.json

# crun cannot run here while the hybrid cgroup2 mount is visible: hide it in a private mount namespace.
cat > $work/crun <<'EOS'
#!/bin/sh
exec unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun "$@"' sh "$@"
EOS
chmod +x $work/crun

cmds=("$BIN runtime --root $work/state-d run --bundle $bundle bench-d"
      "runc --root $work/state-r run --bundle $bundle bench-r")
names=(dockbuild runc)
if command -v crun >/dev/null; then
  cmds+=("$work/crun --root $work/state-c run --bundle $bundle bench-c")
  names+=(crun)
  # The wrapper's own cost (unshare + sh + umount), to read crun's figure fairly.
  cmds+=("unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec true'")
  names+=(crun-wrapper-only)
fi
args=()
for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
hyperfine -N --warmup 5 --runs "$RUNS" --export-json $work/r.json "${args[@]}"
python3 - "$work/r.json" <<'EOP'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
d = r["dockbuild"]["mean"] * 1000
print(f"\nmean start-to-exit of /bin/true (ms): " + ", ".join(f"{k} {v['mean']*1000:.1f}" for k, v in r.items()))
print(f"runc / dockbuild = {r['runc']['mean']*1000/d:.2f}x (>1: dockbuild faster)")
if "crun" in r:
    c = r["crun"]["mean"] * 1000
    w = r["crun-wrapper-only"]["mean"] * 1000
    print(f"dockbuild / crun = {d/c:.2f}x (wrapper included); dockbuild / (crun - wrapper) = {d/(c-w):.2f}x")
EOP
