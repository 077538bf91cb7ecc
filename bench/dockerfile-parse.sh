#!/usr/bin/env bash
# Parse a generated 10,000-instruction Dockerfile with dockbuild (syntax + typed
# instructions + stages) and, when PyPI's `dockerfile` package (BuildKit's Go
# parser behind a Python binding) is installed, with that too; print both and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/dockbuild}
N=${N:-10000}
REPEAT=${REPEAT:-20}
[ -x "$BIN" ] || swift build -c release --product dockbuild >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
df="$work/Dockerfile"

# A mix of what real Dockerfiles hold: continuations, flags, JSON form, heredocs.
awk -v n="$N" 'BEGIN {
  print "# syntax=docker/dockerfile:1"
  print "ARG BASE=debian:12"
  c = 1
  print "FROM ${BASE} AS stage0"
  while (c < n) {
    k = c % 10
    if (k == 0)      { printf "FROM stage%d AS stage%d\n", int(c/500), int(c/500)+1 }
    else if (k == 1) { printf "RUN apt-get update \\\n    && apt-get install -y --no-install-recommends pkg%d \\\n    && rm -rf /var/lib/apt/lists/*\n", c }
    else if (k == 2) { printf "COPY --chown=1000:1000 --chmod=0644 src/file%d.txt /app/file%d.txt\n", c, c }
    else if (k == 3) { printf "ENV KEY%d=\"value %d\" OTHER%d=plain\n", c, c, c }
    else if (k == 4) { printf "LABEL org.example.label%d=\"label value %d\"\n", c, c }
    else if (k == 5) { printf "RUN --mount=type=cache,target=/root/.cache/%d,sharing=locked [\"/bin/sh\", \"-c\", \"echo %d\"]\n", c, c }
    else if (k == 6) { printf "RUN <<EOF\necho heredoc %d\necho second line\nEOF\n", c }
    else if (k == 7) { printf "WORKDIR /work/dir%d\n", c }
    else if (k == 8) { printf "ARG ARG%d=default%d\n", c, c }
    else             { printf "CMD [\"/usr/bin/app\", \"--id\", \"%d\"]\n", c }
    c++
  }
}' > "$df"
echo "Dockerfile: $(grep -c '' "$df") lines, $N instructions, $(wc -c < "$df") bytes"

"$BIN" dockerfile parse "$df" > "$work/dump.txt"
ours=$("$BIN" dockerfile parse --repeat-count "$REPEAT" "$df" 2>&1 >/dev/null)
echo "dockbuild (full: syntax + instructions + stages): $ours"
ours_syntax=$("$BIN" dockerfile parse --syntax-only --repeat-count "$REPEAT" "$df" 2>&1 >/dev/null)
echo "dockbuild (syntax layer only):                    $ours_syntax"
ours_ms=$(sed -E 's/.* ([0-9.]+) ms per parse/\1/' <<<"$ours_syntax")

if python3 -c 'import dockerfile' 2>/dev/null; then
  theirs_ms=$(python3 - "$df" "$REPEAT" <<'PY'
import sys, time, dockerfile
text = open(sys.argv[1]).read(); n = int(sys.argv[2])
dockerfile.parse_string(text)
t = time.perf_counter()
for _ in range(n): cmds = dockerfile.parse_string(text)
print("%.2f" % ((time.perf_counter() - t) * 1000 / n))
PY
)
  echo "BuildKit parser via PyPI dockerfile (syntax layer): ${theirs_ms} ms per parse"
  awk -v a="$ours_ms" -v b="$theirs_ms" 'BEGIN { printf "ratio (BuildKit parser time / dockbuild syntax time): %.2fx\n", b / a }'
else
  echo "PyPI 'dockerfile' not installed (pip install dockerfile): no side-by-side number"
fi
