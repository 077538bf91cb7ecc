#!/usr/bin/env bash
# Start-to-exit latency of /bin/true in a busybox bundle: dockbuild vs runc vs crun.
# Needs root, hyperfine, runc, crun, busybox-static.
# Usage: bench/runtime.sh [dockbuild-binary [dockbuild-runc-binary]]
# (build both: swift build -c release --static-swift-stdlib --product dockbuild; then the same with --product dockbuild-runc)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${DOCKBUILD:-.build/release/dockbuild}}
LEAN=${2:-${DOCKBUILD_RUNC:-$(dirname "$BIN")/dockbuild-runc}}
RUNS=${RUNS:-30}
[ "$(id -u)" = 0 ] || { echo "bench/runtime.sh: needs root" >&2; exit 1; }
for t in hyperfine runc busybox; do command -v $t >/dev/null || { echo "bench/runtime.sh: $t is missing" >&2; exit 1; }; done
[ -x "$BIN" ] || [ -x "$LEAN" ] || { echo "bench/runtime.sh: $BIN not built (make release)" >&2; exit 1; }

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

cmds=("runc --root $work/state-r run --bundle $bundle bench-r")
names=(runc)
if [ -x "$BIN" ]; then
  cmds+=("$BIN runtime --root $work/state-d run --bundle $bundle bench-d")
  names+=(dockbuild)
fi
if [ -x "$LEAN" ]; then
  cmds+=("$LEAN --root $work/state-l run --bundle $bundle bench-l")
  names+=(dockbuild-runc)
fi
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
# Medians: on a busy machine the mean follows the scheduler more than the runtime.
med = {k: v["median"] * 1000 for k, v in r.items()}
print("\nstart-to-exit of /bin/true, median (mean, min) in ms:")
for k, v in r.items():
    print(f"  {k:18} {v['median']*1000:7.1f} ({v['mean']*1000:.1f}, {v['min']*1000:.1f})")
for name in ("dockbuild", "dockbuild-runc"):
    if name not in r:
        continue
    d = med[name]
    print(f"runc / {name} = {med['runc']/d:.2f}x (>1: {name} faster)")
    if "crun" in r:
        c, w = med["crun"], med["crun-wrapper-only"]
        print(f"{name} / crun = {d/c:.2f}x (crun's wrapper included); {name} / (crun - wrapper) = {d/max(c-w, 0.1):.2f}x")
EOP
