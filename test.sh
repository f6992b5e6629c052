#!/usr/bin/env bash
# test.sh — set up on first use (packages, build), then run the whole test suite with CTest.
# GPU-labelled tests run on a machine with a usable GPU and skip, saying why, elsewhere.
set -euo pipefail
. "$(dirname "$0")/scripts/setup.sh"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@"
