#!/usr/bin/env bash
# S3 registry benchmark (issue #23): push and pull a ~200 MB image through dockbuild's
# `registry serve` storing in Ceph's radosgw (a private scripts/ceph-dev.sh cluster) and through Debian's
# docker-registry (distribution 2.8) with its own s3 driver on the same radosgw and bucket
# (separate root directories). skopeo is the client for both, so the difference is the server.
# Each run starts both registries on fresh root directories (nothing cached, nothing to skip).
# It also times the same pulls from dockbuild on the local filesystem: the client's own floor.
# Blob GETs are served through the registries (redirect disabled on both) unless REDIRECT=true.
# docker-registry runs without AWS_CA_BUNDLE (its AWS SDK refuses a custom bundle with its transport).
# Usage: bench/registry-s3.sh [path/to/dockbuild]   (default .build/release/dockbuild)
# Env: RUNS (default 3), LAYERS (default 4), LAYER_MB (default 50), REDIRECT (default false)
set -euo pipefail
BIN=${1:-.build/release/dockbuild}
RUNS=${RUNS:-3}
LAYERS=${LAYERS:-4}
LAYER_MB=${LAYER_MB:-50}
REDIRECT=${REDIRECT:-false}
for t in docker-registry skopeo curl python3; do
  command -v $t >/dev/null || { echo "bench: $t is missing (make deps)" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "bench: $BIN not built (swift build -c release)" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
CEPH=$HERE/scripts/ceph-dev.sh
WORK=$(mktemp -d /var/tmp/bench-s3.XXXXXX)
PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }
# A private cluster (its memstore holds every pushed byte in RAM; it goes at the end).
export CEPH_DEV_DIR=$WORK/ceph
cleanup() { stop_all; "$CEPH" stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
"$CEPH" start >/dev/null
eval "$("$CEPH" env)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 200); do curl -sf "http://127.0.0.1:$1/v2/" >/dev/null && return 0; sleep 0.1; done; echo "bench: registry on $1 did not start" >&2; cat "$WORK"/*.log >&2; exit 1; }
now() { date +%s.%N; }

# An OCI layout: LAYERS uncompressed tar layers of LAYER_MB MB of random bytes each.
python3 - "$WORK/layout" "$LAYERS" "$LAYER_MB" <<'PY'
import hashlib, io, json, os, sys, tarfile
out, layers, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out + "/blobs/sha256")
def put(b):
    d = hashlib.sha256(b).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(b)
    return "sha256:" + d, len(b)
descs, diffs = [], []
for i in range(layers):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        data = os.urandom(mb * 1000 * 1000)
        ti = tarfile.TarInfo(f"layer{i}.bin"); ti.size = len(data); ti.mtime = 0
        t.addfile(ti, io.BytesIO(data))
    d, n = put(buf.getvalue())
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n})
    diffs.append(d)
cfg = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diffs}, "config": {}}
cd, cn = put(json.dumps(cfg, sort_keys=True).encode())
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn}, "layers": descs}
md, mn = put(json.dumps(m, sort_keys=True).encode())
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": m["mediaType"], "digest": md, "size": mn,
          "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, open(out + "/index.json", "w"))
open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
SIZE=$(du -sm "$WORK/layout" | cut -f1)
DISABLE=$([ "$REDIRECT" = true ] && echo false || echo true)

# start_pair RUN: our registry on P1, distribution on P2, fresh root directories in the bucket.
start_pair() {
  P1=$(free_port); P2=$(free_port)
  for who in d r; do
    cat > "$WORK/$who-$1.yml" <<YML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage:
  s3:
    region: $S3_REGION
    regionendpoint: $S3_ENDPOINT
    bucket: $S3_BUCKET
    accesskey: $AWS_ACCESS_KEY_ID
    secretkey: $AWS_SECRET_ACCESS_KEY
    rootdirectory: /bench-$who-$$-$1
    forcepathstyle: true
    secure: false
    v4auth: true
  redirect: { disable: $DISABLE }
  delete: { enabled: true }
http: { addr: 127.0.0.1:$([ $who = d ] && echo $P1 || echo $P2) }
YML
  done
  "$BIN" registry serve --config "$WORK/d-$1.yml" --log-format none 2>"$WORK/d.log" &
  PIDS+=($!); PID_d=$!
  env -u AWS_CA_BUNDLE docker-registry serve "$WORK/r-$1.yml" >"$WORK/r.log" 2>&1 &
  PIDS+=($!); PID_r=$!
  wait_up $P1; wait_up $P2
}

declare -A T C
# CPU seconds (user + system) a process has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); print ($12 + $13) / hz}' "/proc/$1/stat"; }
# timed KEY PID CMD...: wall time of CMD, and the CPU time the registry PID spent meanwhile.
timed() {
  local k=$1 pid=$2; shift 2
  local a c; a=$(now); c=$(cpu "$pid")
  "$@" >/dev/null
  T[$k]="${T[$k]:-} $(python3 -c "print(f'{$(now)-$a:.2f}')")"
  C[$k]="${C[$k]:-} $(python3 -c "print(f'{$(cpu "$pid")-$c:.2f}')")"
}
for run in $(seq "$RUNS"); do
  start_pair "$run"
  # alternate the order so neither registry always goes first
  if [ $((run % 2)) = 1 ]; then ORDER="d r"; else ORDER="r d"; fi
  for who in $ORDER; do
    P=$([ $who = d ] && echo $P1 || echo $P2)
    PID=$([ $who = d ] && echo $PID_d || echo $PID_r)
    timed push_$who $PID skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:bench" "docker://127.0.0.1:$P/bench/img:v1"
  done
  for who in $ORDER; do
    P=$([ $who = d ] && echo $P1 || echo $P2)
    rm -rf "$WORK/out-$who"
    PID=$([ $who = d ] && echo $PID_d || echo $PID_r)
    timed pull_$who $PID skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$P/bench/img:v1" "oci:$WORK/out-$who:v1"
  done
  cmp <(cat "$WORK/out-d/index.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["digest"])') \
      <(cat "$WORK/out-r/index.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["digest"])')
  stop_all
done

# Manifest GETs through two replicas of each on one root directory (wrk on both at once).
DURATION=${DURATION:-5}
if command -v wrk >/dev/null; then
  start_pair m; A1=$P1; A2=$P2
  skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:bench" "docker://127.0.0.1:$A1/bench/img:v1" >/dev/null
  skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:bench" "docker://127.0.0.1:$A2/bench/img:v1" >/dev/null
  B1=$(free_port); B2=$(free_port)
  sed "s/127.0.0.1:$A1/127.0.0.1:$B1/" "$WORK/d-m.yml" > "$WORK/d-m2.yml"
  sed "s/127.0.0.1:$A2/127.0.0.1:$B2/" "$WORK/r-m.yml" > "$WORK/r-m2.yml"
  "$BIN" registry serve --config "$WORK/d-m2.yml" --log-format none 2>"$WORK/d2.log" &
  PIDS+=($!)
  env -u AWS_CA_BUNDLE docker-registry serve "$WORK/r-m2.yml" >"$WORK/r2.log" 2>&1 &
  PIDS+=($!)
  wait_up $B1; wait_up $B2
  HDR='Accept: application/vnd.oci.image.manifest.v1+json'
  rps() { awk '/Requests\/sec/{print $2}'; }
  both() {  # both PORT1 PORT2: summed req/s of wrk on each at once
    wrk -t1 -c16 -d${DURATION}s -H "$HDR" "http://127.0.0.1:$1/v2/bench/img/manifests/v1" | rps > "$WORK/w1" &
    local first=$!
    wrk -t1 -c16 -d${DURATION}s -H "$HDR" "http://127.0.0.1:$2/v2/bench/img/manifests/v1" | rps > "$WORK/w2"
    wait $first
    python3 -c "print(f'{float(open(\"$WORK/w1\").read() or 0)+float(open(\"$WORK/w2\").read() or 0):.0f}')"
  }
  MD=$(both $A1 $B1); MR=$(both $A2 $B2)
  stop_all
fi

# The client's floor: the same pulls from dockbuild on the local filesystem (sendfile, no S3),
# so what is left of a pull's time for any S3-backed server is visible.
PF=$(free_port)
"$BIN" registry serve --storage "$WORK/fs-store" --addr 127.0.0.1:$PF --log-format none 2>"$WORK/fs.log" &
PIDS+=($!); PID_f=$!
wait_up $PF
skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:bench" "docker://127.0.0.1:$PF/bench/img:v1" >/dev/null
for run in $(seq "$RUNS"); do
  rm -rf "$WORK/out-f"
  timed pull_f $PID_f skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$PF/bench/img:v1" "oci:$WORK/out-f:v1"
done
stop_all
rm -rf "$WORK/fs-store"

summary() {  # summary KEY -> "best median"
  python3 -c "import statistics,sys; v=sorted(map(float,sys.argv[1:])); print(f'{v[0]:.2f} {statistics.median(v):.2f}')" ${T[$1]}
}
echo "image: $LAYERS layers, ${SIZE} MB; $RUNS runs; redirect=$REDIRECT; radosgw $S3_ENDPOINT"
for op in push pull; do
  read -r db dm <<<"$(summary ${op}_d)"; read -r rb rm_ <<<"$(summary ${op}_r)"
  ratio=$(python3 -c "print(f'{$dm/$rm_:.2f}')")
  echo "$op: dockbuild best ${db}s median ${dm}s | docker-registry best ${rb}s median ${rm_}s | ratio (median) ${ratio}x  [runs:${T[${op}_d]} /${T[${op}_r]}]"
  echo "$op: server CPU seconds, dockbuild:${C[${op}_d]} | docker-registry:${C[${op}_r]}"
done
read -r fb fm <<<"$(summary pull_f)"
echo "pull floor (dockbuild on the local filesystem, no S3): best ${fb}s median ${fm}s  [runs:${T[pull_f]}]"
if [ -n "${MD:-}" ]; then
  echo "manifest GET, two replicas each on one root directory: dockbuild ${MD} req/s | docker-registry ${MR} req/s | $(python3 -c "print(f'{$MD/max($MR,1):.1f}')")x"
fi
