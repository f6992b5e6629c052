#!/usr/bin/env bash
# tests/cuda_emu/ci.sh — CI's run of the CUDA backend on the CPU shim: builds it (build-emu-asan,
# build-emu-tsan, beside ./build) and runs every `gpu`-labelled test and workbench program through it:
# under AddressSanitizer + UBSan with deferred streams (QF_EMU_DEFER=1), and under ThreadSanitizer
# with immediate ("plain") streams.
# A `gpu` test that skips here is a failure: the point is that they execute. Prints each step's time.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
targets="test_gpu test_graphs_gpu test_demos_gpu test_eval_gpu test_explore_gpu test_bandits_gpu test_infer_gpu test_solve test_checkpoint test_emu adam soft_target act embed bonus"
jobs="$(nproc 2>/dev/null || echo 2)"
t0=$(date +%s)
lap() { echo "cuda_emu: $1 ($(( $(date +%s) - t0 )) s since start)"; }

build() { # build DIR CMAKE_ARGS...
  local dir="$root/$1"; shift
  cmake -S "$root" -B "$dir" -DQFLEET_CUDA_EMU=ON -DQFLEET_MPI=OFF "$@" >"$dir.configure.log" 2>&1 || {
    cat "$dir.configure.log" >&2; echo "cuda_emu: configure of $dir failed" >&2; exit 1; }
  # shellcheck disable=SC2086
  cmake --build "$dir" -j "$jobs" --target $targets >"$dir.build.log" 2>&1 || {
    tail -n 60 "$dir.build.log" >&2; echo "cuda_emu: build of $dir failed" >&2; exit 1; }
  if grep -q "warning:" "$dir.build.log"; then
    grep "warning:" "$dir.build.log" >&2; echo "cuda_emu: warnings in the build of $dir" >&2; exit 1
  fi
}
run_gpu_tests() { # run_gpu_tests DIR NAME [ctest args]: every gpu test must pass, none may skip
  local dir="$root/$1" name="$2"; shift 2
  local log="$dir.$name.log"
  if ! ctest --test-dir "$dir" -L gpu --output-on-failure --no-tests=error "$@" >"$log" 2>&1; then
    tail -n 80 "$log" >&2; echo "cuda_emu: $name failed (log: $log)" >&2; exit 1
  fi
  if grep -q "Skipped" "$log"; then
    grep "Skipped" "$log" >&2; echo "cuda_emu: $name: gpu tests skipped on the shim" >&2; exit 1
  fi
  grep -E "tests passed" "$log"
  lap "$name done"
}
# Outside the TSan build the missing-__syncthreads fault test has no detector and skips by design.
no_tsan=(-E 'EmuTest.FaultMissingSyncthreadsIsADataRace')

# Two builds, each running the suite once: ASan + UBSan with deferred streams (memory errors and
# missing synchronizations), TSan with immediate streams (races within a block; out-of-bounds writes
# through the guard zones, which ASan builds leave to ASan).
o2=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)

build build-emu-asan "${o2[@]}" -DQFLEET_SANITIZE=ON
lap "build-emu-asan built"
QF_EMU_DEFER=1 run_gpu_tests build-emu-asan asan-deferred "${no_tsan[@]}"

# TSan: libgomp and OpenBLAS threads are not instrumented (false reports): one thread each; the
# shim's block threads are what is checked.
build build-emu-tsan "${o2[@]}" -DQFLEET_TSAN=ON
lap "build-emu-tsan built"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 run_gpu_tests build-emu-tsan tsan-plain
lap "all passes done"
