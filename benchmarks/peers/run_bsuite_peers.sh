#!/usr/bin/env bash
# CPU env-stepping peer benchmark: bsuite's numpy DeepSea (dm_env, a Python loop over env objects)
# against qfleet bench envs, same machine, E = 1, 64, 1024 envs.
#
#   bash benchmarks/peers/run_bsuite_peers.sh [bsuite_deepsea.py options, e.g. --repeats 5 --out FILE]
#
# Creates .venv-bsuite (`pip install bsuite`: bsuite 0.3.6 installs on Python 3.11 with its
# dependencies) if it is missing, uses $QFLEET or build/qfleet (building build-peer/qfleet, CPU
# only, when neither is there), runs benchmarks/peers/bsuite_deepsea.py and writes
# benchmarks/results/<date>-cpu-bsuite-peers.md (an --out among the options wins). About
# 1 minute with the defaults (3 repeats, 1 s per bsuite measurement).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv-bsuite"
PY="$VENV/bin/python"
if [ ! -x "$PY" ] || ! "$PY" -c 'from bsuite.environments import deep_sea' >/dev/null 2>&1; then
    echo "== creating $VENV (bsuite)"
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
    if ! "$PY" -m pip install --quiet bsuite; then
        # fallback: bsuite without its plotting/analysis dependencies; deep_sea needs only these
        "$PY" -m pip install --quiet --no-deps bsuite
        "$PY" -m pip install --quiet dm_env numpy absl-py
    fi
fi

QFLEET="${QFLEET:-build/qfleet}"
if [ ! -x "$QFLEET" ]; then
    QFLEET="build-peer/qfleet"
    if [ ! -x "$QFLEET" ]; then
        echo "== building $QFLEET"
        cmake -S "$ROOT" -B "$ROOT/build-peer" -DQFLEET_CUDA=OFF >/dev/null
        cmake --build "$ROOT/build-peer" -j2 --target qfleet
    fi
fi

mkdir -p benchmarks/results
OUT="benchmarks/results/$(date +%F)-cpu-bsuite-peers.md"
echo "== running benchmarks/peers/bsuite_deepsea.py with $QFLEET"
"$PY" benchmarks/peers/bsuite_deepsea.py --qfleet "$QFLEET" --out "$OUT" \
    --command "bash benchmarks/peers/run_bsuite_peers.sh${*:+ $*}" "$@"
echo "== done"
