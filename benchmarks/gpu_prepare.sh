#!/usr/bin/env bash
# gpu_prepare.sh — run HERE (a machine with apt), before a GPU check: copies the header-only and
# source dependencies that the GPU machine cannot download into .gpu-deps/ (git-ignored), which the
# device call must carry: carry [".gpu-deps"].
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
for p in librandom123-dev googletest; do
  dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$p" >/dev/null; }
done
rm -rf "$root/.gpu-deps"
mkdir -p "$root/.gpu-deps/include"
cp -r /usr/include/Random123 "$root/.gpu-deps/include/"
cp -r /usr/src/googletest "$root/.gpu-deps/googletest"
du -sh "$root/.gpu-deps"
