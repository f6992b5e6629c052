#!/usr/bin/env bash
# test.sh — set up on first use (packages, build), then run the whole test suite with CTest.
# GPU-labelled tests run on a machine with a usable GPU and skip, saying why, elsewhere.
set -euo pipefail
. "$(dirname "$0")/scripts/setup.sh"
# the Python packages of scripts/plot.py for the `plot` tests (from PyPI, once; docs/plotting.md)
"$QF_ROOT/scripts/plot-env.sh" || echo "test.sh: no plotting environment (.venv-plot): the plot tests will fail" >&2
# One test at a time: each test already uses every core (OpenMP), and two multi-threaded tests on
# the same cores make every parallel region wait for a descheduled thread.
ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
