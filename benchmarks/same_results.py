#!/usr/bin/env python3
"""same_results.py DIR_A DIR_B — do two results folders of one experiment hold the same numbers?

Compares runs.csv and curves.csv cell by cell, leaving out the timings (the SPS column of a wide
curves.csv, the rows whose metric is SPS in the long format of docs/results-format.md). Used by
benchmarks/gpu_check.sh to check that training with CUDA graphs (cuda_graphs=on) gives what direct
launches give (cuda_graphs=off): the same kernels in the same order, so every value must be equal.
Prints the first differences; exit 0 when equal, 1 when not, 2 on a missing or unreadable file."""
import csv
import os
import sys


def rows(path):
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    if not table:
        return []
    head = table[0]
    drop = {i for i, name in enumerate(head) if name.lower() == "sps"}
    metric = head.index("metric") if "metric" in head else -1
    out = []
    for r in table:
        if metric >= 0 and len(r) > metric and r[metric].lower() == "sps":
            continue
        out.append([c for i, c in enumerate(r) if i not in drop])
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    a, b = sys.argv[1], sys.argv[2]
    bad = 0
    for name in ("runs.csv", "curves.csv"):
        pa, pb = os.path.join(a, name), os.path.join(b, name)
        try:
            ra, rb = rows(pa), rows(pb)
        except OSError as e:
            print(f"same_results: {e}", file=sys.stderr)
            return 2
        if len(ra) != len(rb):
            print(f"{name}: {len(ra)} rows in {a}, {len(rb)} in {b}")
            bad += 1
        shown = 0
        for i, (x, y) in enumerate(zip(ra, rb)):
            if x != y and shown < 5:
                print(f"{name} line {i + 1}:\n  {','.join(x)}\n  {','.join(y)}")
                shown += 1
                bad += 1
        print(f"{name}: {len(ra)} rows compared, {'equal' if not shown else 'DIFFERENT'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
