#!/bin/bash
# bench/build.sh: the same Dockerfile and context built by dockbuild, docker (Debian's docker.io:
# dockerd 20.10 with its BuildKit, started by shared/peers/docker-ref.sh) and buildah (vfs,
# chroot isolation), side by side: cold (empty cache), fully cached, one file changed.
# Input: a busybox-static base and a 50 MB / 3,500-file context (500 files of 90 kB, 3,000 of
# 2 kB) with RUN steps between COPYs. Offline; the base is made in each tool's store first
# (not timed). Usage: bench/build.sh [path/to/dockbuild] [repetitions]   (run as root)
# PEERS="docker buildah" picks the peers (either may be left out).
# BASELINE=path/to/other/dockbuild also times a second dockbuild binary (before/after a change) in the same run.
set -euo pipefail
BIN=$(realpath "${1:-.build/release/dockbuild}")
REPS=${2:-3}
PEERS=${PEERS-docker buildah}   # PEERS="" for dockbuild alone
# BENCH_ON=tmpfs puts everything (context, dockbuild's store, buildah's, and a dockerd of its own
# started for the run) in /dev/shm: on this VM's ext4 (no journal) creating a file after many
# deletions costs ~0.3 ms in the kernel's inode allocator (recently_deleted), which otherwise
# decides the cold and changed cases for whichever tool writes into the more churned block groups.
# (dockbuild spreads its build sessions and snapshots with chattr +T since #15's disk work, so its
# new files no longer land where its removed store was; docs/benchmarks.md, "On this VM's disk".)
ON=${BENCH_ON:-disk}
REF=${DOCKER_REF:-$(dirname "$0")/../../shared/peers/docker-ref.sh}
[ -f "$REF" ] || REF=$(dirname "$0")/../shared/peers/docker-ref.sh
REF=$(realpath "$REF")
if [ "$ON" = tmpfs ]; then
  W=$(mktemp -d /dev/shm/dockbuild-bench-XXXXXX)
  export DOCKER_REF_DIR=/dev/shm/docker-ref-bench
  trap 'bash "$REF" stop >/dev/null 2>&1; sleep 1; rm -rf "$W" "$DOCKER_REF_DIR" 2>/dev/null' EXIT
else
  W=$(mktemp -d /var/tmp/dockbuild-bench-XXXXXX)
  trap 'rm -rf "$W"' EXIT
fi
DREF_DIR=${DOCKER_REF_DIR:-/var/tmp/docker-ref}

# Base: busybox-static with its applet links.
mkdir -p "$W/rootfs/bin" "$W/rootfs/etc" "$W/rootfs/tmp" "$W/base"
cp /bin/busybox "$W/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$W/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$W/rootfs/etc/passwd"; printf 'root:x:0:\n' > "$W/rootfs/etc/group"
tar -C "$W/rootfs" -cf "$W/base/rootfs.tar" .
printf 'FROM scratch\nADD rootfs.tar /\nCMD ["sh"]\n' > "$W/base/Dockerfile"

# The app: 500 dependency files of 90 kB (45 MB), 3,000 source files of 2 kB (6 MB).
mkdir -p "$W/app/deps" "$W/app/src"
head -c $((500 * 90000)) /dev/urandom | split -b 90000 -a 3 - "$W/app/deps/lib"
for d in $(seq 1 30); do mkdir -p "$W/app/src/m$d"; for i in $(seq 1 100); do
  printf 'int f%d_%d(void) { return %d; }\n%2000s\n' $d $i $i "" > "$W/app/src/m$d/f$i.c"; done; done
cat > "$W/app/Dockerfile" <<'DF'
FROM bench-base
ENV APP=/app
WORKDIR /app
RUN mkdir -p data && for i in $(seq 1 200); do echo $i > data/$i; done
COPY deps/ /app/deps/
RUN cat deps/* | wc -c > deps.size
COPY src/ /app/src/
RUN find src -name '*.c' | wc -l > src.count
CMD ["sh"]
DF
echo "context: $(du -sh "$W/app" | cut -f1), $(find "$W/app" -type f | wc -l) files"

now() { date +%s.%N; }
D() { "$BIN" build --network host --root "$W/d-store" "$@" >/dev/null 2>&1; }   # --network host, as docker is run below
B() { buildah --storage-driver vfs --root "$W/b-store" --runroot "$W/b-run" "$@" >/dev/null 2>&1; }
K() { DOCKER_HOST=unix://$DREF_DIR/docker.sock DOCKER_BUILDKIT=1 /usr/bin/docker "$@" >/dev/null 2>&1; }
time_cmd() { local t0 t1; t0=$(now); "$@"; t1=$(now); echo "$t1 - $t0" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
has() { [[ " $PEERS " == *" $1 "* ]]; }
if has docker; then bash "$REF" start >/dev/null || { echo "docker-ref did not start; leaving docker out"; PEERS=${PEERS/docker/}; }; fi
if has buildah && ! command -v buildah >/dev/null; then echo "buildah missing; leaving it out"; PEERS=${PEERS/buildah/}; fi

declare -A R
# Each tool's repetitions run back to back, so one tool's background work (dockerd pruning its
# cache, buildah's storage) never lands in another tool's timings.
quiet() { sync; sleep 1; }
for rep in $(seq 1 "$REPS"); do
  rm -rf "$W/d-store"
  printf 'int f1(void) { return 1; }\n' > "$W/app/src/m1/f1.c"
  D -t bench-base "$W/base"; quiet
  R[dcold]+="$(time_cmd D -t app "$W/app")"$'\n'
  R[dcached]+="$(time_cmd D -t app "$W/app")"$'\n'
  echo "int changed_$rep;" >> "$W/app/src/m1/f1.c"
  R[dchanged]+="$(time_cmd D -t app "$W/app")"$'\n'
done
if [ -n "${BASELINE:-}" ]; then
  BASE_BIN=$(realpath "$BASELINE")
  X() { "$BASE_BIN" build --network host --root "$W/x-store" "$@" >/dev/null 2>&1; }
  for rep in $(seq 1 "$REPS"); do
    rm -rf "$W/x-store"
    printf 'int f1(void) { return 1; }\n' > "$W/app/src/m1/f1.c"
    X -t bench-base "$W/base"; quiet
    R[xcold]+="$(time_cmd X -t app "$W/app")"$'\n'
    R[xcached]+="$(time_cmd X -t app "$W/app")"$'\n'
    echo "int changed_$rep;" >> "$W/app/src/m1/f1.c"
    R[xchanged]+="$(time_cmd X -t app "$W/app")"$'\n'
  done
fi
if has docker; then
  for rep in $(seq 1 "$REPS"); do
    printf 'int f1(void) { return 1; }\n' > "$W/app/src/m1/f1.c"
    K rmi -f app >/dev/null 2>&1 || true; K builder prune -af || true
    K build --network host -t bench-base "$W/base"; quiet
    R[kcold]+="$(time_cmd K build --network host -t app "$W/app")"$'\n'
    R[kcached]+="$(time_cmd K build --network host -t app "$W/app")"$'\n'
    echo "int changed_$rep;" >> "$W/app/src/m1/f1.c"
    R[kchanged]+="$(time_cmd K build --network host -t app "$W/app")"$'\n'
  done
fi
if has buildah; then
  for rep in $(seq 1 "$REPS"); do
    rm -rf "$W/b-store" "$W/b-run"
    printf 'int f1(void) { return 1; }\n' > "$W/app/src/m1/f1.c"
    B bud --isolation chroot -t bench-base "$W/base"; quiet
    R[bcold]+="$(time_cmd B bud --isolation chroot --layers -t app "$W/app")"$'\n'
    R[bcached]+="$(time_cmd B bud --isolation chroot --layers -t app "$W/app")"$'\n'
    echo "int changed_$rep;" >> "$W/app/src/m1/f1.c"
    R[bchanged]+="$(time_cmd B bud --isolation chroot --layers -t app "$W/app")"$'\n'
  done
fi

printf '%-10s %10s %10s %10s %12s %12s\n' case dockbuild docker buildah "vs docker" "vs buildah"
for c in cold cached changed; do
  d=$(printf '%s' "${R[d$c]}" | median)
  k=$(printf '%s' "${R[k$c]:-}" | median); b=$(printf '%s' "${R[b$c]:-}" | median)
  rk=-; rb=-
  [ -n "$k" ] && rk=$(printf '%.3f' "$(echo "$d / $k" | bc -l)")
  [ -n "$b" ] && rb=$(printf '%.3f' "$(echo "$d / $b" | bc -l)")
  printf '%-10s %9.3fs %10s %10s %12s %12s\n' "$c" "$d" "${k:--}" "${b:--}" "$rk" "$rb"
  if [ -n "${BASELINE:-}" ]; then
    x=$(printf '%s' "${R[x$c]}" | median); rx=-
    [ -n "$k" ] && rx=$(printf '%.3f' "$(echo "$x / $k" | bc -l)")
    printf '%-10s %9.3fs %10s %10s %12s %12s   (BASELINE)\n' "$c" "$x" "${k:--}" "${b:--}" "$rx" -
  fi
done
echo "(median of $REPS, on $ON; ratio = dockbuild / peer; goals against docker: cold <= 0.5, cached <= 0.3, changed <= 0.5)"
