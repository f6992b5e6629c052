#!/usr/bin/env bash
# gpu_check.sh REPORT_DIR — the one-call GPU check (see docs/gpu-check.md). On a GPU machine, in a
# few minutes: prints the device, builds for the native architecture, runs the whole test suite
# (the `gpu`-labelled tests included), runs compute-sanitizer (memcheck, racecheck) over the env
# benchmark and over a short training run, checks the CUDA-graph path (the same training with
# cuda_graphs=on and off must give the same numbers; their times; memcheck over the graph test),
# runs the benchmarks (`bench envs` on the GPU and the CPU, `bench train` with graphs off and on), every version of the kernel workbench (benchmarks/dev/), a 64-run CartPole fleet and
# the learning tests, and writes report.md, the CSVs and
# logs.tgz (every log) into REPORT_DIR. Every step runs even when an earlier one failed, within a time
# budget (GPU_CHECK_BUDGET, default 540 s: the device tool's 600 s per command, less packing); the
# exit code is non-zero when any step failed.
#
# On the device tool:  run(command="bash benchmarks/gpu_check.sh $OUT", carry=[".gpu-deps"])
# after ./benchmarks/gpu_prepare.sh here (the GPU machine has no apt and no network).
set -u
report="${1:?usage: gpu_check.sh REPORT_DIR}"
raw="$report/raw"   # logs and results; packed into logs.tgz at the end (the device tool returns <= 8 files)
mkdir -p "$raw"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="$root/build-gpu"
md="$report/report.md"
failed=0
export PATH="/usr/local/cuda/bin:$PATH"

# The device tool stops a command after 600 s and then returns at most a few files: every step gets
# what is left of GPU_CHECK_BUDGET (default 540 s, leaving time to write the report and pack the
# logs), and once it is spent the remaining steps are listed as skipped. The steps run most
# informative first.
t_start=$(date +%s)
budget="${GPU_CHECK_BUDGET:-540}"
step() { # step NAME LOGFILE COMMAND... : run, record pass/fail and the time in the report
  local name="$1" log="$2"; shift 2
  local t0=$(date +%s)
  local left=$(( budget - (t0 - t_start) ))
  if [ "$left" -le 5 ]; then
    echo "| $name | skipped: the ${budget} s budget was spent | | |" >>"$md"
    return 0
  fi
  echo "== $name: $*" | tee -a "$raw/steps.log"
  if timeout "$left" "$@" >"$raw/$log" 2>&1; then st=pass; else
    rc=$?; failed=1
    if [ "$rc" = 124 ]; then st="FAIL (stopped at the budget, ${left} s)"; else st="FAIL (exit $rc)"; fi
  fi
  echo "| $name | $st | $(( $(date +%s) - t0 )) s | $log |" >>"$md"
  tail -n 5 "$raw/$log" | tee -a "$raw/steps.log"
}

{
  echo "# qfleet GPU check — $(date -u +%F' '%T) UTC"
  echo
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo
  echo '```'
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1
  nvcc --version 2>&1 | tail -n 2
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
  echo '```'
  echo
  echo "| step | result | time | log |"
  echo "| --- | --- | --- | --- |"
} >"$md"

deps=()
[ -d .gpu-deps/include/Random123 ] && deps+=("-DRANDOM123_INCLUDE_DIR=$root/.gpu-deps/include")
[ -d .gpu-deps/googletest ] && deps+=("-DQFLEET_GTEST_SOURCE=$root/.gpu-deps/googletest")
if [ -d .gpu-deps/openblas ]; then
  deps+=("-DCBLAS_INCLUDE_DIR=$root/.gpu-deps/openblas/include"
         "-DOPENBLAS_LIBRARY=$root/.gpu-deps/openblas/lib/libopenblas.so")
  export LD_LIBRARY_PATH="$root/.gpu-deps/openblas/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

step configure configure.log cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES=native "${deps[@]}"
step build build.log cmake --build "$build" -j "$(nproc)"
step gpu-tests gpu_tests.log ctest --test-dir "$build" -L gpu --output-on-failure
# CUDA graphs (docs/cuda-graphs.md): one training with a graph replay per iteration, one with direct
# launches; every number but SPS must be equal, and the two step times say what the graphs save
graphs_train="train backend=cuda env=deep_sea env.size=10 runs=256 envs=4 steps=3000 learning_starts=256 batch=64
  hidden=[64] target_every=50 eps_steps=2000 log_every=500"
step graphs-train-on graphs_train_on.log "$build/qfleet" $graphs_train cuda_graphs=on out="$raw/graphs_on"
step graphs-train-off graphs_train_off.log "$build/qfleet" $graphs_train cuda_graphs=off out="$raw/graphs_off"
step graphs-same graphs_same.log python3 benchmarks/same_results.py "$raw/graphs_on" "$raw/graphs_off"
# kernel workbench (benchmarks/dev/): every version of every program, checked against its CPU
# reference and timed (seconds each, so early); a log per version, appended to the report
for op in adam soft_target act embed bonus; do
  case $op in act) versions="1 2";; *) versions="1 2 3";; esac
  for v in $versions; do
    step "dev-$op-$v" "dev_$op.$v.log" "$build/benchmarks/dev/$op" "$v"
  done
done

step bench-gpu bench_envs_gpu.log "$build/qfleet" bench envs backend=cuda seconds=0.5 \
  max_envs=16777216 csv="$report/bench_envs_gpu.csv"
step bench-train-gpu bench_train_gpu.log "$build/qfleet" bench train backend=cuda env=deep_sea env.size=20 seconds=1
step bench-explore-gpu bench_explore_gpu.log "$build/qfleet" bench explore backend=cuda env=deep_sea env.size=20 \
  hidden=[50,50] seconds=1
step train-gpu train_gpu.log "$build/qfleet" train backend=cuda env=cartpole runs=64 steps=20000 alpha=2 \
  loss=squared lr=0.0005 batch=128 target_every=250 eps_steps=10000 eps_end=0.01 log_every=5000 out="$raw/train_gpu"
step compare-gpu compare_gpu.log "$build/qfleet" compare backend=cuda out="$raw/compare_gpu"
san="$(command -v compute-sanitizer || ls /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null || true)"
if [ -n "$san" ]; then
  small="bench envs backend=cuda max_envs=16384 seconds=0.02"
  step memcheck memcheck.log "$san" --tool memcheck --error-exitcode 3 "$build/qfleet" $small
  step racecheck racecheck.log "$san" --tool racecheck --error-exitcode 3 "$build/qfleet" $small
  step memcheck-tests memcheck_tests.log "$san" --tool memcheck --error-exitcode 3 "$build/tests/test_gpu"
  step memcheck-graphs memcheck_graphs.log "$san" --tool memcheck --error-exitcode 3 "$build/tests/test_graphs_gpu"
  step memcheck-explore memcheck_explore.log "$san" --tool memcheck --error-exitcode 3 "$build/tests/test_explore_gpu"
  step racecheck-explore racecheck_explore.log "$san" --tool racecheck --error-exitcode 3 "$build/tests/test_explore_gpu"
  short_compare="compare backend=cuda sizes=4 episodes=40 seeds=2 out=$raw/san_compare"
  step memcheck-compare memcheck_compare.log "$san" --tool memcheck --error-exitcode 3 "$build/qfleet" $short_compare
  short_train="train backend=cuda env=deep_sea runs=8 envs=4 steps=300 learning_starts=64 batch=32 log_every=100 out=$raw/san_train"
  step memcheck-train memcheck_train.log "$san" --tool memcheck --error-exitcode 3 "$build/qfleet" $short_train
  step racecheck-train racecheck_train.log "$san" --tool racecheck --error-exitcode 3 "$build/qfleet" $short_train
  short_train_graphs="train backend=cuda env=deep_sea runs=8 envs=4 steps=300 learning_starts=64 batch=32 log_every=100 cuda_graphs=on out=$raw/san_train_graphs"
  step memcheck-train-graphs memcheck_train_graphs.log "$san" --tool memcheck --error-exitcode 3 "$build/qfleet" $short_train_graphs
else
  echo "| compute-sanitizer | not found | | |" >>"$md"
fi

step all-tests all_tests.log ctest --test-dir "$build" --output-on-failure -LE slow
step learning-gpu learning_gpu.log ctest --test-dir "$build" -L slow --output-on-failure
step bench-cpu bench_envs_cpu.log "$build/qfleet" bench envs backend=cpu seconds=0.3 \
  csv="$report/bench_envs_cpu.csv"
# Peers on the GPU: only where jax with CUDA is importable in .venv-rejax (the device machine has no
# network, and the CUDA wheels are far over what the device tool carries), else said in the report.
if [ -x .venv-rejax/bin/python ] && .venv-rejax/bin/python -c 'import jax, sys; sys.exit(jax.devices()[0].platform != "gpu")' 2>/dev/null; then
  step peers-train-gpu peers_train_gpu.log env QFLEET="$build/qfleet" QFLEET_BACKEND=cuda \
    bash benchmarks/peers/run_train_peers.sh 10000 3 "1 64 1024"
else
  echo "| peers-train-gpu | skipped: no jax with CUDA in .venv-rejax on this machine | | |" >>"$md"
fi
step compare-gpu-large compare_gpu_large.log "$build/qfleet" compare backend=cuda sizes=10,20,30 episodes=3000 \
  seeds=20 out="$raw/compare_gpu_large"

{
  echo
  echo "## qfleet bench envs (GPU)"
  echo '```'
  cat "$raw/bench_envs_gpu.log" 2>/dev/null
  echo '```'
  echo "## qfleet bench envs (CPU of the same machine)"
  echo '```'
  cat "$raw/bench_envs_cpu.log" 2>/dev/null
  echo '```'
  echo "## qfleet bench train (GPU, DeepSea-20; each size with CUDA graphs off and on)"
  echo '```'
  cat "$raw/bench_train_gpu.log" 2>/dev/null
  echo '```'
  echo "## CUDA graphs: the same training with cuda_graphs=on and off (step times in the table above)"
  echo '```'
  cat "$raw/graphs_same.log" 2>/dev/null
  tail -n 3 "$raw/graphs_train_on.log" "$raw/graphs_train_off.log" 2>/dev/null
  echo '```'
  echo "## qfleet bench explore (GPU, DeepSea-20, MLP 50-50)"
  echo '```'
  cat "$raw/bench_explore_gpu.log" 2>/dev/null
  echo '```'
  if [ -f "$raw/peers_train_gpu.log" ]; then
    echo "## Fleet training against rejax and the PureJaxRL-style DQN (GPU)"
    cat "$raw/peers_train_gpu.log"
  fi
  echo "## qfleet compare (GPU: the main job, then sizes 10, 20, 30 with 20 seeds)"
  echo '```'
  cat "$raw/compare_gpu.log" "$raw/compare_gpu_large.log" 2>/dev/null
  echo '```'
  echo "## kernel workbench (benchmarks/dev: each version checked against the CPU reference, then timed)"
  echo '```'
  for f in "$raw"/dev_*.log; do [ -f "$f" ] && { echo "--- $(basename "$f")"; cat "$f"; }; done
  echo '```'
} >>"$md"
tar czf "$report/logs.tgz" -C "$report" raw && rm -rf "$raw"
echo "report: $md (logs: $report/logs.tgz)"
exit $failed
