#!/usr/bin/env bash
# run_bdqn_peers.sh [STEPS] [REPEATS] [RUNS_LIST] — qfleet's bootstrapped ensemble (explore=bootstrap)
# against a vmapped JAX bootstrapped DQN written for this benchmark (jax_bdqn.py), same machine,
# interleaved repeats (qfleet, jax, qfleet, jax, ...), issue 14's Speed target (qfleet >= 3x at 16
# and 64 runs). Both sides: DeepSea-20 with the dense 400-float one-hot observation, K = 10 heads
# with randomized priors (prior_scale 3), bootstrap masks with mask_p = MASK_P (default 1, qfleet's
# default), MLP 50-50 (ReLU), batch 128 shared by the heads, replay 10000, learning_starts 2048, one
# update per env step, double DQN, Polyak target 0.99/step, Huber loss (1), gradient norm clipped at
# 10 per head, Adam 3e-4, one env per run, one head per episode followed greedily; RUNS seeds as one
# vmapped jitted call (jax) or one fleet (qfleet), for each RUNS in RUNS_LIST (default "16 64"). The
# jax side's compilation is not timed (its script times calls after the first); qfleet's whole
# process is (start-up included). Prints a markdown table of medians, the ratio of medians and the
# range of the per-repeat ratios (repeat i's jax time / repeat i's qfleet time).
# Needs .venv-rejax (created here as run_train_peers.sh does: gymnax 0.0.9 and rejax, which bring
# jax, flax and optax).
#
#   HEADS=10                K (both sides)
#   MASK_P=1                the bootstrap mask probability (both sides)
#   QFLEET_BACKEND=cuda     qfleet's backend (default cpu)
#   QFLEET=path/to/qfleet   the qfleet binary (default build/qfleet)
#
# Example: bash benchmarks/peers/run_bdqn_peers.sh 3000 3 "16 64"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
steps="${1:-3000}"
repeats="${2:-3}"
runs_list="${3:-16 64}"
heads="${HEADS:-10}"
mask_p="${MASK_P:-1}"
. "$ROOT/benchmarks/peers/jax_peer_setup.sh"
# one timed repeat of the jax peer (a fresh process: compile, then one timed call); its seconds
jax_peer() {
  local runs="$1" out
  if ! out="$("$venv/bin/python" "$ROOT/benchmarks/peers/jax_bdqn.py" "$runs" "$steps" 1 --size 20 --heads "$heads" \
    --mask-p "$mask_p" 2>"$tmp/err")"; then
    echo "jax_bdqn.py $runs $steps failed:" >&2
    tail -5 "$tmp/err" >&2
    exit 1
  fi
  awk 'NF == 4 {print $4}' <<<"$out"
}
# one timed qfleet train process; its seconds
qfleet_train() {
  local runs="$1" t0 t1
  rm -rf "$tmp/out"  # the previous repeat's results folder (qfleet refuses to overwrite one)
  t0=$(date +%s.%N)
  if ! "$qfleet" train backend="${QFLEET_BACKEND:-cpu}" env=deep_sea env.size=20 obs=dense explore=bootstrap \
    heads="$heads" prior_scale=3 mask_p="$mask_p" runs="$runs" steps="$steps" hidden="[50,50]" batch=128 \
    buffer=10000 learning_starts=2048 tau=0.01 double_q=1 lr=0.0003 loss=huber huber=1 max_grad_norm=10 \
    log_every="$steps" out="$tmp/out" >"$tmp/qlog" 2>&1; then
    echo "qfleet train failed:" >&2
    tail -5 "$tmp/qlog" >&2
    exit 1
  fi
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
echo "qfleet: $qfleet; DeepSea-20 obs=dense; K=$heads heads, prior_scale 3, mask_p $mask_p; steps per run $steps;" \
  "$repeats interleaved repeats; medians; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "| runs | steps per run | K | qfleet s | jax s | qfleet env-steps/s | jax env-steps/s | jax / qfleet (medians) | per-repeat ratios min-max |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for runs in $runs_list; do
  : >"$tmp/q"
  : >"$tmp/j"
  for rep in $(seq "$repeats"); do
    qfleet_train "$runs" >>"$tmp/q"
    jax_peer "$runs" >>"$tmp/j"
    echo "runs $runs repeat $rep: qfleet $(tail -1 "$tmp/q") s, jax $(tail -1 "$tmp/j") s (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  done
  q=$(median <"$tmp/q")
  j=$(median <"$tmp/j")
  ratios=$(paste "$tmp/q" "$tmp/j" | awk '{print $2 / $1}' | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2fx-%.2fx", lo, hi}')
  awk -v n="$runs" -v s="$steps" -v k="$heads" -v q="$q" -v j="$j" -v rr="$ratios" 'BEGIN {
    printf "| %d | %d | %d | %.2f | %.2f | %.3g | %.3g | %.2fx | %s |\n", n, s, k, q, j, n * s / q, n * s / j, j / q, rr }'
done
