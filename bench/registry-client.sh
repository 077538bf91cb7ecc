#!/usr/bin/env bash
# Registry client benchmark: push and pull a ~200 MB image with several layers to and from a
# local distribution registry (Debian's docker-registry), cold, with dockbuild and with
# `skopeo copy`, side by side. Prints the times and the ratio dockbuild/skopeo.
#
#   bash bench/registry-client.sh            # uses .build/release/dockbuild (make release)
#   RUNS=5 SIZES_MB="80 60 40 15 5" bash bench/registry-client.sh
#   REGISTRY_BIN=/var/tmp/dockbuild-bench/registry bash bench/registry-client.sh
#       (the same distribution 2.8.2 built with a current Go: bench/tools/build-distribution.sh)
set -euo pipefail

BIN=${DOCKBUILD:-$(pwd)/.build/release/dockbuild}
RUNS=${RUNS:-3}
SIZES_MB=${SIZES_MB:-"80 60 40 15 5"}
REGISTRY_BIN=${REGISTRY_BIN:-docker-registry}
for t in "$REGISTRY_BIN" skopeo gzip tar jq sha256sum; do
  command -v "$t" >/dev/null || { echo "missing $t (run make deps)" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "no $BIN: run 'swift build -c release' first" >&2; exit 1; }

WORK=$(mktemp -d /tmp/bench-registry.XXXXXX)
REG_PIDS=()
cleanup() {
  for p in "${REG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  local p
  while :; do
    p=$(( (RANDOM % 20000) + 30000 ))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
  done
}

# start_registry NAME -> sets REG (host:port)
start_registry() {
  local name=$1 port
  port=$(free_port)
  mkdir -p "$WORK/$name"
  cat > "$WORK/$name/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/$name/storage
http:
  addr: 127.0.0.1:$port
YML
  "$REGISTRY_BIN" serve "$WORK/$name/config.yml" 2>"$WORK/$name/log" &
  REG_PIDS+=($!)
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.05
  done
  REG=127.0.0.1:$port
}

# An OCI layout with one gzip layer of random (incompressible) data per size.
echo "building a test image with layers of ${SIZES_MB} MB ..." >&2
L=$WORK/layout
mkdir -p "$L/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' > "$L/oci-layout"
layers=""; diffids=""; total=0; i=0
for mb in $SIZES_MB; do
  d=$WORK/src$i; mkdir -p "$d"
  head -c "${mb}M" /dev/urandom > "$d/data$i.bin"
  tar -C "$d" -cf "$WORK/l$i.tar" .
  diff=$(sha256sum "$WORK/l$i.tar" | cut -d' ' -f1)
  gzip -1 -n -c "$WORK/l$i.tar" > "$WORK/l$i.tgz"
  dg=$(sha256sum "$WORK/l$i.tgz" | cut -d' ' -f1)
  sz=$(stat -c %s "$WORK/l$i.tgz"); total=$((total + sz))
  mv "$WORK/l$i.tgz" "$L/blobs/sha256/$dg"; rm -f "$WORK/l$i.tar"; rm -rf "$d"
  layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dg\",\"size\":$sz}"
  diffids="$diffids${diffids:+,}\"sha256:$diff\""
  i=$((i + 1))
done
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diffids" > "$WORK/config.json"
cd_=$(sha256sum "$WORK/config.json" | cut -d' ' -f1); csz=$(stat -c %s "$WORK/config.json")
cp "$WORK/config.json" "$L/blobs/sha256/$cd_"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' "$cd_" "$csz" "$layers" > "$WORK/manifest.json"
md=$(sha256sum "$WORK/manifest.json" | cut -d' ' -f1); msz=$(stat -c %s "$WORK/manifest.json")
cp "$WORK/manifest.json" "$L/blobs/sha256/$md"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' "$md" "$msz" > "$L/index.json"
echo "image: $((total / 1000000)) MB in $i layers, manifest sha256:$md" >&2

start_registry seed
SEED=$REG
skopeo copy -q --dest-tls-verify=false "oci:$L:bench" "docker://$SEED/bench/img:1" >/dev/null

TIMEFORMAT='%R %U %S'
# timed OUTVAR CMD...: runs CMD, appends "wall cpu" to the array OUTVAR, keeps CMD's stdout in $OUT
timed() {
  local var=$1; shift
  local t
  { t=$( { time "$@" > "$WORK/out" 2>"$WORK/err"; } 2>&1 ); } || { cat "$WORK/err" >&2; exit 1; }
  OUT=$(cat "$WORK/out")
  eval "$var+=(\"$(awk -v t="$t" 'BEGIN{split(t,a," "); printf "%.3f %.3f", a[1], a[2]+a[3]}')\")"
}

# ---- pull, cold (empty destination each run) ----
pull_sk=(); pull_db=()
for r in $(seq "$RUNS"); do
  rm -rf "$WORK/sk-out" "$WORK/db-root"
  timed pull_sk skopeo copy -q --src-tls-verify=false "docker://$SEED/bench/img:1" "oci:$WORK/sk-out:1"
  timed pull_db "$BIN" pull --root "$WORK/db-root" -q "$SEED/bench/img:1"; got=$OUT
  [ "$got" = "sha256:$md" ] || { echo "dockbuild pull printed $got, expected sha256:$md" >&2; exit 1; }
done

# ---- push, cold (a fresh registry each run) ----
push_sk=(); push_db=()
for r in $(seq "$RUNS"); do
  start_registry "push-sk-$r"
  timed push_sk skopeo copy -q --dest-tls-verify=false "oci:$L:bench" "docker://$REG/bench/img:1"
  start_registry "push-db-$r"
  timed push_db "$BIN" push --root "$WORK/db-root" -q ${DB_PUSH_ARGS:-} "$SEED/bench/img:1" "$REG/bench/img:1"; got=$OUT
  [ "$got" = "sha256:$md" ] || { echo "dockbuild push printed $got, expected sha256:$md" >&2; exit 1; }
  rd=$(skopeo inspect --tls-verify=false --raw "docker://$REG/bench/img:1" | sha256sum | cut -d' ' -f1)
  [ "$rd" = "$md" ] || { echo "pushed manifest digest $rd differs" >&2; exit 1; }
done

# best = the run with the lowest wall time; its CPU time (user+sys of the tool) alongside
pick() { printf '%s\n' "$@" | sort -n | head -1; }
ps=$(pick "${pull_sk[@]}"); pd=$(pick "${pull_db[@]}")
us=$(pick "${push_sk[@]}"); ud=$(pick "${push_db[@]}")
mb=$((total / 1000000))
rbin=$(command -v "$REGISTRY_BIN")
rgo=$(grep -a -o -m1 'go1\.[0-9]*\.[0-9]*' "$rbin" | head -1 || true)
printf '\nregistry client, %s MB image in %s layers, local registry %s (%s, %s), best of %s cold runs\n' "$mb" "$i" "$rbin" "$("$rbin" --version | awk '{print $3}')" "${rgo:-go?}" "$RUNS"
printf '%-6s %14s %14s %8s   %12s %12s %8s\n' op "skopeo wall" "dockbuild wall" ratio "skopeo cpu" "dockbuild cpu" ratio
row() {
  local op=$1 a=$2 b=$3
  awk -v op="$op" -v a="$a" -v b="$b" 'BEGIN{split(a,x," "); split(b,y," ");
    printf "%-6s %13.2fs %13.2fs %7.2fx   %11.2fs %11.2fs %7.2fx\n", op, x[1], y[1], y[1]/x[1], x[2], y[2], y[2]/x[2]}'
}
row pull "$ps" "$pd"
row push "$us" "$ud"
printf 'pull runs (wall cpu): skopeo %s | dockbuild %s\n' "${pull_sk[*]}" "${pull_db[*]}"
printf 'push runs (wall cpu): skopeo %s | dockbuild %s\n' "${push_sk[*]}" "${push_db[*]}"
med() { printf '%s\n' "$@" | awk '{print $1}' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
awk -v a="$(med "${pull_sk[@]}")" -v b="$(med "${pull_db[@]}")" -v c="$(med "${push_sk[@]}")" -v d="$(med "${push_db[@]}")" \
  'BEGIN{printf "medians: pull skopeo %.2fs dockbuild %.2fs = %.2fx | push skopeo %.2fs dockbuild %.2fs = %.2fx\n", a, b, b/a, c, d, d/c}'
