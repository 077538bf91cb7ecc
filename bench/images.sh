#!/bin/bash
# Image store commands side by side with their peers; prints seconds and the ratio peer/dockbuild
# (> 1 means dockbuild is faster).
#   import DIR         vs  umoci new + umoci insert (directory -> one-layer image)
#   save --format oci  vs  skopeo copy oci: -> oci-archive:
#   load (OCI tar)     vs  skopeo copy oci-archive: -> oci:
# Input: a copy of /usr/lib/x86_64-linux-gnu (BENCH_SRC to change), a few hundred MB.
set -euo pipefail
BIN=$(realpath "${1:-.build/release/dockbuild}")
[ -x "$BIN" ] || BIN=$(realpath .build/debug/dockbuild)
SRC=${BENCH_SRC:-/usr/lib/x86_64-linux-gnu}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/rootfs"
cp -a "$SRC" "$W/rootfs/lib" 2>/dev/null || true
SIZE=$(du -sm "$W/rootfs" | cut -f1)
echo "input: $SIZE MB from $SRC; binary: $BIN; $(nproc) CPUs"

t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
row() { printf '%-28s dockbuild %6.2fs   %-24s %6.2fs   ratio %5.2fx\n' "$1" "$2" "$3" "$4" "$(echo "$4 / $2" | bc -l)"; }

sync
D=$(t "$BIN" import --root "$W/store" "$W/rootfs" bench:1)
P=$(t bash -c "umoci init --layout '$W/umoci' && umoci new --image '$W/umoci:bench' && umoci insert --image '$W/umoci:bench' '$W/rootfs' /")
row "import directory (gzip)" "$D" "umoci new+insert" "$P"

D=$(t "$BIN" save --root "$W/store" --format oci -o "$W/db.tar" bench:1)
"$BIN" save --root "$W/store" --format oci -o "$W/src.tar" bench:1
mkdir -p "$W/layout" && tar -xf "$W/src.tar" -C "$W/layout"
P=$(t skopeo --insecure-policy copy "oci:$W/layout:1" "oci-archive:$W/sk.tar")
row "save --format oci" "$D" "skopeo copy ->oci-archive" "$P"

D=$(t "$BIN" load --root "$W/store2" -i "$W/db.tar")
P=$(t skopeo --insecure-policy copy "oci-archive:$W/db.tar" "oci:$W/sklayout:x")
row "load (OCI tar)" "$D" "skopeo copy oci-archive->oci" "$P"
