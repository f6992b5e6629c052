#!/usr/bin/env bash
# CPU env-stepping peer benchmark: qfleet vs gymnax (jax[cpu]) on this machine, same number of envs.
#
#   bash benchmarks/peers/run_env_peers.sh [extra gymnax_envs.py options, e.g. --repeats 5]
#
# Creates .venv-peers (jax[cpu], gymnax) if it is missing, builds build-peer/qfleet (CPU only; configured
# if missing, brought up to date with the sources every time), runs benchmarks/peers/gymnax_envs.py and writes
# benchmarks/results/<date>-cpu-env-peers.md (an --out among the extra options wins). Takes about
# 5-9 minutes on 2 cores, longer while other work keeps the machine busy (disturbed rounds are redone).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv-peers"
PY="$VENV/bin/python"
if [ ! -x "$PY" ] || ! "$PY" -c 'import jax, gymnax' >/dev/null 2>&1; then
    echo "== creating $VENV (jax[cpu], gymnax)"
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
    # six: gymnax imports it (its MNIST loader) but does not declare it
    "$PY" -m pip install --quiet "jax[cpu]" gymnax six
fi

QFLEET="build-peer/qfleet"
# configured once, built every time (incremental: a no-op when up to date), so that the binary timed
# is the checkout's sources, not a build left from an older commit
if [ ! -f "$ROOT/build-peer/CMakeCache.txt" ]; then
    echo "== configuring build-peer"
    cmake -S "$ROOT" -B "$ROOT/build-peer" -DQFLEET_CUDA=OFF >/dev/null
fi
echo "== building $QFLEET"
cmake --build "$ROOT/build-peer" -j2 --target qfleet >/dev/null

mkdir -p benchmarks/results
OUT="benchmarks/results/$(date +%F)-cpu-env-peers.md"
echo "== running benchmarks/peers/gymnax_envs.py -> $OUT"
"$PY" benchmarks/peers/gymnax_envs.py --qfleet "$QFLEET" --qfleet-dense --out "$OUT" \
    --command "bash benchmarks/peers/run_env_peers.sh${*:+ $*}" "$@"
echo "== done"
