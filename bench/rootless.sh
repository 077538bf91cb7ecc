#!/bin/bash
# bench/rootless.sh: rootless dockbuild against root dockbuild on the same input (issue #21), and
# rootless podman/buildah run by the same ordinary user where they work here.
# Rows: a build with no cache (--no-cache: the base is in the store, every step runs), the same
# build fully cached (also with DOCKBUILD_ROOTLESS_REEXEC=1: the user's command re-executes itself
# into the namespace, as the first command does, instead of joining it before main), `images -q`
# (a short command: the fixed cost), and `run --rm true` (--network none, and the default network:
# the bridge for root, pasta for the user). The user is made for the run (useradd, a subordinate id range)
# and removed afterwards; its commands go through setpriv + env -i, root's too (setpriv to uid 0).
# Input: a busybox-static base and a small context (200 files of 8 kB) with two RUN steps.
# Usage: bench/rootless.sh [path/to/dockbuild]   (run as root; needs hyperfine, busybox-static,
# uidmap, passt). RUNS=N sets hyperfine's runs for run --rm (default 20), BUILD_RUNS for builds
# (default 5). PEERS="" leaves podman and buildah out.
set -euo pipefail
BIN=$(realpath "${1:-.build/release/dockbuild}")
RUNS=${RUNS:-20}
BUILD_RUNS=${BUILD_RUNS:-5}
PEERS=${PEERS-podman buildah}
for t in hyperfine busybox setpriv useradd newuidmap pasta; do
  command -v $t >/dev/null || { echo "bench/rootless.sh: $t is missing (make deps)" >&2; exit 1; }
done
W=$(mktemp -d /var/tmp/dockbuild-rlbench-XXXXXX)
chmod 755 "$W"
U=dbrlbench$$
START=$((3000000 + ($$ % 1000) * 65536))
useradd -r -M -d "$W/home" -s /bin/sh "$U"
usermod --add-subuids "$START-$((START + 65535))" --add-subgids "$START-$((START + 65535))" "$U"
UID_=$(id -u "$U"); GID_=$(id -g "$U")
cleanup() {
  run_user "$W/bin/dockbuild" rm -f $(run_user "$W/bin/dockbuild" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  # the user's long-lived helpers, by their pid files: dockbuild's namespace holder, podman's pause
  for f in "$W/run/dockbuild/userns.pid" "$W/run/libpod/tmp/pause.pid"; do
    [ -f "$f" ] && kill -KILL "$(cut -d' ' -f1 "$f")" >/dev/null 2>&1 || true
  done
  sleep 0.5
  userdel "$U" >/dev/null 2>&1 || true
  rm -rf "$W" 2>/dev/null || true
}
trap cleanup EXIT
mkdir -p "$W/home" "$W/run" "$W/bin" "$W/root-store"
chown "$UID_:$GID_" "$W/home" "$W/run"; chmod 700 "$W/home" "$W/run"
cp "$BIN" "$W/bin/dockbuild"; chmod 755 "$W/bin" "$W/bin/dockbuild"
[ -x "$(dirname "$BIN")/dockbuild-init" ] && cp "$(dirname "$BIN")/dockbuild-init" "$W/bin/" || true
ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$W/home" XDG_RUNTIME_DIR="$W/run")
cd "$W"   # the user's commands start here (podman wants a working directory it can enter)
run_user() { setpriv --reuid="$UID_" --regid="$GID_" --init-groups "${ENV[@]}" "$@"; }
USER_CMD="setpriv --reuid=$UID_ --regid=$GID_ --init-groups ${ENV[*]}"
# root's commands go through setpriv too (to uid 0): it costs 1-3 ms of its own (initgroups
# reads /etc/group), which a root row without it would count against the user's
ROOT_CMD="setpriv --reuid=0 --regid=0 --init-groups env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin"

# Base and context, readable by the user.
mkdir -p "$W/rootfs/bin" "$W/rootfs/etc" "$W/rootfs/tmp" "$W/ctx/src"
cp /bin/busybox "$W/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$W/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$W/rootfs/etc/passwd"; printf 'root:x:0:\n' > "$W/rootfs/etc/group"
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
for i in $(seq 1 200); do head -c 8192 /dev/urandom > "$W/ctx/src/f$i"; done
cat > "$W/ctx/Dockerfile" <<'EOF'
FROM bench/base:1
RUN mkdir -p /app && echo one > /app/one && chown 1000:1000 /app/one
COPY src /app/src
RUN ls /app/src | wc -l > /app/count
EOF
chmod -R a+rX "$W/ctx" "$W/rootfs.tar"

"$W/bin/dockbuild" --root "$W/root-store" import "$W/rootfs.tar" bench/base:1 >/dev/null
run_user "$W/bin/dockbuild" import "$W/rootfs.tar" bench/base:1 >/dev/null 2>&1
# a binary whose rootless commands do nothing (a static build before the argv fix printed its
# help and exited 0) would time nothing: check that the user's store has the image
if [ "$(run_user "$W/bin/dockbuild" images --format '{{.Repository}}:{{.Tag}}' 2>&1)" != "bench/base:1" ]; then
  echo "bench/rootless.sh: rootless $BIN does not work here: $(run_user "$W/bin/dockbuild" images 2>&1 | head -3)" >&2
  exit 1
fi

median_ms() { python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$1"; }
# time NAME RUNS PREPARE-OR-EMPTY CMD: median ms, or "-" when the command fails
time_cmd() {
  local runs=$1 cmd=$2 out=$W/h.json
  if hyperfine -N -w 1 -r "$runs" --export-json "$out" "$cmd" >/dev/null 2>&1; then median_ms "$out"; else echo "-"; fi
}
row() { # label root-ms rootless-ms [peer-label peer-ms]
  local ratio="-"
  [[ "$2" != "-" && "$3" != "-" ]] && ratio=$(python3 -c "print('%.2fx' % ($3/$2))")
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$ratio" "${4:--}"
}

echo "dockbuild: $BIN   user: $U (uid $UID_)   $(date -u '+%Y-%m-%d %H:%M UTC')   load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| row (median ms) | root | rootless | rootless/root | rootless podman/buildah |"
echo "|---|---|---|---|---|"

# podman / buildah as the same user (vfs would be slower; overlay is their rootless default here)
# runc: crun refuses this host's hybrid cgroups ("drop all controllers from cgroupv2")
PODMAN="podman --cgroup-manager=cgroupfs --events-backend=file --runtime runc"
peer_run="-"; peer_run_net="-"; peer_cold="-"; peer_cached="-"
if [[ " $PEERS " == *" podman "* ]] && run_user $PODMAN import "$W/rootfs.tar" localhost/bench/base:1 >/dev/null 2>&1; then
  peer_run=$(time_cmd "$RUNS" "$USER_CMD $PODMAN run --rm --network none localhost/bench/base:1 true")
  peer_run_net=$(time_cmd "$RUNS" "$USER_CMD $PODMAN run --rm localhost/bench/base:1 true")
fi
if [[ " $PEERS " == *" buildah "* ]] && run_user buildah from --name benchprobe localhost/bench/base:1 >/dev/null 2>&1; then
  run_user buildah rm benchprobe >/dev/null 2>&1 || true
  peer_cold=$(time_cmd "$BUILD_RUNS" "$USER_CMD buildah bud --runtime runc --layers --no-cache -q -t bench/app:peer $W/ctx")
  peer_cached=$(time_cmd "$BUILD_RUNS" "$USER_CMD buildah bud --runtime runc --layers -q -t bench/app:peer $W/ctx")
fi

r=$(time_cmd "$BUILD_RUNS" "$ROOT_CMD $W/bin/dockbuild --root $W/root-store build --no-cache -q -t bench/app:1 $W/ctx")
u=$(time_cmd "$BUILD_RUNS" "$USER_CMD $W/bin/dockbuild build --no-cache -q -t bench/app:1 $W/ctx")
row "build, no cache (default RUN network)" "$r" "$u" "buildah $peer_cold"
r=$(time_cmd "$BUILD_RUNS" "$ROOT_CMD $W/bin/dockbuild --root $W/root-store build --no-cache --network none -q -t bench/app:1 $W/ctx")
u=$(time_cmd "$BUILD_RUNS" "$USER_CMD $W/bin/dockbuild build --no-cache --network none -q -t bench/app:1 $W/ctx")
row "build, no cache, --network none" "$r" "$u"
r=$(time_cmd "$BUILD_RUNS" "$ROOT_CMD $W/bin/dockbuild --root $W/root-store build -q -t bench/app:1 $W/ctx")
u=$(time_cmd "$BUILD_RUNS" "$USER_CMD $W/bin/dockbuild build -q -t bench/app:1 $W/ctx")
row "build, cached" "$r" "$u" "buildah $peer_cached"
u=$(time_cmd "$BUILD_RUNS" "$USER_CMD DOCKBUILD_ROOTLESS_REEXEC=1 $W/bin/dockbuild build -q -t bench/app:1 $W/ctx")
row "build, cached, re-exec into the namespace" "$r" "$u"
r=$(time_cmd "$RUNS" "$ROOT_CMD $W/bin/dockbuild --root $W/root-store images -q")
u=$(time_cmd "$RUNS" "$USER_CMD $W/bin/dockbuild images -q")
row "images -q" "$r" "$u"
u=$(time_cmd "$RUNS" "$USER_CMD DOCKBUILD_ROOTLESS_REEXEC=1 $W/bin/dockbuild images -q")
row "images -q, re-exec into the namespace" "$r" "$u"
r=$(time_cmd "$RUNS" "$ROOT_CMD $W/bin/dockbuild --root $W/root-store run --rm --network none bench/base:1 true")
u=$(time_cmd "$RUNS" "$USER_CMD $W/bin/dockbuild run --rm --network none bench/base:1 true")
row "run --rm --network none true" "$r" "$u" "podman $peer_run"
r=$(time_cmd "$RUNS" "$ROOT_CMD $W/bin/dockbuild --root $W/root-store run --rm bench/base:1 true")
u=$(time_cmd "$RUNS" "$USER_CMD $W/bin/dockbuild run --rm bench/base:1 true")
row "run --rm true (bridge / pasta)" "$r" "$u" "podman $peer_run_net"
