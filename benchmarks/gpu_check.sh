#!/usr/bin/env bash
# gpu_check.sh REPORT_DIR — the one-call GPU check (see docs/gpu-check.md). On a GPU machine, in a
# few minutes: prints the device, builds for the native architecture, runs the whole test suite
# (the `gpu`-labelled tests included), runs compute-sanitizer (memcheck, racecheck) over the env
# benchmark, runs `qfleet bench envs` on the GPU and on the CPU, and writes report.md plus the raw
# logs and CSVs into REPORT_DIR. Every step runs even when an earlier one failed; the exit code is
# non-zero when any step failed.
#
# On the device tool:  run(command="bash benchmarks/gpu_check.sh $OUT", carry=[".gpu-deps"])
# after ./benchmarks/gpu_prepare.sh here (the GPU machine has no apt and no network).
set -u
report="${1:?usage: gpu_check.sh REPORT_DIR}"
mkdir -p "$report"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="$root/build-gpu"
md="$report/report.md"
failed=0
export PATH="/usr/local/cuda/bin:$PATH"

step() { # step NAME LOGFILE COMMAND... : run, record pass/fail and the time in the report
  local name="$1" log="$2"; shift 2
  local t0=$(date +%s)
  echo "== $name: $*" | tee -a "$report/steps.log"
  if "$@" >"$report/$log" 2>&1; then st=pass; else st="FAIL (exit $?)"; failed=1; fi
  echo "| $name | $st | $(( $(date +%s) - t0 )) s | $log |" >>"$md"
  tail -n 5 "$report/$log" | tee -a "$report/steps.log"
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

step configure configure.log cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES=native "${deps[@]}"
step build build.log cmake --build "$build" -j "$(nproc)"
step gpu-tests gpu_tests.log ctest --test-dir "$build" -L gpu --output-on-failure
step all-tests all_tests.log ctest --test-dir "$build" --output-on-failure -j 8

san="$(command -v compute-sanitizer || ls /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null || true)"
if [ -n "$san" ]; then
  small="bench envs backend=cuda max_envs=16384 seconds=0.02"
  step memcheck memcheck.log "$san" --tool memcheck --error-exitcode 3 "$build/qfleet" $small
  step racecheck racecheck.log "$san" --tool racecheck --error-exitcode 3 "$build/qfleet" $small
  step memcheck-tests memcheck_tests.log "$san" --tool memcheck --error-exitcode 3 "$build/tests/test_gpu"
else
  echo "| compute-sanitizer | not found | | |" >>"$md"
fi

step bench-gpu bench_envs_gpu.log "$build/qfleet" bench envs backend=cuda seconds=0.5 \
  max_envs=16777216 csv="$report/bench_envs_gpu.csv"
step bench-cpu bench_envs_cpu.log "$build/qfleet" bench envs backend=cpu seconds=0.3 \
  csv="$report/bench_envs_cpu.csv"

{
  echo
  echo "## qfleet bench envs (GPU)"
  echo '```'
  cat "$report/bench_envs_gpu.log" 2>/dev/null
  echo '```'
  echo "## qfleet bench envs (CPU of the same machine)"
  echo '```'
  cat "$report/bench_envs_cpu.log" 2>/dev/null
  echo '```'
} >>"$md"
echo "report: $md"
exit $failed
