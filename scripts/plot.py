#!/usr/bin/env python3
"""plot.py RESULTS_DIR [...] [--reps N] — pictures of qfleet results folders, written next to their files.

A folder of `train`, `compare` or `sweep` (docs/results-format.md; also while it trains, from the
fleet_K.curves parts before curves.csv exists):
  learning_curves.png  episodic_return against env_steps, one panel per point without its strategy
                       (env and axes), one line per strategy (explore=): the interquartile mean (IQM)
                       across seeds with its 95% stratified-bootstrap confidence band (rliable)
  eval_return.png      the same for eval_return (greedy evaluation), when logged
  regret.png           cumulative regret against episodes, the same aggregation, when logged
  scaling.png          DeepSea folders (env deep_sea with an env.size axis, e.g. compare): median
                       episodes to solve against N per strategy (bsuite's criterion, runs.csv), log
                       scale up to the episode budget (the most episodes a run had); a median seed
                       that did not solve is a hollow marker on the top edge; bsuite's deadline
                       2^N + 100 dashed
Runs that differ only in their seed (and train's run=C) are aggregated. A strategy has one colour
and one marker in every picture. Bands are clipped to the observed range.

A `bandits` folder: regret.png, each strategy's pseudo-regret against steps (IQM over its runs).
An `irl` folder: true_regret.png, demo_log_likelihood.png, feature_expectation_gap.png against
iterations (IQM over seeds, one panel per env seed x lr x demo count) and, for a gridworld,
reward_map.png (true and learned reward of run 0). An `infer` folder (visitation.csv):
visitation.png, expected visits of run 0 per backup. The command is read from run.words.

Needs numpy, pandas, matplotlib and rliable (scripts/requirements-plot.txt): run under the python of
.venv-plot (scripts/plot-env.sh makes it), or any python: plot.py re-runs itself under .venv-plot when
its own python lacks them; exits 1 with one line when neither has them. Exit 2: a folder not in the
format (one line naming the file). docs/plotting.md has more.
"""
import argparse
import csv
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qfresults as qr  # noqa: E402


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return float("nan")


def panel_grid(plt, n, sharey):
    ncols = min(n, 3 if n <= 9 else 6)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(6.5, 5.4 * ncols), 0.4 + 3.9 * nrows), squeeze=False,
                             sharey=sharey)
    flat = [a for row in axes for a in row]
    for a in flat[n:]:
        a.set_visible(False)
    return fig, flat[:n]


def curves_figure(plt, df, metric, x, xlabel, ylabel, path, reps, partial):
    """One panel per group (a point without its strategy), one IQM line and band per strategy.
    Returns {(group, explore): (grid, iqm, lo, hi, n_runs)} or None when the metric is absent."""
    series = qr.run_series(df, metric, x)
    if not series:
        return None
    by = {}  # group -> explore -> [(x, y)]
    for name, xv, yv in series.values():
        _, explore, _, _ = qr.parse_name(name)
        by.setdefault(qr.group_of(name), {}).setdefault(explore, []).append((xv, yv))
    groups = sorted(by, key=qr.natural_key)
    envs = {g.split(" ")[0] for g in groups}
    fig, axes = panel_grid(plt, len(groups), sharey=len(envs) == 1)
    drawn = {}
    for ax, g in zip(axes, groups):
        order = qr.strategy_order(by[g])
        for i, explore in enumerate(order):
            grid, scores = qr.common_grid(by[g][explore])
            if len(grid) == 0:
                continue
            mid, lo, hi = qr.aggregate(scores, reps=reps)
            colour, marker = qr.strategy_style(explore)
            every = max(len(order), len(grid) // 8)
            # markers of the strategies of one panel at staggered log points: none hides another
            ax.plot(grid, mid, color=colour, marker=marker, markersize=5, markevery=(i * every // len(order), every),
                    label=f"{explore} ({scores.shape[0]} runs)", linewidth=1.6)
            ax.fill_between(grid, lo, hi, color=colour, alpha=0.18, linewidth=0)
            drawn[(g, explore)] = (grid, mid, lo, hi, scores.shape[0])
        ax.set_title(g, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    note = "; still training: the fleet parts so far" if partial else ""
    fig.suptitle(f"{ylabel}: interquartile mean over runs\n95% stratified-bootstrap CI (rliable, {reps} resamples)"
                 f"{note}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def episode_budget(runs):
    """The top of scaling.png: the most episodes a run had (runs.csv), which is compare's episodes=
    and, for runs trained by steps (a sweep), the budget of the size with the shortest episodes."""
    b = [num(r["episodes"]) for r in runs]
    b = [v for v in b if v == v and v > 0]
    return max(b) if b else float("nan")


def scaling_figure(plt, runs, path):
    """DeepSea: median episodes to solve against N per strategy. Returns what it drew:
    {"top": y of the top edge, "solved": {line: [(N, median)]}, "unsolved": {line: [N]}} where a
    line is the strategy and a sweep's other axes ("bootstrap lr=0.1"), or None when the folder is
    no DeepSea size study."""
    axes_cols = qr.runs_axes(runs)
    # a run whose fleet failed has no outcome: left out (a diverged run keeps what it reached)
    rows = [r for r in runs if r["env"] == "deep_sea" and r["status"] != "failed"]
    if "env.size" not in axes_cols or not rows:
        return None
    # a line per point without its size: the strategy, and the other axes of a sweep (line style)
    others = [c for c in axes_cols if c != "env.size" and c not in qr.REPLICA_AXES]
    solve = {}  # (explore, other axis values) -> N -> [episodes to solve, inf: not solved]
    for r in rows:
        n = int(num(r["env.size"]))
        e = num(r["episodes_to_solve"])
        ok = r["solved"] == "1" and e == e
        key = (r["explore"], " ".join(f"{c}={r[c]}" for c in others))
        solve.setdefault(key, {}).setdefault(n, []).append(e if ok else math.inf)
    budget = episode_budget(runs)
    meds = {k: {n: qr.median_or_inf(v) for n, v in by.items()} for k, by in solve.items()}
    finite = [m for by in meds.values() for m in by.values() if not math.isinf(m)]
    top = budget if budget == budget else max(finite + [10.0]) * 2
    sizes = sorted({n for by in solve.values() for n in by})
    step = min((b - a for a, b in zip(sizes, sizes[1:])), default=1.0)
    rests = sorted({k[1] for k in solve})
    order = [(e, rest) for e in qr.strategy_order({k[0] for k in solve}) for rest in rests if (e, rest) in solve]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    out = {"top": top, "solved": {}, "unsolved": {}}
    for i, k in enumerate(order):
        explore, rest = k
        colour, marker = qr.strategy_style(explore)
        style = ["-", "--", ":", "-."][rests.index(rest) % 4]
        dx = (i - (len(order) - 1) / 2) * min(0.09, 0.6 / len(order)) * step  # side by side: none hides another
        ns = sorted(meds[k])
        xs = [n + dx for n in ns if not math.isinf(meds[k][n])]
        ys = [meds[k][n] for n in ns if not math.isinf(meds[k][n])]
        xu = [n + dx for n in ns if math.isinf(meds[k][n])]
        seeds = max(len(v) for v in solve[k].values())
        label = f"{explore}{' ' + rest if rest else ''} ({seeds} runs)"
        ax.plot(xs, ys, color=colour, marker=marker, linestyle=style, markersize=7, linewidth=1.4, label=label)
        ax.plot(xu, [top] * len(xu), linestyle="none", marker=marker, markersize=9, markerfacecolor="none",
                markeredgecolor=colour, markeredgewidth=1.8, clip_on=False)
        name = explore + (" " + rest if rest else "")
        out["solved"][name] = [(n, meds[k][n]) for n in ns if not math.isinf(meds[k][n])]
        out["unsolved"][name] = [n for n in ns if math.isinf(meds[k][n])]
    if sizes:
        xd = [sizes[0] - step / 2] + sizes + [sizes[-1] + step / 2]
        ax.plot(xd, [2.0 ** n + 100 for n in xd], "--", color="gray", linewidth=1, label="bsuite deadline 2^N + 100")
    ax.plot([], [], linestyle="none", marker="o", markerfacecolor="none", markeredgecolor="black",
            label=f"hollow, on the top edge ({top:g} episodes, the most a run had): median seed unsolved")
    ax.set_yscale("log")
    ax.set_ylim(0.8, top)
    if sizes:
        ax.set_xlim(sizes[0] - step / 2, sizes[-1] + step / 2)
        ax.set_xticks(sizes)
    ax.set_xlabel("DeepSea size N")
    ax.set_ylabel("median episodes to solve")
    ax.set_title("DeepSea scaling (bsuite's criterion: bad episodes / episodes < solved_threshold)", fontsize=10,
                 pad=12)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return out


def plot_fleet_folder(d, plt, reps):
    """A train / compare / sweep folder: the pictures made (names), raises qr.FormatError."""
    runs = qr.read_runs(d)
    df, partial = qr.read_curves(d)
    made = []
    for metric, x, xlabel, ylabel, fname in (
            ("episodic_return", "env_steps", "env steps (per run)", "episodic return", "learning_curves.png"),
            ("eval_return", "env_steps", "env steps (per run)", "greedy evaluation return", "eval_return.png"),
            ("regret", "episodes", "episodes", "cumulative regret", "regret.png")):
        if curves_figure(plt, df, metric, x, xlabel, ylabel, os.path.join(d, fname), reps, partial) is not None:
            made.append(fname)
    if runs and scaling_figure(plt, runs, os.path.join(d, "scaling.png")) is not None:
        made.append("scaling.png")
    if partial:
        # the run names say env and size (deep_sea__bootstrap__env.size=10__seed0): only a DeepSea
        # size study gets scaling.png, so only such a folder is told that it waits for it
        names = set(df["name"]) if df is not None and "name" in df else set()
        sizes = {n.split("env.size=")[1].split("__")[0] for n in names
                 if n.startswith("deep_sea__") and "env.size=" in n}
        made.append("(still training: drawn from the fleet parts%s)"
                    % ("; scaling.png waits for runs.csv" if len(sizes) > 1 else ""))
    return made


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


def plot_irl(d, plt, reps):
    """An irl folder: the three curves over iterations (IQM over seeds per point) and the reward maps."""
    df, partial = qr.read_curves(d)
    made = []
    for metric, ylabel in (("true_regret", "true regret V*(s0) - V^pi(s0)"),
                           ("demo_log_likelihood", "demo log-likelihood per episode"),
                           ("feature_expectation_gap", "feature-expectation gap (max over features)")):
        fname = f"{metric}.png"
        if curves_figure(plt, df, metric, "step", "iteration", ylabel, os.path.join(d, fname), reps, partial):
            made.append(fname)
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


def plot_bandits(d, plt, reps):
    """A bandits folder: every strategy's pseudo-regret over steps (IQM over its seeds' runs)."""
    df, partial = qr.read_curves(d)
    if curves_figure(plt, df, "regret", "step", "steps (pulls per instance)",
                     "pseudo-regret (mean over a run's instances)", os.path.join(d, "regret.png"), reps,
                     partial) is None:
        raise qr.FormatError(f"{d}: curves.csv has no regret rows")
    return ["regret.png"]


def folder_kind(d):
    """The command that wrote a folder: from run.words when there is one, else from its files."""
    try:
        with open(os.path.join(d, "run.words")) as f:
            first = f.readline().rstrip("\n").split("\t")
        if len(first) == 2 and first[0] == "command":
            return first[1]
    except OSError:
        pass
    return "infer" if os.path.exists(os.path.join(d, "visitation.csv")) else "train"


def main(argv):
    ap = argparse.ArgumentParser(prog="plot.py", description=__doc__.split("\n", 1)[0])
    ap.add_argument("dirs", nargs="+", metavar="RESULTS_DIR")
    ap.add_argument("--reps", type=int, default=2000, help="bootstrap resamples per interval (default 2000)")
    a = ap.parse_args(argv[1:])
    if a.reps < 100:
        print("plot.py: --reps must be at least 100", file=sys.stderr)
        return 2
    qr.require("plot.py", ["numpy", "pandas", "matplotlib", "rliable.library"])
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rc = 0
    for d in a.dirs:
        try:
            if not os.path.isdir(d):
                raise qr.FormatError(f"{d}: not a folder")
            kind = folder_kind(d)
            if kind == "infer":
                made = plot_infer(d, plt)
            elif kind == "irl":
                made = plot_irl(d, plt, a.reps)
            elif kind == "bandits":
                made = plot_bandits(d, plt, a.reps)
            else:
                made = plot_fleet_folder(d, plt, a.reps)
        except qr.FormatError as e:
            print(f"plot.py: {e}", file=sys.stderr)
            rc = 2
            continue
        print(f"{d}: " + ", ".join(made))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
