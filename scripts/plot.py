#!/usr/bin/env python3
"""plot.py RESULTS_DIR [...] — plots of a qfleet results folder, written next to its CSV files.

- a sweep folder (curves.csv in long format: run,name,step,env_steps,metric,value):
  learning_curves.png — episodic return against env steps, one line per point (runs that differ
  only in their seed), mean with a 95% confidence band over seeds; regret.png when regret is known.
- a comparison folder (`qfleet compare`: curves.csv with size,strategy,seed,...; runs.csv):
  regret.png — cumulative regret against episodes per strategy, one panel per DeepSea size, mean
  with a 95% band over seeds; scaling.png — median episodes to solve against N per strategy (log
  scale), unsolved medians marked at the top, with 2^N + 100 (bsuite's deadline) dashed.

- an inference folder (`qfleet infer`: visitation.csv): visitation.png — expected visits
  sum_t p(s_t | O) of run 0 as a heat map, variational and inference backup side by side.
- an IRL folder (`qfleet irl`: curves.csv with run,iter,metric,value): irl_curves.png — demo
  log-likelihood, feature gap and regret against iterations, one line per run (at most 16);
  reward_map.png (gridworld) — true and learned reward of run 0 per cell.

Needs matplotlib (pip install matplotlib); the standard library does the rest.
"""
import csv
import math
import os
import re
import sys
from collections import defaultdict


def band(rows):
    """rows: list of equal-length lists (one per seed) -> mean, half-width of a 95% normal band."""
    n = len(rows)
    means, half = [], []
    for vals in zip(*rows):
        vals = [v for v in vals if v == v]
        if not vals:
            means.append(float("nan"))
            half.append(0.0)
            continue
        m = sum(vals) / len(vals)
        sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
        means.append(m)
        half.append(1.96 * sd / math.sqrt(len(vals)))
    return means, half, n


def num(s):
    try:
        return float(s)
    except ValueError:
        return float("nan")


def plot_sweep(d, plt):
    series = defaultdict(lambda: defaultdict(dict))  # metric -> point name -> {run: [(step, v)]}
    with open(os.path.join(d, "curves.csv")) as f:
        for r in csv.DictReader(f):
            point = re.sub(r"__seed\d+$", "", r["name"])
            series[r["metric"]][point].setdefault(r["run"], []).append((int(r["env_steps"]), num(r["value"])))
    made = []
    for metric, fname, ylabel in (("episodic_return", "learning_curves.png", "episodic return"),
                                  ("regret", "regret.png", "cumulative regret")):
        if metric not in series:
            continue
        fig, ax = plt.subplots(figsize=(8, 5))
        for point, runs in sorted(series[metric].items()):
            curves = [sorted(v) for v in runs.values()]
            n = min(len(c) for c in curves)
            xs = [p[0] for p in curves[0][:n]]
            m, h, k = band([[p[1] for p in c[:n]] for c in curves])
            ax.plot(xs, m, label=f"{point} ({k} seeds)")
            ax.fill_between(xs, [a - b for a, b in zip(m, h)], [a + b for a, b in zip(m, h)], alpha=0.2)
        ax.set_xlabel("env steps per run")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(d, fname), dpi=120)
        plt.close(fig)
        made.append(fname)
    return made


def median(v):
    v = sorted(v)
    return v[(len(v) - 1) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])


def scaling_plot(d, plt, solve, title):
    """solve: strategy -> size -> [episodes to solve, inf when unsolved]; writes scaling.png."""
    fig, ax = plt.subplots(figsize=(7, 5))
    ymax = 1.0
    for strat, by_size in sorted(solve.items()):
        xs, ys, xu = [], [], []
        for n in sorted(by_size):
            med = median(by_size[n])
            if math.isinf(med):
                xu.append(n)
            else:
                xs.append(n)
                ys.append(med)
                ymax = max(ymax, med)
        line, = ax.plot(xs, ys, marker="o", label=strat)
        for n in xu:
            ax.annotate("x", (n, 1), xycoords=("data", "axes fraction"), color=line.get_color(), ha="center", va="top")
    ns = sorted({n for s in solve.values() for n in s})
    ax.plot(ns, [2 ** n + 100 for n in ns], "--", color="gray", label="2^N + 100")
    ax.set_yscale("log")
    ax.set_ylim(1, max(ymax * 10, 10))
    ax.set_xlabel("DeepSea size N")
    ax.set_ylabel("median episodes to solve (x: median seed unsolved)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(d, "scaling.png"), dpi=120)
    plt.close(fig)


def sweep_scaling(d, plt):
    """A DeepSea sweep over env.size: episodes to solve per strategy (bsuite's criterion)."""
    path = os.path.join(d, "runs.csv")
    if not os.path.exists(path):
        return []
    solve = defaultdict(lambda: defaultdict(list))
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows or "env.size" not in rows[0] or "deep_sea" not in rows[0]["name"]:
        return []
    for r in rows:
        n = int(float(r["env.size"]))
        e = num(r["episodes_to_solve"])
        ok = r["status"] == "finished" and e == e and e <= 2 ** n + 100
        strat = re.sub(r"__env\.size=[^_]*", "", re.sub(r"__seed\d+$", "", r["name"]))
        solve[strat][n].append(e if ok else float("inf"))
    scaling_plot(d, plt, solve, "DeepSea scaling (sweep)")
    return ["scaling.png"]


def plot_compare(d, plt):
    curves = defaultdict(lambda: defaultdict(dict))  # size -> strategy -> seed -> [(episodes, regret)]
    with open(os.path.join(d, "curves.csv")) as f:
        for r in csv.DictReader(f):
            curves[int(r["size"])][r["strategy"]].setdefault(r["seed"], []).append((int(r["episodes"]), num(r["regret"])))
    sizes = sorted(curves)
    fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 4), squeeze=False)
    for ax, n in zip(axes[0], sizes):
        for strat, seeds in curves[n].items():
            cs = [sorted(v) for v in seeds.values()]
            k = min(len(c) for c in cs)
            xs = [p[0] for p in cs[0][:k]]
            m, h, _ = band([[p[1] for p in c[:k]] for c in cs])
            ax.plot(xs, m, label=strat)
            ax.fill_between(xs, [a - b for a, b in zip(m, h)], [a + b for a, b in zip(m, h)], alpha=0.2)
        ax.set_title(f"DeepSea N={n}")
        ax.set_xlabel("episodes")
        ax.set_ylabel("cumulative regret")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(d, "regret.png"), dpi=120)
    plt.close(fig)

    solve = defaultdict(lambda: defaultdict(list))  # strategy -> size -> [episodes to solve or inf]
    with open(os.path.join(d, "runs.csv")) as f:
        for r in csv.DictReader(f):
            e = num(r["episodes_to_solve"]) if r["solved"] == "1" else float("inf")
            solve[r["strategy"]][int(r["size"])].append(e)
    top = max(max(len(v) for v in s.values()) for s in solve.values())
    scaling_plot(d, plt, solve, f"DeepSea scaling ({top} seeds per point)")
    return ["regret.png", "scaling.png"]


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def grid_of(rows, value, run="0", backup=None):
    cells = [r for r in rows if r["run"] == run and (backup is None or r["backup"] == backup)]
    nr = max(int(r["row"]) for r in cells) + 1
    nc = max(int(r["col"]) for r in cells) + 1
    g = [[float("nan")] * nc for _ in range(nr)]
    for r in cells:
        g[int(r["row"])][int(r["col"])] = float(r[value])
    return g


def plot_infer(d, plt):
    rows = read_rows(os.path.join(d, "visitation.csv"))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, backup in zip(axes, ["variational", "inference"]):
        im = ax.imshow(grid_of(rows, "visits", backup=backup), cmap="viridis")
        ax.set_title(f"{backup} backup: expected visits (run 0)")
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(os.path.join(d, "visitation.png"), dpi=120)
    plt.close(fig)
    return ["visitation.png"]


def plot_irl(d, plt):
    rows = read_rows(os.path.join(d, "curves.csv"))
    metrics = ["demo_loglik", "feature_gap", "regret"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    runs = sorted({int(r["run"]) for r in rows})[:16]
    for ax, m in zip(axes, metrics):
        for run in runs:
            pts = [(int(r["iter"]), num(r["value"])) for r in rows if r["metric"] == m and int(r["run"]) == run]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=f"run {run}")
        ax.set_xlabel("iteration")
        ax.set_title(m)
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(os.path.join(d, "irl_curves.png"), dpi=120)
    plt.close(fig)
    made = ["irl_curves.png"]
    path = os.path.join(d, "reward_map.csv")
    if os.path.exists(path):
        rm = read_rows(path)
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
        for ax, col, title in zip(axes, ["true_reward", "learned_reward"], ["true reward", "learned reward"]):
            im = ax.imshow(grid_of(rm, col), cmap="coolwarm")
            ax.set_title(f"{title} (run 0)")
            fig.colorbar(im, ax=ax, shrink=0.8)
        fig.tight_layout()
        fig.savefig(os.path.join(d, "reward_map.png"), dpi=120)
        plt.close(fig)
        made.append("reward_map.png")
    return made


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip())
        return 2
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot.py: matplotlib is missing (pip install matplotlib)", file=sys.stderr)
        return 1
    rc = 0
    for d in argv[1:]:
        if os.path.exists(os.path.join(d, "visitation.csv")):
            print(f"{d}: " + ", ".join(plot_infer(d, plt)))
            continue
        path = os.path.join(d, "curves.csv")
        if not os.path.exists(path):
            print(f"plot.py: {path} not found (a qfleet results folder has it)", file=sys.stderr)
            rc = 2
            continue
        with open(path) as f:
            header = f.readline().strip().split(",")
        if header[:2] == ["size", "strategy"]:
            made = plot_compare(d, plt)
        elif header == ["run", "iter", "metric", "value"]:
            made = plot_irl(d, plt)
        else:
            made = plot_sweep(d, plt) + sweep_scaling(d, plt)
        print(f"{d}: " + ", ".join(made))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
