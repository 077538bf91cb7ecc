#!/bin/bash
# bench/multiplatform.sh: one Dockerfile built for linux/amd64 and linux/arm64 into an index, by
# dockbuild (`build --platform linux/amd64,linux/arm64`) and by buildah (`build --platform ...
# --manifest NAME`, vfs, chroot isolation), side by side on the same input (issue #20).
# The base is a two-platform index (the host's busybox-static and Debian's busybox-static:arm64)
# served by a local registry (dockbuild's, on a free loopback port); every run starts from empty
# stores, so both tools pull the base's two images, run each RUN natively (amd64) and through
# QEMU (arm64: qemu-user-static's binfmt_misc handler, F flag), COPY a 4 MB context and write the
# index. dockbuild builds the two platforms side by side, as buildah does. The emulated-RUN
# overhead is reported apart: dockbuild's RUN steps' times for arm64 against amd64, each
# platform built alone (--no-cache, base in the store) so that neither overlaps the other.
# Usage: bench/multiplatform.sh [path/to/dockbuild]   RUNS=5 (median of RUNS), LOOP=100000   (as root)
set -euo pipefail
BIN=$(realpath "${1:-.build/release/dockbuild}")
RUNS=${RUNS:-5}
LOOP=${LOOP:-100000}   # iterations of the shell loop in the second RUN (CPU work, emulated for arm64)
if [ ! -x "$BIN" ]; then
  echo "building $BIN (swift build -c release --static-swift-stdlib --product dockbuild)"
  swift build -c release --static-swift-stdlib --product dockbuild >/dev/null
fi
grep -qs '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 || {
  echo "no qemu-aarch64 binfmt_misc handler with the F flag: apt-get install qemu-user-static binfmt-support" >&2; exit 1; }
CACHE=/var/tmp/dockbuild-test-cache
DEB=$CACHE/busybox-static_arm64.deb
if [ ! -f "$DEB" ]; then
  mkdir -p "$CACHE"; T=$(mktemp -d "$CACHE/fetch-XXXXXX")
  (cd "$T" && apt-get download -q busybox-static:arm64 >/dev/null) || {
    echo "apt-get download busybox-static:arm64 failed: dpkg --add-architecture arm64 && apt-get update" >&2; rm -rf "$T"; exit 1; }
  mv "$T"/*.deb "$DEB"; rm -rf "$T"
fi

W=$(mktemp -d /var/tmp/dockbuild-bench-mp-XXXXXX)
REG_PID=
cleanup() { [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

# The two bases, their index, and a registry that serves it.
rootfs() {   # DIR BUSYBOX
  mkdir -p "$1/bin" "$1/etc" "$1/tmp"; cp "$2" "$1/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$1/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$1/etc/passwd"; printf 'root:x:0:\n' > "$1/etc/group"
}
dpkg-deb -x "$DEB" "$W/arm64-deb"
rootfs "$W/rootfs-arm64" "$W/arm64-deb/bin/busybox"
rootfs "$W/rootfs-amd64" /bin/busybox
S="--root $W/seed"
"$BIN" import $S --platform linux/arm64 "$W/rootfs-arm64" base:arm64 >/dev/null
"$BIN" import $S --platform linux/amd64 "$W/rootfs-amd64" base:amd64 >/dev/null
"$BIN" manifest create $S base:multi base:amd64 base:arm64 >/dev/null
"$BIN" registry serve --root "$W/registry" --addr 127.0.0.1:0 > "$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 1 50); do grep -q listening "$W/registry.log" && break; sleep 0.1; done
REG=$(grep -o '127\.0\.0\.1:[0-9]*' "$W/registry.log" | head -1)
[ -n "$REG" ] || { echo "the registry did not start: $(cat "$W/registry.log")" >&2; exit 1; }
"$BIN" tag $S base:multi "$REG/bench-base:multi"
"$BIN" push $S "$REG/bench-base:multi" >/dev/null 2>&1

# The app: 200 files of 20 kB (4 MB); one RUN that spawns many processes, one that computes.
mkdir -p "$W/app/src"
head -c $((200 * 20000)) /dev/urandom | split -b 20000 -a 3 - "$W/app/src/f"
cat > "$W/app/Dockerfile" <<DF
FROM $REG/bench-base:multi
RUN mkdir -p /data && for i in \$(seq 1 200); do echo \$i > /data/\$i; done && uname -m > /arch
COPY src/ /app/src/
RUN cat /app/src/* | md5sum > /app/sum && i=0 && while [ \$i -lt $LOOP ]; do i=\$((i+1)); done
CMD ["sh"]
DF
echo "context: $(du -sh "$W/app" | cut -f1), $(find "$W/app" -type f | wc -l) files; loop $LOOP; base: $REG/bench-base:multi (linux/amd64, linux/arm64)"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
B() { buildah --storage-driver vfs --root "$W/b-store" --runroot "$W/b-run" "$@"; }
quiet() { sync; sleep 1; }
D_T= B_T= ARM= AMD=
# The tools alternate within each repetition, so a busy spell on this shared machine lands on both.
for rep in $(seq 1 "$RUNS"); do
  rm -rf "$W/d-store"; quiet
  t0=$(now)
  "$BIN" build --root "$W/d-store" --network host --progress plain --platform linux/amd64,linux/arm64 -t app:multi "$W/app" > "$W/d.out" 2>&1 \
    || { cat "$W/d.out" >&2; exit 1; }
  t1=$(now)
  D_T+="$(echo "$t1 - $t0" | bc)"$'\n'
  # The emulation's cost, apart from the overlap: each platform alone (--no-cache, the base
  # now in the store, not timed as a whole), summing its RUN steps' times from the progress
  # ("#N [stage-0 2/5] RUN ..." then "#N DONE 1.23s").
  for arch in amd64 arm64; do
    "$BIN" build --root "$W/d-store" --network host --progress plain --no-cache --platform linux/$arch "$W/app" > "$W/s.out" 2>&1 \
      || { cat "$W/s.out" >&2; exit 1; }
    t=$(awk '/^#[0-9]+ \[.*\] RUN/ { run[$1] = 1 } /^#[0-9]+ DONE/ { if ($1 in run) { t = $3; sub(/s$/, "", t); sum += t } }
      END { printf "%.3f\n", sum }' "$W/s.out")
    if [ $arch = amd64 ]; then AMD+="$t"$'\n'; else ARM+="$t"$'\n'; fi
  done
  rm -rf "$W/b-store" "$W/b-run"; quiet
  t0=$(now)
  B build --tls-verify=false --isolation chroot --platform linux/amd64,linux/arm64 --manifest app-multi "$W/app" > "$W/b.out" 2>&1 \
    || { cat "$W/b.out" >&2; exit 1; }
  t1=$(now)
  B_T+="$(echo "$t1 - $t0" | bc)"$'\n'
done
# Both indexes hold each platform's own binaries.
"$BIN" run --root "$W/d-store" --rm --network none --platform linux/arm64 app:multi cat /arch | grep -qx aarch64
"$BIN" run --root "$W/d-store" --rm --network none --platform linux/amd64 app:multi cat /arch | grep -qx x86_64
B manifest inspect app-multi | grep -q '"architecture": "arm64"'
B rmi --all --force >/dev/null 2>&1 || true

d=$(printf '%s' "$D_T" | median); b=$(printf '%s' "$B_T" | median)
amd=$(printf '%s' "$AMD" | median); arm=$(printf '%s' "$ARM" | median)
printf '%-34s %10s %10s %12s\n' case dockbuild buildah "vs buildah"
printf '%-34s %9.3fs %9.3fs %12.3f\n' "2 platforms, cold (empty stores)" "$d" "$b" "$(echo "$d / $b" | bc -l)"
printf 'emulated RUN overhead (dockbuild, one platform at a time): RUN steps on amd64 %.3fs, on arm64 (QEMU) %.3fs, %.1fx\n' "$amd" "$arm" "$(echo "$arm / $amd" | bc -l)"
echo "runs: dockbuild $(printf '%s' "$D_T" | sort -n | tr '\n' ' ')| buildah $(printf '%s' "$B_T" | sort -n | tr '\n' ' ')"
echo "(median of $RUNS; ratio = dockbuild / buildah; goal <= 0.5)"
