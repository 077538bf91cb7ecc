#!/bin/bash
# A throwaway single-node Ceph (Debian's ceph-mon, ceph-osd, radosgw; version 16) on loopback, for the
# registry's S3 driver tests and benchmarks (issue #23): one monitor, one OSD on memstore (RAM, no
# disk), one radosgw on a free 127.0.0.1 port, an S3 user with keys and one bucket.
#
#   scripts/ceph-dev.sh start   brings it up (idempotent: a running one is reused)
#   scripts/ceph-dev.sh env     prints the S3 endpoint, keys, region and bucket as shell exports
#   scripts/ceph-dev.sh status  exits 0 when radosgw answers
#   scripts/ceph-dev.sh stop    stops the daemons and removes everything it created
#
# State lives in $CEPH_DEV_DIR (default /var/tmp/dockbuild-ceph); nothing listens beyond 127.0.0.1.
# The daemons share one cephx keyring made at start; the S3 side is real SigV4 with real keys.
set -euo pipefail

DIR=${CEPH_DEV_DIR:-/var/tmp/dockbuild-ceph}
CONF=$DIR/ceph.conf
ENVFILE=$DIR/env
BUCKET=${CEPH_DEV_BUCKET:-dockbuild}
REGION=us-east-1
ACCESS_KEY=DOCKBUILDDEVACCESS01
SECRET_KEY=dockbuild-dev-secret-key-not-for-production

log() { echo "ceph-dev: $*" >&2; }
die() { log "$*"; exit 1; }

need() {
    local missing=""
    for t in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph curl; do
        command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
    done
    [ -z "$missing" ] || die "missing$missing: apt-get install ceph-mon ceph-osd radosgw ceph-common curl (make deps does)"
}

# A TCP port nobody listens on, from a range away from the usual services.
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$(( (RANDOM % 20000) + 30000 ))
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return; fi
    done
    die "no free port found on 127.0.0.1"
}

s3() {  # s3 METHOD PATH [curl args...]: a SigV4-signed request to radosgw
    local method=$1 path=$2; shift 2
    curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --aws-sigv4 "aws:amz:$REGION:s3" \
        --user "$ACCESS_KEY:$SECRET_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X "$method" "$@" "$S3_ENDPOINT$path"
}

running() {
    [ -f "$ENVFILE" ] || return 1
    # shellcheck disable=SC1090
    . "$ENVFILE"
    [ "$(s3 HEAD "/$BUCKET" 2>/dev/null || true)" = 200 ]
}

stop() {
    local f pid
    for f in "$DIR"/run/*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f" 2>/dev/null || true)
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    for _ in $(seq 1 50); do
        local alive=0
        for f in "$DIR"/run/*.pid; do
            [ -f "$f" ] || continue
            pid=$(cat "$f" 2>/dev/null || true)
            [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
        done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for f in "$DIR"/run/*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f" 2>/dev/null || true)
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$DIR"
}

start() {
    need
    # The daemons must not inherit the caller's descriptors (a pipe or a process monitor's
    # socket would look open to the caller for as long as Ceph runs).
    local fd
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null || true
    done
    if running; then log "already running at $S3_ENDPOINT (bucket $BUCKET)"; return; fi
    [ -d "$DIR" ] && stop
    local t0=$SECONDS
    mkdir -p "$DIR"/{run,log,mon,osd}
    local fsid mon_port rgw_port
    fsid=$(cat /proc/sys/kernel/random/uuid)
    mon_port=$(free_port)
    rgw_port=$(free_port)
    cat > "$CONF" <<EOF
[global]
fsid = $fsid
mon initial members = a
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
ms bind port min = 40000
ms bind port max = 49999
auth allow insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
keyring = $DIR/keyring
mon data = $DIR/mon/\$cluster-\$id
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 4294967296
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
osd memory target = 536870912
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw enable usage log = false
rgw dynamic resharding = false
rgw init timeout = 60
# Virtual-host addressing: BUCKET.localhost:PORT names the bucket (curl resolves *.localhost
# to loopback); other Host values (127.0.0.1:PORT) stay path-style.
rgw dns name = localhost
EOF
    # Every key the cluster needs, imported into the monitor's database by its mkfs.
    local k=$DIR/keyring
    ceph-authtool --create-keyring "$k" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool "$k" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool "$k" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' >/dev/null
    ceph-authtool "$k" --gen-key -n client.rgw --cap mon 'allow rw' --cap osd 'allow rwx' >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" >/dev/null
    ceph-mon --conf "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$k" >"$DIR/log/mkfs-mon.log" 2>&1 || die "ceph-mon --mkfs failed: $(tail -3 "$DIR/log/mkfs-mon.log")"
    ceph-mon --conf "$CONF" -i a || die "ceph-mon did not start; see $DIR/log/mon.a.log"
    local osd_uuid id
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    id=$(ceph --conf "$CONF" --connect-timeout 20 osd new "$osd_uuid" 2>"$DIR/log/osd-new.log") || die "ceph osd new failed: $(tail -3 "$DIR/log/osd-new.log")"
    mkdir -p "$DIR/osd/ceph-$id"
    ceph-osd --conf "$CONF" -i "$id" --mkfs --osd-uuid "$osd_uuid" >"$DIR/log/mkfs-osd.log" 2>&1 || die "ceph-osd --mkfs failed: $(tail -3 "$DIR/log/mkfs-osd.log")"
    ceph-osd --conf "$CONF" -i "$id" 2>>"$DIR/log/start-osd.log" || die "ceph-osd did not start; see $DIR/log/osd.$id.log"
    radosgw --conf "$CONF" -n client.rgw || die "radosgw did not start; see $DIR/log/client.rgw.log"
    S3_ENDPOINT=http://127.0.0.1:$rgw_port
    # radosgw creates its pools at start; it answers once they exist.
    local code=000
    for _ in $(seq 1 600); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$S3_ENDPOINT/" 2>/dev/null || true)
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    [ "$code" = 200 ] || die "radosgw did not answer on $S3_ENDPOINT within 60 s; see $DIR/log/client.rgw.log"
    radosgw-admin --conf "$CONF" user create --uid=dockbuild --display-name=dockbuild \
        --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$DIR/log/user.log" 2>&1 || die "radosgw-admin user create failed: $(tail -3 "$DIR/log/user.log")"
    code=$(s3 PUT "/$BUCKET")
    [ "$code" = 200 ] || die "creating bucket $BUCKET answered HTTP $code"
    cat > "$ENVFILE" <<EOF
export S3_ENDPOINT=$S3_ENDPOINT
export S3_REGION=$REGION
export S3_BUCKET=$BUCKET
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
EOF
    log "up in $((SECONDS - t0)) s: $S3_ENDPOINT, bucket $BUCKET (eval \"\$($0 env)\")"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) running ;;
env) running || die "not running (scripts/ceph-dev.sh start)"; cat "$ENVFILE" ;;
*) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
