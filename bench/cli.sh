#!/bin/bash
# bench/cli.sh: the short commands scripts call in loops — `images`, `ps -a`, `inspect` of a
# container and of an image — on a store of 100 images and 50 containers, dockbuild and podman
# side by side (hyperfine, no shell, medians). Both stores are filled the same way first (not
# timed): 100 one-layer images imported from 100 small busybox tarballs that differ by one file,
# and 50 created (not started) containers of one of them.
# Usage: bench/cli.sh [path/to/dockbuild]   (run as root; needs hyperfine, busybox-static;
# podman is optional: apt-get install podman). RUNS=N sets hyperfine's runs (default 50).
# Goal (issue #19): each command <= 15 ms and faster than podman.
set -euo pipefail
BIN=$(realpath "${1:-.build/release/dockbuild}")
RUNS=${RUNS:-50}
IMAGES=${IMAGES:-100}
CONTAINERS=${CONTAINERS:-50}
[ "$(id -u)" = 0 ] || { echo "bench/cli.sh: needs root" >&2; exit 1; }
for t in hyperfine busybox; do command -v $t >/dev/null || { echo "bench/cli.sh: $t is missing" >&2; exit 1; }; done
W=$(mktemp -d /var/tmp/dockbuild-cli-bench-XXXXXX)
HAVE_PODMAN=0
command -v podman >/dev/null && HAVE_PODMAN=1
P() { podman --root "$W/p-root" --runroot "$W/p-run" --storage-driver overlay --runtime runc --cgroup-manager cgroupfs --events-backend none "$@"; }
cleanup() {
  if [ $HAVE_PODMAN = 1 ]; then P rm -a -f >/dev/null 2>&1 || true; umount -R "$W/p-root" 2>/dev/null || true; fi
  rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/rootfs/bin" "$W/rootfs/etc" "$W/tars"
cp "$(command -v busybox)" "$W/rootfs/bin/busybox"
ln -s busybox "$W/rootfs/bin/sh"; ln -s busybox "$W/rootfs/bin/true"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$W/rootfs/etc/passwd"
for i in $(seq 1 "$IMAGES"); do
  echo "$i" > "$W/rootfs/etc/image-number"
  tar -C "$W/rootfs" -cf "$W/tars/$i.tar" .
done

echo "filling the stores: $IMAGES images, $CONTAINERS containers (not timed)"
D() { local verb=$1; shift; "$BIN" "$verb" --root "$W/d-root" "$@"; }
for i in $(seq 1 "$IMAGES"); do D import "$W/tars/$i.tar" "bench/img:$i" >/dev/null; done
for i in $(seq 1 "$CONTAINERS"); do D create --network none --name "c$i" bench/img:1 true >/dev/null; done
if [ $HAVE_PODMAN = 1 ]; then
  for i in $(seq 1 "$IMAGES"); do P import "$W/tars/$i.tar" "localhost/bench/img:$i" >/dev/null 2>&1; done
  for i in $(seq 1 "$CONTAINERS"); do P create --network none --name "c$i" localhost/bench/img:1 true >/dev/null 2>&1; done
fi
echo "dockbuild: $("$BIN" images --root "$W/d-root" -q | wc -l) images, $("$BIN" ps -a --root "$W/d-root" -q | wc -l) containers"
[ $HAVE_PODMAN = 1 ] && echo "podman:    $(P images -q | wc -l) images, $(P ps -a -q | wc -l) containers"

median_ms() { python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$1"; }
row() {  # name, dockbuild command..., then podman command after "--"
  local name=$1; shift
  local dcmd=() pcmd=() seen=0
  for a in "$@"; do if [ "$a" = "--" ]; then seen=1; elif [ $seen = 0 ]; then dcmd+=("$a"); else pcmd+=("$a"); fi; done
  hyperfine -N -w 3 -r "$RUNS" --export-json "$W/d.json" "${dcmd[*]}" >/dev/null 2>&1
  local d; d=$(median_ms "$W/d.json")
  if [ $HAVE_PODMAN = 1 ]; then
    hyperfine -N -w 3 -r "$RUNS" --export-json "$W/p.json" "${pcmd[*]}" >/dev/null 2>&1
    local p; p=$(median_ms "$W/p.json")
    printf '%-22s dockbuild %6.1f ms   podman %7.1f ms   dockbuild/podman %5.2fx   (goal <= 15 ms: %s)\n' \
      "$name" "$d" "$p" "$(echo "$d / $p" | bc -l)" "$(echo "$d <= 15" | bc -l | sed 's/1/met/; s/0/not met/')"
  else
    printf '%-22s dockbuild %6.1f ms   (podman not installed)   (goal <= 15 ms: %s)\n' \
      "$name" "$d" "$(echo "$d <= 15" | bc -l | sed 's/1/met/; s/0/not met/')"
  fi
}
PF="podman --root $W/p-root --runroot $W/p-run --storage-driver overlay --runtime runc --cgroup-manager cgroupfs --events-backend none"
row "images" "$BIN" images --root "$W/d-root" -- $PF images
row "ps -a" "$BIN" ps -a --root "$W/d-root" -- $PF ps -a
row "inspect (container)" "$BIN" inspect --root "$W/d-root" c$(( (CONTAINERS + 1) / 2 )) -- $PF container inspect c$(( (CONTAINERS + 1) / 2 ))
row "inspect (image)" "$BIN" image inspect --root "$W/d-root" bench/img:$(( (IMAGES + 1) / 2 )) -- $PF image inspect localhost/bench/img:$(( (IMAGES + 1) / 2 ))
row "version" "$BIN" version -- $PF version

# run --rm: start to exit of `true` in a new container (no network), against docker (Debian's
# docker.io, started by shared/peers/docker-ref.sh, with the same image loaded from
# `dockbuild save`) and podman. Goal (issue #19): dockbuild <= 0.3x docker.
REF=${DOCKER_REF:-$(dirname "$0")/../../shared/peers/docker-ref.sh}
[ -f "$REF" ] || REF=$(dirname "$0")/../shared/peers/docker-ref.sh
hyperfine -N -w 3 -r "$RUNS" --export-json "$W/d.json" "$BIN run --root $W/d-root --rm --network none bench/img:1 true" >/dev/null 2>&1
d=$(median_ms "$W/d.json")
line="run --rm true         dockbuild $(printf '%6.1f' "$d") ms"
if [ -f "$REF" ] && bash "$REF" start >/dev/null 2>&1; then
  eval "$(bash "$REF" env)"
  "$BIN" save --root "$W/d-root" -o "$W/img.tar" bench/img:1 && docker load -i "$W/img.tar" >/dev/null
  hyperfine -N -w 3 -r "$RUNS" --export-json "$W/k.json" "docker run --rm --network none bench/img:1 true" >/dev/null 2>&1
  k=$(median_ms "$W/k.json")
  line+="   docker $(printf '%7.1f' "$k") ms   dockbuild/docker $(printf '%5.2f' "$(echo "$d / $k" | bc -l)")x (goal <= 0.3x)"
  docker rmi bench/img:1 >/dev/null 2>&1 || true
else
  line+="   (docker-ref did not start)"
fi
if [ $HAVE_PODMAN = 1 ]; then
  # podman 4.3 needs a nofile limit on this machine (see the project notes).
  if hyperfine -N -w 3 -r "$RUNS" --export-json "$W/p.json" "$PF run --rm --network none --ulimit nofile=16384:16384 localhost/bench/img:1 true" >/dev/null 2>&1; then
    p=$(median_ms "$W/p.json")
    line+="   podman $(printf '%7.1f' "$p") ms"
  else
    line+="   (podman run failed)"
  fi
fi
echo "$line"
