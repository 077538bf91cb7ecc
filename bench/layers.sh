#!/usr/bin/env bash
# Layer engine benchmark: create and apply a gzip layer of a ~200 MB tree of real files
# (copies of /usr/lib/python3* and /usr/share) with dockbuild, tar | gzip -6, tar | pigz and umoci,
# side by side, and print the ratios. Needs: a release build, umoci, pigz, GNU tar. Run as root
# (ownership is preserved on apply). Usage: bench/layers.sh [MB]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-200}
BIN=${DOCKBUILD:-.build/release/dockbuild}
[ -x "$BIN" ] || { echo "bench/layers.sh: $BIN missing; run 'swift build -c release' (or make release)" >&2; exit 1; }
for t in umoci pigz gzip tar python3; do command -v $t >/dev/null || { echo "bench/layers.sh: $t is not installed (make deps)" >&2; exit 1; }; done

W=$(mktemp -d /tmp/dockbuild-bench-layers.XXXXXX)
trap 'rm -rf "$W"' EXIT
TREE=$W/tree
mkdir -p "$TREE/share"
for d in /usr/lib/python3*; do [ -d "$d" ] && cp -a "$d" "$TREE/"; done
for d in /usr/share/*; do
  [ "$(du -sm "$TREE" | cut -f1)" -ge "$MB" ] && break
  cp -a "$d" "$TREE/share/" 2>/dev/null || true
done
SIZE_MB=$(du -sm "$TREE" | cut -f1); FILES=$(find "$TREE" | wc -l)
echo "tree: $SIZE_MB MB, $FILES entries, $(nproc) CPUs"
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
# Warm the page cache once so every contender reads from memory.
tar -cf - -C "$TREE" . > /dev/null

now() { date +%s.%N; }
declare -A T S
timeit() { # name, command...
  local name=$1; shift
  local a b; a=$(now); "$@"; b=$(now)
  T[$name]=$(python3 -c "print(f'{$b-$a:.2f}')")
}
fsize() { stat -c %s "$1"; }

# --- create ---
timeit create_db1 "$BIN" layer create "$TREE" -o "$W/db1.tgz" -c gzip:1 --no-sync >/dev/null; S[create_db1]=$(fsize "$W/db1.tgz")
timeit create_db3 "$BIN" layer create "$TREE" -o "$W/db3.tgz" -c gzip:3 --no-sync >/dev/null; S[create_db3]=$(fsize "$W/db3.tgz")
timeit create_db6 "$BIN" layer create "$TREE" -o "$W/db6.tgz" -c gzip:6 --no-sync >/dev/null; S[create_db6]=$(fsize "$W/db6.tgz")
timeit create_dbz "$BIN" layer create "$TREE" -o "$W/dbz.tzst" -c zstd:3 --no-sync >/dev/null; S[create_dbz]=$(fsize "$W/dbz.tzst")
timeit create_gzip bash -c "tar -cf - -C '$TREE' . | gzip -6 > '$W/gz.tgz'"; S[create_gzip]=$(fsize "$W/gz.tgz")
timeit create_pigz bash -c "tar -cf - -C '$TREE' . | pigz -6 > '$W/pigz.tgz'"; S[create_pigz]=$(fsize "$W/pigz.tgz")
umoci init --layout "$W/oci" >/dev/null
umoci new --image "$W/oci:base" >/dev/null
umoci unpack --image "$W/oci:base" "$W/bundle" >/dev/null
cp -a "$TREE/." "$W/bundle/rootfs/"
timeit create_umoci umoci repack --image "$W/oci:big" "$W/bundle"
UMOCI_LAYER=$(python3 - "$W/oci" <<'PY'
import json, sys
lay = sys.argv[1]
idx = json.load(open(lay + "/index.json"))
m = [x for x in idx["manifests"] if x.get("annotations", {}).get("org.opencontainers.image.ref.name") == "big"][0]
man = json.load(open(lay + "/blobs/sha256/" + m["digest"][7:]))
print(lay + "/blobs/sha256/" + man["layers"][-1]["digest"][7:])
PY
)
S[create_umoci]=$(fsize "$UMOCI_LAYER")

# --- apply (each into a fresh directory) ---
fresh() { rm -rf "$W/out"; mkdir -p "$W/out"; sync; }
fresh; timeit apply_db "$BIN" layer apply "$W/db1.tgz" "$W/out"
fresh; timeit apply_db6 "$BIN" layer apply "$W/db6.tgz" "$W/out"
fresh; timeit apply_gzip tar -xzpf "$W/gz.tgz" -C "$W/out"
fresh; timeit apply_pigz bash -c "pigz -dc '$W/pigz.tgz' | tar -xpf - -C '$W/out'"
rm -rf "$W/unpacked"; sync
timeit apply_umoci umoci unpack --image "$W/oci:big" "$W/unpacked"

python3 - "$SIZE_MB" <<PY
import sys
T = {$(for k in "${!T[@]}"; do printf '"%s": %s, ' "$k" "${T[$k]}"; done)}
S = {$(for k in "${!S[@]}"; do printf '"%s": %s, ' "$k" "${S[$k]}"; done)}
mb = float(sys.argv[1])
def row(label, key):
    s = S.get(key)
    size = f"{s/1e6:8.1f} MB" if s else "           "
    print(f"  {label:34s} {T[key]:6.2f} s  {mb/T[key]:7.1f} MB/s  {size}")
print("create (tree -> gzip layer file):")
row("dockbuild gzip:1 (ISA-L, parallel)", "create_db1")
row("dockbuild gzip:3 (ISA-L, parallel)", "create_db3")
row("dockbuild gzip:6 (zlib, parallel)", "create_db6")
row("dockbuild zstd:3", "create_dbz")
row("tar | gzip -6", "create_gzip")
row("tar | pigz -6", "create_pigz")
row("umoci repack", "create_umoci")
print("apply (layer file -> directory):")
row("dockbuild (gzip:1 layer)", "apply_db")
row("dockbuild (gzip:6 layer)", "apply_db6")
row("tar -xzf (gzip -d)", "apply_gzip")
row("pigz -d | tar -x", "apply_pigz")
row("umoci unpack", "apply_umoci")
print("ratios:")
print(f"  create: umoci / dockbuild gzip:1 = {T['create_umoci']/T['create_db1']:.1f}x   (goal >= 3x)")
print(f"  create: pigz -6 / dockbuild gzip:1 = {T['create_pigz']/T['create_db1']:.1f}x, size {S['create_db1']/S['create_pigz']:.2f}x of pigz's")
print(f"  create: pigz -6 / dockbuild gzip:3 = {T['create_pigz']/T['create_db3']:.1f}x, size {S['create_db3']/S['create_pigz']:.2f}x of pigz's")
print(f"  create: pigz -6 / dockbuild gzip:6 = {T['create_pigz']/T['create_db6']:.1f}x, size {S['create_db6']/S['create_pigz']:.2f}x of pigz's")
print(f"  create: gzip -6 / dockbuild gzip:1 = {T['create_gzip']/T['create_db1']:.1f}x")
print(f"  apply:  umoci unpack / dockbuild = {T['apply_umoci']/T['apply_db']:.1f}x   (goal >= 2x)")
print(f"  apply:  tar -xzf / dockbuild = {T['apply_gzip']/T['apply_db']:.1f}x, pigz|tar / dockbuild = {T['apply_pigz']/T['apply_db']:.1f}x")
PY
