#!/bin/bash
# bench/build.sh: the same Dockerfile built by dockbuild and by buildah (vfs, chroot isolation),
# side by side: cold (empty cache), fully cached, one file changed. Offline: the base image is
# Debian's busybox-static, ADDed from a tar into each tool's own store first (not timed).
# Usage: bench/build.sh [path/to/dockbuild] [repetitions]   (run as root)
set -euo pipefail
BIN=$(realpath "${1:-.build/release/dockbuild}")
REPS=${2:-3}
command -v buildah >/dev/null || { echo "buildah is not installed (apt-get install buildah)"; exit 1; }
W=$(mktemp -d /var/tmp/dockbuild-bench-XXXXXX)
trap 'rm -rf "$W"' EXIT

# Base: busybox-static with its applet links.
mkdir -p "$W/rootfs/bin" "$W/rootfs/etc" "$W/rootfs/tmp" "$W/base"
cp /bin/busybox "$W/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$W/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$W/rootfs/etc/passwd"; printf 'root:x:0:\n' > "$W/rootfs/etc/group"
tar -C "$W/rootfs" -cf "$W/base/rootfs.tar" .
printf 'FROM scratch\nADD rootfs.tar /\nCMD ["sh"]\n' > "$W/base/Dockerfile"

# The app: 300 dependency files (6 MB), 200 source files, RUN steps in between.
mkdir -p "$W/app/deps" "$W/app/src"
for i in $(seq 1 300); do head -c 20000 /dev/urandom > "$W/app/deps/lib$i.bin"; done
for i in $(seq 1 200); do printf 'int f%d(void) { return %d; }\n' $i $i > "$W/app/src/f$i.c"; done
cat > "$W/app/Dockerfile" <<'DF'
FROM bench-base
ENV APP=/app
WORKDIR /app
RUN mkdir -p data && for i in $(seq 1 200); do echo $i > data/$i; done
COPY deps/ /app/deps/
RUN cat deps/* | wc -c > deps.size
COPY src/ /app/src/
RUN ls src | wc -l > src.count && cat src/*.c > all.c
CMD ["sh"]
DF

now() { date +%s.%N; }
D() { local sub=$1; shift; "$BIN" "$sub" --root "$W/d-store" "$@" >/dev/null 2>&1; }
B() { buildah --storage-driver vfs --root "$W/b-store" --runroot "$W/b-run" "$@" >/dev/null 2>&1; }
time_cmd() { local t0 t1; t0=$(now); "$@"; t1=$(now); echo "$t1 - $t0" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A R
for rep in $(seq 1 "$REPS"); do
  rm -rf "$W/d-store" "$W/b-store" "$W/b-run"; git -C / --version >/dev/null 2>&1 || true
  D build -t bench-base "$W/base"
  B bud --isolation chroot -t bench-base "$W/base"
  printf 'int f1(void) { return 1; }\n' > "$W/app/src/f1.c"
  R[dcold]+="$(time_cmd D build -t app "$W/app")"$'\n'
  R[bcold]+="$(time_cmd B bud --isolation chroot --layers -t app "$W/app")"$'\n'
  R[dcached]+="$(time_cmd D build -t app "$W/app")"$'\n'
  R[bcached]+="$(time_cmd B bud --isolation chroot --layers -t app "$W/app")"$'\n'
  echo "int changed_$rep;" >> "$W/app/src/f1.c"
  R[dchanged]+="$(time_cmd D build -t app "$W/app")"$'\n'
  R[bchanged]+="$(time_cmd B bud --isolation chroot --layers -t app "$W/app")"$'\n'
done

printf '%-14s %10s %10s %8s\n' case dockbuild buildah ratio
for c in cold cached changed; do
  d=$(printf '%s' "${R[d$c]}" | median); b=$(printf '%s' "${R[b$c]}" | median)
  printf '%-14s %9.3fs %9.3fs %8.3f\n' "$c" "$d" "$b" "$(echo "$d / $b" | bc -l)"
done
echo "(median of $REPS; ratio = dockbuild / buildah; goal: cold <= 0.5, cached <= 0.1)"
