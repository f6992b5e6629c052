#!/usr/bin/env bash
# run_train_peers.sh [STEPS] [REPEATS] — fleet training against rejax's DQN (jax on this machine's
# default device), same machine, one run, interleaved repeats: CartPole-v1, MLP 64-64 (ReLU), batch
# 128, replay 10000, one env per run, one update per env step, Polyak target 0.99/step, double DQN,
# Adam 3e-4, 2048 warm-up steps, epsilon 1 -> 0.05 over the first 10% of steps; RUNS seeds as one
# vmapped call (rejax) or one fleet (qfleet). rejax's compilation is not timed; qfleet's whole
# process is. Prints a markdown table of medians and ratios. Needs .venv-rejax (created here:
# rejax with gymnax 0.0.9, the gymnax API rejax 0.1.3 was written for).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
steps="${1:-10000}"
repeats="${2:-3}"
venv="$ROOT/.venv-rejax"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "gymnax==0.0.9" rejax
fi
qfleet="$ROOT/build/qfleet"
[ -x "$qfleet" ] || { echo "build qfleet first (./test.sh or ./run.sh)" >&2; exit 1; }
export GOMP_SPINCOUNT="${GOMP_SPINCOUNT:-3000}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "| runs | steps per run | qfleet s | rejax s | qfleet env-steps/s | rejax env-steps/s | qfleet / rejax |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for runs in 1 16 64; do
  : >"$tmp/q"
  : >"$tmp/r"
  for rep in $(seq "$repeats"); do
    t0=$(date +%s.%N)
    "$qfleet" train backend=cpu env=cartpole runs="$runs" steps="$steps" hidden=[64,64] batch=128 buffer=10000 \
      learning_starts=2048 tau=0.01 double_q=1 lr=0.0003 eps_steps=$((steps / 10)) log_every="$steps" \
      out="$tmp/out" >/dev/null 2>&1
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l >>"$tmp/q"
    "$venv/bin/python" "$ROOT/benchmarks/peers/rejax_dqn.py" "$runs" "$steps" 1 2>/dev/null | awk '{print $4}' >>"$tmp/r"
  done
  q=$(median <"$tmp/q")
  r=$(median <"$tmp/r")
  awk -v n="$runs" -v s="$steps" -v q="$q" -v r="$r" 'BEGIN {
    printf "| %d | %d | %.2f | %.2f | %.3g | %.3g | %.2fx |\n", n, s, q, r, n * s / q, n * s / r, r / q }'
done
