#!/usr/bin/env bash
# fuzz.sh [SECONDS] — build the configuration fuzz target (tests/fuzz/fuzz_config.c) with clang's
# libFuzzer, ASan and UBSan into build-fuzz/, and run it for SECONDS (default 60) over a copy of the
# corpus in tests/fuzz/corpus. Exit status non-zero when it finds a crash (the input is saved in
# build-fuzz/ as crash-*; add it to the corpus once fixed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${1:-60}"
if ! command -v clang >/dev/null 2>&1; then
  echo "qfleet fuzz: installing clang" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang >/dev/null
fi
out="$ROOT/build-fuzz"
mkdir -p "$out/corpus"
cp "$ROOT"/tests/fuzz/corpus/* "$out/corpus/"
clang -std=c11 -O1 -g -Wall -Wextra -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -DQFLEET_HAVE_YAML=1 -I"$ROOT" \
  "$ROOT/tests/fuzz/fuzz_config.c" "$ROOT/host/config.c" "$ROOT/host/words.c" "$ROOT/host/expr.c" "$ROOT/envs/spec.c" \
  -lyaml -lm -o "$out/fuzz_config"
cd "$out"
./fuzz_config -max_total_time="$secs" -max_len=4096 -timeout=10 -print_final_stats=1 corpus 2>&1 | tail -n 12
