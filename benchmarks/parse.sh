#!/usr/bin/env bash
# parse.sh [QFLEET] — how long qfleet takes to read large configurations (a benchmark line, not a
# test: the numbers depend on the machine and its load). Parsing is linear in the number of words:
#   1. a YAML file of 100k distinct keys (read whole, each key checked against the file's earlier
#      keys, then refused at the first unknown key: exit 2)
#   2. a YAML file of 100k keys whose last repeats the first (refused as a repeated key: exit 2)
#   3. `qfleet train` with 60k key=value words on the command line (a later word overrides an
#      earlier one; one training step)
#   4. `qfleet sweep --dry-run` with the same 60k words plus a 3-value axis
# Before the linear rewrite (issue 11) case 1 took about 10 minutes (20k keys: 24 s).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
Q="${1:-$ROOT/build/qfleet}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import sys
d = sys.argv[1]
with open(d + "/distinct.yaml", "w") as f:
    f.writelines("key_%06d: %d\n" % (i, i) for i in range(100000))
with open(d + "/repeat.yaml", "w") as f:
    f.writelines("key_%06d: %d\n" % (i, i) for i in range(99999))
    f.write("key_000000: 0\n")
keys = ["lr=0.00%d" % (1 + i % 9) for i in range(30000)] + ["gamma=0.9%d" % (i % 10) for i in range(30000)]
open(d + "/words.txt", "w").write("\n".join(keys) + "\n")
PY
mapfile -t words <"$tmp/words.txt"
now() { date +%s.%N; }
run() { # label, expected exit code, command...
  local label="$1" want="$2"; shift 2
  local t0 rc=0; t0="$(now)"
  "$@" >"$tmp/out" 2>&1 || rc=$?
  local t1; t1="$(now)"
  printf '%-58s %8.3f s  (exit %d%s)\n' "$label" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$rc" \
    "$([ "$rc" = "$want" ] && echo "" || echo ", expected $want: $(tail -c 200 "$tmp/out")")"
}
echo "qfleet parse benchmark: $(nproc) cores, $Q"
run "YAML, 100k distinct keys (refused: unknown key)" 2 "$Q" train "$tmp/distinct.yaml"
run "YAML, 100k keys, the last repeats the first (refused)" 2 "$Q" train "$tmp/repeat.yaml"
run "train, 60k command-line words, 1 step" 0 "$Q" train backend=cpu steps=1 out="$tmp/t" "${words[@]}"
run "sweep --dry-run, 60k command-line words + a 3-value axis" 0 "$Q" sweep --dry-run backend=cpu steps=10 \
  "${words[@]}" hidden=[8],[16],[32]
