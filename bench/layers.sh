#!/usr/bin/env bash
# Layer engine benchmark: create and apply a gzip layer of a ~200 MB tree of real files
# (copies of /usr/lib/python3* and /usr/share) with dockbuild, tar | gzip -6, tar | pigz -6 and
# umoci (repack / unpack), side by side, and print the ratios. Wall time and CPU time (user+sys of
# the command and its children) are both reported: on a shared machine CPU time is the steadier one.
# Needs a release build, umoci, pigz, GNU tar, python3; run as root (ownership is kept on apply).
# Layers are applied into a tmpfs (/dev/shm) so that the shared VM's disk writeback does not drown the
# tools' own work; BENCH_APPLY_DIR=/some/disk/dir measures a disk instead.
# Usage: bench/layers.sh [MB]   (default 200; DOCKBUILD=path overrides the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-200}
BIN=$(realpath "${DOCKBUILD:-.build/release/dockbuild}" 2>/dev/null || true)
[ -x "$BIN" ] || { echo "bench/layers.sh: release binary missing; run 'swift build -c release' (or make release)" >&2; exit 1; }
for t in umoci pigz gzip tar python3; do command -v $t >/dev/null || { echo "bench/layers.sh: $t is not installed (make deps)" >&2; exit 1; }; done

W=$(mktemp -d /tmp/dockbuild-bench-layers.XXXXXX)
A=$(mktemp -d "${BENCH_APPLY_DIR:-/dev/shm}/dockbuild-bench-apply.XXXXXX")
trap 'rm -rf "$W" "$A"' EXIT
TREE=$W/tree
mkdir -p "$TREE/share"
for d in /usr/lib/python3*; do [ -d "$d" ] && cp -a "$d" "$TREE/"; done
for d in /usr/share/*; do
  [ "$(du -sm "$TREE" | cut -f1)" -ge "$MB" ] && break
  cp -a "$d" "$TREE/share/" 2>/dev/null || true
done
# umoci needs an image with a bundle to repack.
umoci init --layout "$W/oci" >/dev/null
umoci new --image "$W/oci:base" >/dev/null
umoci unpack --image "$W/oci:base" "$W/bundle" >/dev/null
cp -a "$TREE/." "$W/bundle/rootfs/"

python3 - "$BIN" "$W" "$A" <<'PY'
import json, os, resource, subprocess, sys, time
BIN, W, A = sys.argv[1], sys.argv[2], sys.argv[3]
TREE = W + "/tree"
def du(p):
    return int(subprocess.check_output(["du", "-sb", p]).split()[0])
size = du(TREE); mb = size / 1e6
files = int(subprocess.check_output(f"find '{TREE}' | wc -l", shell=True))
print(f"tree: {mb:.0f} MB, {files} entries; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
subprocess.run(["tar", "-cf", "/dev/null", "-C", TREE, "."], check=True)  # warm the page cache

R = {}
def timed(key, cmd, out=None):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN); t0 = time.monotonic()
    subprocess.run(cmd, shell=isinstance(cmd, str), check=True, stdout=subprocess.DEVNULL)
    t1 = time.monotonic(); r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    R[key] = (t1 - t0, cpu, os.path.getsize(out) if out else None)

def fresh(d):
    subprocess.run(["rm", "-rf", d]); os.makedirs(d); os.sync()

for lvl in ["gzip:1", "gzip:3", "gzip:6", "zstd:3"]:
    o = f"{W}/db-{lvl}"
    timed("create " + lvl, [BIN, "layer", "create", TREE, "-o", o, "-c", lvl, "--no-sync"], o)
timed("create gzip", f"tar -cf - -C '{TREE}' . | gzip -6 > '{W}/gz.tgz'", f"{W}/gz.tgz")
timed("create pigz", f"tar -cf - -C '{TREE}' . | pigz -6 > '{W}/pigz.tgz'", f"{W}/pigz.tgz")
timed("create umoci", ["umoci", "repack", "--image", f"{W}/oci:big", f"{W}/bundle"])
idx = json.load(open(f"{W}/oci/index.json"))
m = [x for x in idx["manifests"] if x.get("annotations", {}).get("org.opencontainers.image.ref.name") == "big"][0]
man = json.load(open(f"{W}/oci/blobs/sha256/" + m["digest"][7:]))
w, c, _ = R["create umoci"]; R["create umoci"] = (w, c, man["layers"][-1]["size"])

print(f"applying into {A}")
fresh(A + "/out"); timed("apply gzip:1", [BIN, "layer", "apply", f"{W}/db-gzip:1", A + "/out"])
fresh(A + "/out"); timed("apply gzip:6", [BIN, "layer", "apply", f"{W}/db-gzip:6", A + "/out"])
fresh(A + "/out"); timed("apply tar", ["tar", "-xzpf", f"{W}/gz.tgz", "-C", A + "/out"])
fresh(A + "/out"); timed("apply pigz", f"pigz -dc '{W}/pigz.tgz' | tar -xpf - -C '{A}/out'")
subprocess.run(["rm", "-rf", A + "/out"]); os.sync()
timed("apply umoci", ["umoci", "unpack", "--image", f"{W}/oci:big", A + "/unpacked"])

labels = {
    "create gzip:1": "dockbuild gzip:1 (ISA-L, parallel)", "create gzip:3": "dockbuild gzip:3 (ISA-L, parallel)",
    "create gzip:6": "dockbuild gzip:6 (zlib, parallel)", "create zstd:3": "dockbuild zstd:3",
    "create gzip": "tar | gzip -6", "create pigz": "tar | pigz -6", "create umoci": "umoci repack",
    "apply gzip:1": "dockbuild (gzip:1 layer)", "apply gzip:6": "dockbuild (gzip:6 layer)",
    "apply tar": "tar -xzf", "apply pigz": "pigz -dc | tar -x", "apply umoci": "umoci unpack",
}
print(f"{'':38s} {'wall':>7s} {'CPU':>7s} {'MB/s':>7s} {'output':>9s}")
for phase in ["create", "apply"]:
    print(phase + ":")
    for k, (w, c, s) in R.items():
        if k.startswith(phase):
            print(f"  {labels[k]:36s} {w:6.2f}s {c:6.2f}s {mb / w:7.1f} {s / 1e6 if s else 0:7.1f}MB" if s else
                  f"  {labels[k]:36s} {w:6.2f}s {c:6.2f}s {mb / w:7.1f}")
def ratio(a, b, i): return R[a][i] / R[b][i]
print("ratios (wall / CPU):")
print(f"  create: umoci repack / dockbuild gzip:1   {ratio('create umoci','create gzip:1',0):5.1f}x / {ratio('create umoci','create gzip:1',1):5.1f}x   (goal >= 3x)")
for l in ["gzip:1", "gzip:3", "gzip:6"]:
    print(f"  create: pigz -6 / dockbuild {l}          {ratio('create pigz','create '+l,0):5.1f}x / {ratio('create pigz','create '+l,1):5.1f}x   size {R['create '+l][2]/R['create pigz'][2]:.3f} of pigz's")
print(f"  create: gzip -6 / dockbuild gzip:1        {ratio('create gzip','create gzip:1',0):5.1f}x / {ratio('create gzip','create gzip:1',1):5.1f}x")
print(f"  apply:  umoci unpack / dockbuild          {ratio('apply umoci','apply gzip:1',0):5.1f}x / {ratio('apply umoci','apply gzip:1',1):5.1f}x   (goal >= 2x)")
print(f"  apply:  tar -xzf / dockbuild              {ratio('apply tar','apply gzip:1',0):5.1f}x / {ratio('apply tar','apply gzip:1',1):5.1f}x")
print(f"  apply:  pigz | tar / dockbuild            {ratio('apply pigz','apply gzip:1',0):5.1f}x / {ratio('apply pigz','apply gzip:1',1):5.1f}x")
print(f"load average at the end: {os.getloadavg()[0]:.1f}")
PY
