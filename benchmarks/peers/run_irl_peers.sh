#!/usr/bin/env bash
# bench irl against its peers, interleaved: qfleet (`qfleet bench irl`, 1, 64 and 1,024 problems),
# the numpy peer (irl_numpy.py) and the `imitation` library's MCE IRL (irl_imitation.py), on
# gridworld 16x16 and 32x32, T = 64. Each repeat runs all of them once in turn, so that load from
# other processes falls on every side alike; summarize_irl_peers.py then gives medians, spread and
# per-problem ratios (wall time and CPU time).
#
#   bash benchmarks/peers/run_irl_peers.sh [REPEATS (5)] [OUT_DIR (results/bench-irl-peers)]
#
# QFLEET=path/to/qfleet (default build/qfleet, built if missing, CPU only). Creates .venv-peers
# with numpy and imitation (which brings torch) if it is missing; a peer that does not import is
# reported as such and skipped. Takes about 2 minutes per repeat on 2 idle cores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
REPEATS="${1:-5}"
OUT="${2:-results/bench-irl-peers}"
mkdir -p "$OUT"

VENV="$ROOT/.venv-peers"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
    echo "== creating $VENV (numpy, imitation)"
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet numpy imitation || echo "== pip install imitation failed (see above)"
fi
HAVE_IMITATION=1
"$PY" -c 'import imitation.algorithms.mce_irl, seals' >/dev/null 2>&1 || { HAVE_IMITATION=0; echo "== imitation does not import: skipped"; }

QFLEET="${QFLEET:-build/qfleet}"
if [ ! -x "$QFLEET" ]; then
    echo "== building $QFLEET"
    cmake -S "$ROOT" -B "$ROOT/build" -DQFLEET_CUDA=OFF -DQFLEET_MPI=OFF >/dev/null
    cmake --build "$ROOT/build" -j2 --target qfleet
fi

export OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2
for rep in $(seq 1 "$REPEATS"); do
    echo "== repeat $rep / $REPEATS ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"
    "$QFLEET" bench irl backend=cpu max_runs=1024 seconds=2 csv="$OUT/qfleet-$rep.csv" > "$OUT/qfleet-$rep.txt"
    for n in 16 32; do
        "$PY" benchmarks/peers/irl_numpy.py "$n" 64 3 > "$OUT/numpy-$n-$rep.txt"
        if [ "$HAVE_IMITATION" = 1 ]; then
            "$PY" benchmarks/peers/irl_imitation.py "$n" 64 3 > "$OUT/imitation-$n-$rep.txt" 2>/dev/null
        fi
    done
    cat /proc/loadavg > "$OUT/load-$rep.txt"
done
python3 benchmarks/peers/summarize_irl_peers.py "$OUT"
