#!/usr/bin/env bash
# gpu_prepare.sh — run HERE (a machine with apt), before a GPU check: copies the header-only and
# source dependencies that the GPU machine cannot download into .gpu-deps/ (git-ignored), which the
# device call must carry: carry [".gpu-deps"].
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
for p in librandom123-dev googletest libopenblas-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$p" >/dev/null; }
done
rm -rf "$root/.gpu-deps"
mkdir -p "$root/.gpu-deps/include"
cp -r /usr/include/Random123 "$root/.gpu-deps/include/"
cp -r /usr/src/googletest "$root/.gpu-deps/googletest"
# OpenBLAS (CPU GEMMs of the reference backend) with the runtime libraries it needs
mkdir -p "$root/.gpu-deps/openblas/lib" "$root/.gpu-deps/openblas/include"
cp /usr/include/x86_64-linux-gnu/openblas-pthread/*.h "$root/.gpu-deps/openblas/include/"
cp -L /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 "$root/.gpu-deps/openblas/lib/"
ln -sf libopenblas.so.0 "$root/.gpu-deps/openblas/lib/libopenblas.so"
for l in libgfortran.so.5 libquadmath.so.0; do
  cp -L "/lib/x86_64-linux-gnu/$l" "$root/.gpu-deps/openblas/lib/"
done
du -sh "$root/.gpu-deps"
