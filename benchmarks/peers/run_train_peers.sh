#!/usr/bin/env bash
# run_train_peers.sh [STEPS] [REPEATS] [RUNS_LIST] — fleet training against rejax's DQN and a
# PureJaxRL-style DQN (purejaxrl_dqn.py; both jax on this machine's default device), same machine,
# interleaved repeats (qfleet, rejax, purejaxrl, qfleet, ...): CartPole-v1, MLP 64-64 (ReLU), batch
# 128, replay 10000, one env per run, one update per env step, Polyak target 0.99/step, double DQN,
# Adam 3e-4, 2048 warm-up steps, epsilon 1 -> 0.05 over the first 10% of steps; RUNS seeds as one
# vmapped call (rejax, purejaxrl) or one fleet (qfleet), for each RUNS in RUNS_LIST (default
# "1 16 64"). The jax sides' compilation is not timed; qfleet's whole process is. Prints a markdown
# table of medians and ratios. Needs .venv-rejax (created here: rejax with gymnax 0.0.9, the gymnax
# API rejax 0.1.3 was written for; purejaxrl_dqn.py uses the same venv).
#
#   QFLEET_BACKEND=cuda     qfleet's backend (default cpu; the GPU check sets cuda)
#   PEER_ENV=deep_sea       DeepSea-20 instead of CartPole-v1 (default cartpole): qfleet's deep_sea with
#                           env.size=20 obs=dense (the 400-float one-hot, as gymnax's), MLP 50-50
#                           (bsuite's) on all three, the jax peers with --env DeepSea-bsuite (gymnax
#                           0.0.9, size 20); every other setting as above
#   PEER_BOOTSTRAP=0        with PEER_ENV=deep_sea: leave out the qfleet explore=bootstrap column (10
#                           heads with randomized priors, the issue's GPU target configuration; default 1)
#   QFLEET=path/to/qfleet   the qfleet binary (default build/qfleet; relative paths are taken from
#                           the current directory, else from the repository root)
#
# Example: bash benchmarks/peers/run_train_peers.sh 10000 3 "1 16 64"
#          PEER_ENV=deep_sea bash benchmarks/peers/run_train_peers.sh 5000 3 "1 16"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
steps="${1:-10000}"
repeats="${2:-3}"
runs_list="${3:-1 16 64}"
peer_env="${PEER_ENV:-cartpole}"
case "$peer_env" in
  cartpole)
    q_env=(env=cartpole)
    hidden="[64,64]"
    jax_env=()
    boot=0
    ;;
  deep_sea)
    q_env=(env=deep_sea env.size=20 obs=dense)
    hidden="[50,50]"
    jax_env=(--env DeepSea-bsuite)
    boot="${PEER_BOOTSTRAP:-1}"
    ;;
  *) echo "PEER_ENV: cartpole or deep_sea, not $peer_env" >&2; exit 1 ;;
esac
. "$ROOT/benchmarks/peers/jax_peer_setup.sh"
# one timed repeat of a jax peer script; its seconds, or a failure message and exit
jax_peer() {
  local script="$1" runs="$2" out
  if ! out="$("$venv/bin/python" "$ROOT/benchmarks/peers/$script" "$runs" "$steps" 1 ${jax_env[@]+"${jax_env[@]}"} 2>"$tmp/err")"; then
    echo "$script $runs $steps failed:" >&2
    tail -5 "$tmp/err" >&2
    exit 1
  fi
  awk 'NF == 4 {print $4}' <<<"$out"
}
# one timed qfleet train process with the comparison's settings plus "$@"; its seconds
qfleet_train() {
  local runs="$1" t0 t1
  shift
  rm -rf "$tmp/out"  # qfleet refuses to write over a previous repeat's results folder
  t0=$(date +%s.%N)
  if ! "$qfleet" train backend="${QFLEET_BACKEND:-cpu}" "${q_env[@]}" runs="$runs" steps="$steps" hidden="$hidden" batch=128 buffer=10000 \
    learning_starts=2048 tau=0.01 double_q=1 lr=0.0003 log_every="$steps" \
    out="$tmp/out" "$@" >"$tmp/qlog" 2>&1; then
    echo "qfleet train failed:" >&2
    tail -5 "$tmp/qlog" >&2
    exit 1
  fi
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
echo "qfleet: $qfleet; env $peer_env; steps per run $steps; $repeats interleaved repeats; medians" >&2
if [ "$boot" = 1 ]; then
  echo "| runs | steps per run | qfleet s | qfleet bootstrap s | rejax s | purejaxrl s | qfleet env-steps/s | qfleet bootstrap env-steps/s | rejax env-steps/s | purejaxrl env-steps/s | qfleet / rejax | qfleet / purejaxrl | qfleet bootstrap / rejax | qfleet bootstrap / purejaxrl |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
else
  echo "| runs | steps per run | qfleet s | rejax s | purejaxrl s | qfleet env-steps/s | rejax env-steps/s | purejaxrl env-steps/s | qfleet / rejax | qfleet / purejaxrl |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
fi
for runs in $runs_list; do
  : >"$tmp/q"
  : >"$tmp/r"
  : >"$tmp/p"
  : >"$tmp/b"
  for rep in $(seq "$repeats"); do
    qfleet_train "$runs" eps_steps=$((steps / 10)) >>"$tmp/q"  # (bootstrap acts without epsilon: no eps_steps)
    [ "$boot" = 1 ] && qfleet_train "$runs" explore=bootstrap >>"$tmp/b"
    jax_peer rejax_dqn.py "$runs" >>"$tmp/r"
    jax_peer purejaxrl_dqn.py "$runs" >>"$tmp/p"
  done
  q=$(median <"$tmp/q")
  r=$(median <"$tmp/r")
  p=$(median <"$tmp/p")
  if [ "$boot" = 1 ]; then
    b=$(median <"$tmp/b")
    awk -v n="$runs" -v s="$steps" -v q="$q" -v b="$b" -v r="$r" -v p="$p" 'BEGIN {
      printf "| %d | %d | %.2f | %.2f | %.2f | %.2f | %.3g | %.3g | %.3g | %.3g | %.2fx | %.2fx | %.2fx | %.2fx |\n",
        n, s, q, b, r, p, n * s / q, n * s / b, n * s / r, n * s / p, r / q, p / q, r / b, p / b }'
  else
    awk -v n="$runs" -v s="$steps" -v q="$q" -v r="$r" -v p="$p" 'BEGIN {
      printf "| %d | %d | %.2f | %.2f | %.2f | %.3g | %.3g | %.3g | %.2fx | %.2fx |\n",
        n, s, q, r, p, n * s / q, n * s / r, n * s / p, r / q, p / q }'
  fi
done
