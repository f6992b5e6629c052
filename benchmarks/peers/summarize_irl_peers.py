#!/usr/bin/env python3
"""summarize_irl_peers.py DIR — the table of run_irl_peers.sh: per (N, problems) the median and
spread (min-max over the repeats) of qfleet's problem-iterations/s and CPU ms per
problem-iteration, the peers' the same, and the per-problem ratios qfleet / peer, each ratio taken
within one repeat (qfleet and the peer ran minutes apart in the same repeat) and then summarized.
Standard library only."""
import csv
import glob
import os
import re
import statistics
import sys

PEER_RE = re.compile(r"([0-9.]+) problem-iterations/s, ([0-9.]+) ms per problem-iteration, ([0-9.]+) cpu ms")


def peer(path):
    try:
        m = PEER_RE.search(open(path).read())
    except OSError:
        return None
    return (float(m.group(1)), float(m.group(3))) if m else None


def spread(xs, fmt):
    if not xs:
        return "-"
    return f"{fmt(statistics.median(xs))} ({fmt(min(xs))}-{fmt(max(xs))})"


def main(d):
    reps = sorted(int(re.search(r"qfleet-(\d+)\.csv", p).group(1)) for p in glob.glob(os.path.join(d, "qfleet-*.csv")))
    rows = {}
    for rep in reps:
        for r in csv.DictReader(open(os.path.join(d, f"qfleet-{rep}.csv"))):
            key = (int(r["size"]), int(r["problems"]))
            rows.setdefault(key, {})[rep] = (float(r["problem_iterations_per_s"]), float(r["cpu_ms_per_problem_iteration"]),
                                              float(r["fraction_of_bound"]), float(r["gflop_per_s"]))
    f1 = lambda x: f"{x:.1f}"
    f2 = lambda x: f"{x:.3g}"
    print(f"repeats: {len(reps)}; median (min-max over repeats); ratios per problem, qfleet / peer, within a repeat\n")
    print("| N | problems | qfleet p-it/s | qfleet CPU ms/p-it | GFLOP/s | of bound | numpy p-it/s | imitation p-it/s "
          "| vs numpy (wall) | vs numpy (CPU time) | vs imitation (wall) | vs imitation (CPU time) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (n, R), per_rep in sorted(rows.items()):
        q = [per_rep[r][0] for r in reps if r in per_rep]
        qc = [per_rep[r][1] for r in reps if r in per_rep]
        fb = [100 * per_rep[r][2] for r in reps if r in per_rep]
        gf = [per_rep[r][3] for r in reps if r in per_rep]
        cols = [f"{n}", f"{R}", spread(q, f1), spread(qc, f2), spread(gf, f2), spread(fb, lambda x: f"{x:.2f}%")]
        peers = {}
        for name in ("numpy", "imitation"):
            peers[name] = {r: peer(os.path.join(d, f"{name}-{n}-{r}.txt")) for r in reps}
            cols.append(spread([v[0] for v in peers[name].values() if v], f1))
        for name in ("numpy", "imitation"):
            wall = [per_rep[r][0] / peers[name][r][0] for r in reps if r in per_rep and peers[name][r]]
            cpu = [peers[name][r][1] / per_rep[r][1] for r in reps if r in per_rep and peers[name][r]]
            cols.append(spread(wall, lambda x: f"{x:.1f}x"))
            cols.append(spread(cpu, lambda x: f"{x:.1f}x"))
        print("| " + " | ".join(cols) + " |")
    loads = [open(p).read().split()[:3] for p in sorted(glob.glob(os.path.join(d, "load-*.txt")))]
    print("\nload average (1, 5, 15 min) after each repeat: " + "; ".join(" ".join(x) for x in loads))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "results/bench-irl-peers"))
