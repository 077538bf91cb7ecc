#!/usr/bin/env bash
# Registry server benchmark: dockbuild's `registry serve` vs Debian's docker-registry
# (distribution 2.8), side by side on loopback.
#   - manifest GET requests/s (wrk)
#   - 50 MB blob GET throughput (wrk)
#   - push of many small images (keep-alive client: 2 blobs + 1 manifest each)
# Usage: bench/registry-server.sh [path/to/dockbuild]   (default .build/release/dockbuild)
# Env: DURATION (s, default 5), CONNS (default 32), IMAGES (default 300)
set -euo pipefail
BIN=${1:-.build/release/dockbuild}
DURATION=${DURATION:-5}
CONNS=${CONNS:-32}
IMAGES=${IMAGES:-300}
for t in wrk docker-registry curl python3; do
  command -v $t >/dev/null || { echo "bench: $t is missing (make deps)" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "bench: $BIN not built (swift build -c release)" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/v2/" >/dev/null && return 0; sleep 0.1; done; echo "bench: server on $1 did not start" >&2; exit 1; }

P1=$(free_port); P2=$(free_port); P3=$(free_port)
"$BIN" registry serve --addr 127.0.0.1:$P1 --storage "$WORK/dockbuild" --log-format none 2>"$WORK/d.log" &
PIDS+=($!)
# The same server with everything an operator turns on: the JSON access log (to a file, as a
# journal would take it) and metrics (a debug address), over the same storage.
"$BIN" registry serve --addr 127.0.0.1:$P3 --storage "$WORK/dockbuild" --log-format json --debug-addr 127.0.0.1:0 2>"$WORK/d-ops.log" &
PIDS+=($!)
cat > "$WORK/distribution.yml" <<YML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage:
  filesystem: { rootdirectory: $WORK/distribution }
  delete: { enabled: true }
  cache: { blobdescriptor: inmemory }
http: { addr: 127.0.0.1:$P2 }
YML
docker-registry serve "$WORK/distribution.yml" >"$WORK/r.log" 2>&1 &
PIDS+=($!)
wait_up $P1; wait_up $P2; wait_up $P3

# Content: a 50 MB blob, a config, a manifest.
head -c 50000000 /dev/urandom > "$WORK/big"
BIG=sha256:$(sha256sum "$WORK/big" | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux"}' > "$WORK/config"
CFG=sha256:$(sha256sum "$WORK/config" | cut -d' ' -f1)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}' \
  "$CFG" "$(stat -c %s "$WORK/config")" "$BIG" "$(stat -c %s "$WORK/big")" > "$WORK/manifest"
for P in $P1 $P2; do
  for f in big config; do
    D=sha256:$(sha256sum "$WORK/$f" | cut -d' ' -f1)
    LOC=$(curl -sf -X POST -D - -o /dev/null "http://127.0.0.1:$P/v2/bench/img/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
    case "$LOC" in http*) ;; *) LOC="http://127.0.0.1:$P$LOC";; esac
    SEP='?'; case "$LOC" in *\?*) SEP='&';; esac
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/$f" "$LOC${SEP}digest=$D" >/dev/null
  done
  curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @"$WORK/manifest" \
    "http://127.0.0.1:$P/v2/bench/img/manifests/latest" >/dev/null
done

# wrk prints "Requests/sec: N" and "Transfer/sec: N(MB|GB)".
rps() { awk '/Requests\/sec/{print $2}'; }
mbps() { awk '/Transfer\/sec/{v=$2; u=substr(v,length(v)-1); n=substr(v,1,length(v)-2); if(u=="GB") n*=1024; if(u=="KB") n/=1024; print n}'; }
HDR='Accept: application/vnd.oci.image.manifest.v1+json'
M1=$(wrk -t2 -c$CONNS -d${DURATION}s -H "$HDR" "http://127.0.0.1:$P1/v2/bench/img/manifests/latest" | rps)
M2=$(wrk -t2 -c$CONNS -d${DURATION}s -H "$HDR" "http://127.0.0.1:$P2/v2/bench/img/manifests/latest" | rps)
# The operability cost: off and on alternate, OPS_ROUNDS rounds of 3 s each, and the means are
# compared (one run of each varies by ±10% on a shared machine; alternating cancels drift).
# With two cores or more, both servers run on the last core and wrk on the others (OPS_PIN=0
# turns it off): unpinned, wrk's threads and the server's 32 connection threads share the cores
# and the scheduler decides each round's rate (±10%, more than the cost measured); pinned, the
# server's core does only the server's work, so its rate is its CPU per request (±2-3%).
# Each round also reads the server's CPU time (utime+stime from /proc) over wrk's request count.
OPS_ROUNDS=${OPS_ROUNDS:-8}
OPS_PIN=${OPS_PIN:-1}
NCPU=$(nproc)
if [ "$OPS_PIN" = 1 ] && [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_CPU=$((NCPU - 1)); WRK_CPUS=0-$((NCPU - 2))
  for pid in "${PIDS[0]}" "${PIDS[1]}"; do taskset -a -p -c "$SERVER_CPU" "$pid" >/dev/null; done
  OPS_WRK=(taskset -c "$WRK_CPUS" wrk); PINNED="server on cpu $SERVER_CPU, wrk on cpus $WRK_CPUS"
else
  OPS_WRK=(wrk); PINNED="not pinned"
fi
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# ops_round PID PORT -> "req/s µs-of-server-CPU-per-request"
ops_round() {
  local c0 c1 out
  c0=$(cputicks "$1")
  out=$("${OPS_WRK[@]}" -t2 -c$CONNS -d3s -H "$HDR" "http://127.0.0.1:$2/v2/bench/img/manifests/latest")
  c1=$(cputicks "$1")
  echo "$out" | awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" \
    '/requests in/{n=$1} /Requests\/sec/{r=$2} END{printf "%s %.2f\n", r, (b-a)*1e6/hz/n}'
}
OFFS=(); ONS=(); OFFCPU=(); ONCPU=()
for _ in $(seq "$OPS_ROUNDS"); do
  read -r r c < <(ops_round "${PIDS[0]}" "$P1"); OFFS+=("$r"); OFFCPU+=("$c")
  read -r r c < <(ops_round "${PIDS[1]}" "$P3"); ONS+=("$r"); ONCPU+=("$c")
done
# Unpin, so that the comparisons below against distribution use every core as before.
if [ "$PINNED" != "not pinned" ]; then
  for pid in "${PIDS[0]}" "${PIDS[1]}"; do taskset -a -p -c "0-$((NCPU - 1))" "$pid" >/dev/null; done
fi
mean() { printf '%s\n' "$@" | awk '{s+=$1; n++} END{printf "%.0f", s/n}'; }
M3=$(mean "${ONS[@]}")
B1=$(wrk -t2 -c4 -d${DURATION}s "http://127.0.0.1:$P1/v2/bench/img/blobs/$BIG" | mbps)
B2=$(wrk -t2 -c4 -d${DURATION}s "http://127.0.0.1:$P2/v2/bench/img/blobs/$BIG" | mbps)

# Many small images: a keep-alive client pushing config + layer + manifest per image.
cat > "$WORK/push.py" <<'PY'
import hashlib, http.client, json, sys, time
port, n, tag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port)
def req(method, path, body=b"", headers={}):
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse(); r.read(); return r
def blob(repo, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    r = req("POST", f"/v2/{repo}/blobs/uploads/")
    loc = r.getheader("Location"); loc = loc.split("127.0.0.1:%d" % port)[-1]
    r = req("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + d, data, {"Content-Type": "application/octet-stream"})
    assert r.status == 201, r.status
    return d, len(data)
t0 = time.time()
for i in range(n):
    repo = f"small/app{i % 10}"
    layer = (f"{tag}-layer-{i}-" * 64).encode()
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "i": i, "t": tag}).encode()
    ld, ls = blob(repo, layer); cd, cs = blob(repo, cfg)
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}]}).encode()
    r = req("PUT", f"/v2/{repo}/manifests/v{i}", m, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status == 201, r.status
print("%.1f" % (n / (time.time() - t0)))
PY
S1=$(python3 "$WORK/push.py" $P1 $IMAGES d)
S2=$(python3 "$WORK/push.py" $P2 $IMAGES r)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.2fx", a/b; else print "n/a" }'; }
echo "registry server benchmark ($(nproc) cores, loopback; wrk ${DURATION}s, $CONNS connections for manifests, 4 for blobs)"
printf '%-28s %14s %16s %8s\n' "" "dockbuild" "docker-registry" "ratio"
printf '%-28s %14s %16s %8s\n' "manifest GET (req/s)" "$M1" "$M2" "$(ratio "$M1" "$M2")"
printf '%-28s %14s %16s %8s\n' "50 MB blob GET (MB/s)" "$B1" "$B2" "$(ratio "$B1" "$B2")"
printf '%-28s %14s %16s %8s\n' "push $IMAGES small images (img/s)" "$S1" "$S2" "$(ratio "$S1" "$S2")"
echo
echo "operability cost: manifest GET with the JSON access log (to a file) and metrics on, against both off ($OPS_ROUNDS alternating rounds of 3 s, means; goal: cost <= 5%)"
printf '%-28s %14s %16s %8s %8s\n' "" "log+metrics" "off" "ratio" "cost"
OFF=$(mean "${OFFS[@]}")
printf '%-28s %14s %16s %8s %8s\n' "manifest GET (req/s)" "$M3" "$OFF" "$(ratio "$M3" "$OFF")" \
  "$(awk -v a="$M3" -v b="$OFF" 'BEGIN{ printf "%.1f%%", 100*(1-a/b) }')"
fmean() { printf '%s\n' "$@" | awk '{s+=$1; n++} END{printf "%.2f", s/n}'; }
CON=$(fmean "${ONCPU[@]}"); COFF=$(fmean "${OFFCPU[@]}")
printf '%-28s %14s %16s %8s %8s\n' "server CPU per request (µs)" "$CON" "$COFF" "$(ratio "$CON" "$COFF")" \
  "$(awk -v a="$CON" -v b="$COFF" 'BEGIN{ printf "%+.1f%%", 100*(a/b-1) }')"
echo "($PINNED; rounds off: ${OFFS[*]}; on: ${ONS[*]})"
