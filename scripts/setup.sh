#!/usr/bin/env bash
# setup.sh — sourced by run.sh and test.sh: install what a fresh Debian machine lacks, then
# configure and build qfleet into ${BUILD_DIR:-build}. Extra CMake arguments: QFLEET_CMAKE_ARGS.
set -euo pipefail
QF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$QF_ROOT/build}"

# Debian packages the build needs (the CUDA toolkit is optional and not from apt).
QF_PKGS="cmake make gcc g++ libgtest-dev librandom123-dev libopenblas-dev libblas-dev libyaml-dev libopenmpi-dev openmpi-bin python3 python3-numpy python3-venv"
missing=""
for p in $QF_PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "qfleet setup: installing$missing" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "qfleet setup: missing packages:$missing; install them as root (apt-get install$missing)" >&2
    exit 1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# The CUDA toolkit, when installed in its usual place but not on PATH.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi

# OpenMP threads that wait at a barrier spin before sleeping; libgomp's default spin is long, and on
# a machine where another process holds a core every barrier then waits out a scheduler slice
# (CartPole stepping, 16k envs, one core busy: 1.7e7 steps/s by default, 3.5e7 with a short spin;
# no change on an idle machine). Users may override it.
export GOMP_SPINCOUNT="${GOMP_SPINCOUNT:-3000}"

jobs="$(nproc 2>/dev/null || echo 2)"
if [ ! -x "$BUILD_DIR/qfleet" ]; then
  # The first build takes minutes (with CUDA more); say so instead of staying silent.
  echo "qfleet setup: building into $BUILD_DIR on $jobs cores (first time: a few minutes; log $BUILD_DIR.build.log)" >&2
elif [ -z "${QF_BUILD_TARGET:-}" ] && [ ! -x "$BUILD_DIR/tests/test_math" ]; then
  # ./run.sh built qfleet alone; the test programs come now (a new user saw minutes of silence)
  echo "qfleet setup: building the test programs into $BUILD_DIR/tests on $jobs cores (first time: a few minutes; log $BUILD_DIR.build.log)" >&2
fi
# shellcheck disable=SC2086
cmake -S "$QF_ROOT" -B "$BUILD_DIR" ${QFLEET_CMAKE_ARGS:-} >"$BUILD_DIR.configure.log" 2>&1 || {
  cat "$BUILD_DIR.configure.log" >&2; echo "qfleet setup: configure failed (log above)" >&2; exit 1; }
# QF_BUILD_TARGET: one target only (run.sh builds qfleet, not the test programs: minutes less on a
# fresh machine); unset: everything
# shellcheck disable=SC2086
cmake --build "$BUILD_DIR" -j "$jobs" ${QF_BUILD_TARGET:+--target $QF_BUILD_TARGET} >"$BUILD_DIR.build.log" 2>&1 || {
  tail -n 60 "$BUILD_DIR.build.log" >&2; echo "qfleet setup: build failed (log: $BUILD_DIR.build.log)" >&2; exit 1; }
