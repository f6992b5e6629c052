"""qfresults.py — read a qfleet results folder (docs/results-format.md) for scripts/plot.py and
scripts/tensorboard.py, and aggregate runs across seeds the way rliable does.

- read_runs(DIR), read_curves(DIR): runs.csv rows, the long-format curves (curves.csv, or the
  fleet_K.curves parts of a folder still training); a folder not in the format is refused in one line.
- parse_name(NAME): ENV__EXPLORE[__KEY=VALUE ...]__seedSEED -> env, explore, axes, seed.
- aggregate(scores): interquartile mean (IQM) and 95% stratified-bootstrap confidence interval per
  column of a [runs, T] array, the interval from rliable's get_interval_estimates (Agarwal et al.
  2021, "Deep Reinforcement Learning at the Edge of the Statistical Precipice"; google-research/rliable).
- strategy_style(EXPLORE): the one colour and marker of a strategy in every picture.
- require(...): the packages of a script, or a re-run under the plotting environment (.venv-plot,
  made by scripts/plot-env.sh), or one line naming what is missing and exit 1.

Only the standard library is imported at module level; numpy, pandas and rliable inside functions.
"""
import csv
import glob
import io
import os
import re
import sys
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.environ.get("QFLEET_PLOT_VENV", os.path.join(ROOT, ".venv-plot"))
CURVES_HEADER = ["run", "name", "step", "env_steps", "metric", "value"]
RUNS_FIXED = ["run", "name", "fleet", "point", "env", "explore"]  # then <axes>[,run_copy], a tail
# The tail of runs.csv (seed, status, then the command's outcome columns), per command
RUNS_TAIL = ["seed", "status", "diverged_at_update", "episodes", "return_last20", "eval_return", "td_loss",
             "q_values", "regret", "first_treasure", "episodes_to_solve", "solved", "episodes_to_converge",
             "distinct_states", "intrinsic_reward"]
RUNS_TAILS = {
    "fleet": RUNS_TAIL,  # train, compare, sweep
    "bandits": ["seed", "status", "instances", "arms", "steps", "regret", "regret_stderr", "ucb1_bound"],
    "irl": ["seed", "status", "alpha", "horizon", "iters", "v_star", "demo_log_likelihood",
            "feature_expectation_gap", "true_regret", "expert_regret", "hoeffding_radius"],
    "infer": ["seed", "status", "horizon", "v_inference", "v_variational", "optimism_gap", "log_partition"],
}
METRICS = ["episodes", "episodic_return", "episodic_length", "eval_return", "SPS", "td_loss", "q_values",
           "grad_norm", "regret", "intrinsic_reward", "distinct_states", "q_diversity",
           "demo_log_likelihood", "feature_expectation_gap", "true_regret"]


class FormatError(Exception):
    """A folder or file that is not in the results format; str() is the one line to print."""


# ---------------------------------------------------------------------------------------------
# the packages, or the plotting environment

def require(script, modules):
    """Import `modules` (names) or re-run this process under VENV's python (made by plot-env.sh) or,
    when that is not possible, print one line naming the missing packages and exit 1.
    QFLEET_PLOT_NO_VENV=1 turns the re-run off."""
    missing = []
    for m in modules:
        try:
            __import__(m)
        except ImportError:
            missing.append(m)
    if not missing:
        return
    py = os.path.join(VENV, "bin", "python")
    in_venv = os.path.realpath(sys.prefix) == os.path.realpath(VENV)
    if os.path.exists(py) and not in_venv and os.environ.get("QFLEET_PLOT_NO_VENV") != "1":
        os.execv(py, [py] + sys.argv)
    print(f"{script}: missing Python package(s) {', '.join(missing)}: run scripts/plot-env.sh (makes {VENV}) "
          f"or pip install -r scripts/requirements-plot.txt", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# names, strategies, styles

SEED_RE = re.compile(r"__seed(-?\d+)$")


def parse_name(name):
    """ENV__EXPLORE[__KEY=VALUE ...]__seedSEED -> (env, explore, [(key, value)], seed or None)."""
    m = SEED_RE.search(name)
    seed = int(m.group(1)) if m else None
    parts = (name[:m.start()] if m else name).split("__")
    env = parts[0]
    explore = parts[1] if len(parts) > 1 else ""
    axes = [tuple(p.split("=", 1)) if "=" in p else (p, "") for p in parts[2:]]
    return env, explore, axes, seed


# Name parts that replicate a run rather than change it: train's `run=C` (runs= > 1; the run_copy
# column of runs.csv). Runs that differ only in these and in their seed are aggregated together.
REPLICA_AXES = ("run",)


def point_of(name):
    """What a run's curve is aggregated with: its name without __seedSEED and replica axes."""
    env, explore, axes, _ = parse_name(name)
    return "__".join([env, explore] + [f"{k}={v}" for k, v in axes if k not in REPLICA_AXES])


def group_of(name):
    """The panel a run is drawn in: its point without the strategy (ENV[ KEY=VALUE ...])."""
    env, _, axes, _ = parse_name(name)
    return " ".join([env] + [f"{k}={v}" for k, v in axes if k not in REPLICA_AXES])


def natural_key(text):
    """Sort key reading numbers as numbers: env.size=6 before env.size=10."""
    parts = re.split(r"(\d+(?:\.\d+)?(?:e-?\d+)?)", text)
    return [(0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts)]


# Okabe & Ito (2008) colour-blind-safe palette; the strategies of `explore=` (host/config.c) first.
_STYLE = {"epsilon": ("#0072B2", "o"), "boltzmann": ("#E69F00", "s"), "bootstrap": ("#009E73", "^"),
          "count": ("#D55E00", "D"), "rnd": ("#CC79A7", "v")}
_SPARE_COLOURS = ["#56B4E9", "#F0E442", "#000000", "#999999", "#8C564B", "#7F3C8D"]
_SPARE_MARKERS = ["P", "X", "h", "<", ">", "p", "*"]


def strategy_style(explore):
    """(colour, marker) of a strategy: fixed for the known ones, from a hash of the name (the same
    in every picture and every process) for others."""
    if explore in _STYLE:
        return _STYLE[explore]
    h = zlib.crc32(explore.encode())
    return _SPARE_COLOURS[h % len(_SPARE_COLOURS)], _SPARE_MARKERS[(h // 7) % len(_SPARE_MARKERS)]


def strategy_order(explores):
    """Known strategies in their table order, then the others sorted."""
    known = [e for e in _STYLE if e in explores]
    return known + sorted(e for e in set(explores) if e not in _STYLE)


def tensorboard_tag(metric):
    """CleanRL's TensorBoard tag of a metric: losses/ for the learner's, charts/ for the others."""
    return ("losses/" if metric in ("td_loss", "q_values", "grad_norm") else "charts/") + metric


# ---------------------------------------------------------------------------------------------
# reading a folder

def _complete_text(path):
    """A file's text up to its last newline (a line being appended is not read)."""
    with open(path, "rb") as f:
        data = f.read()
    cut = data.rfind(b"\n")
    return data[:cut + 1].decode("utf-8", errors="replace") if cut >= 0 else ""


def read_runs(d):
    """runs.csv rows as dicts ([] when absent: a folder still training). Refuses another layout."""
    path = os.path.join(d, "runs.csv")
    if not os.path.exists(path):
        return []
    rows = list(csv.DictReader(io.StringIO(_complete_text(path))))
    header = list(rows[0].keys()) if rows else []
    if rows and (header[:len(RUNS_FIXED)] != RUNS_FIXED or runs_kind(header) is None):
        raise FormatError(f"{path}:1: columns {','.join(header[:8])},... are not runs.csv of the results format "
                          f"(run,name,fleet,point,env,explore,<axes>,seed,status,...; docs/results-format.md)")
    return rows


def runs_kind(header):
    """Which command's tail a runs.csv header ends with ("fleet", "bandits", "irl", "infer"), or None."""
    for kind, tail in RUNS_TAILS.items():
        if len(header) >= len(RUNS_FIXED) + len(tail) and header[-len(tail):] == tail:
            return kind
    return None


def runs_axes(rows):
    """The axis columns of runs.csv (between explore and seed; not train's run_copy)."""
    if not rows:
        return []
    header = list(rows[0].keys())
    tail = RUNS_TAILS[runs_kind(header)]
    return [c for c in header[len(RUNS_FIXED):len(header) - len(tail)] if c != "run_copy"]


def curve_files(d):
    """curves.csv when written (the end), else the fleet parts fleet_K.curves in fleet order."""
    path = os.path.join(d, "curves.csv")
    if os.path.exists(path):
        return [path], False
    parts = glob.glob(os.path.join(d, "fleet_*.curves"))
    parts.sort(key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0))
    return parts, True


def read_curves(d):
    """The long-format curves as a pandas DataFrame (run, name, step, env_steps, metric, value), and
    whether they came from the parts of a folder still training. Refuses another layout."""
    import pandas as pd
    files, partial = curve_files(d)
    if not files:
        raise FormatError(f"{d}: neither curves.csv nor fleet_K.curves: not a qfleet results folder "
                          f"(docs/results-format.md), or no log point reached yet")
    frames = []
    for path in files:
        text = _complete_text(path)
        header = text.split("\n", 1)[0].strip().split(",")
        if header != CURVES_HEADER:
            raise FormatError(f"{path}:1: header {','.join(header)} is not curves.csv of the results format "
                              f"({','.join(CURVES_HEADER)}; docs/results-format.md)")
        df = pd.read_csv(io.StringIO(text), dtype={"name": str, "metric": str}, on_bad_lines="skip")
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    for c in ("run", "step", "env_steps", "value"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df = df.dropna(subset=["run", "step", "value"])
    df["env_steps"] = df["env_steps"].fillna(-1)  # empty: no env steps (irl's step is an iteration)
    df = df.astype({"run": "int64", "step": "int64", "env_steps": "int64"})
    return df, partial


# ---------------------------------------------------------------------------------------------
# curves per point, aggregated

def run_series(df, metric, x="env_steps"):
    """{run: (name, x[], y[])} of one metric. x is `env_steps`, `step`, or another metric logged at the same
    log points (e.g. `episodes`), joined on (run, step). Sorted by x; one y per x (the last);
    infinite values (a diverged run's loss) left out."""
    import numpy as np
    m = df[df.metric == metric]
    if x not in ("env_steps", "step"):
        xs = df[df.metric == x][["run", "step", "value"]].rename(columns={"value": "_x"})
        m = m.merge(xs, on=["run", "step"])
    else:
        m = m.assign(_x=m[x].astype(float))
    out = {}
    for run, g in m.groupby("run", sort=True):
        g = g.sort_values(["_x", "step"])
        g = g[np.isfinite(g._x.to_numpy(float)) & np.isfinite(g.value.to_numpy(float))]  # inf: not drawn
        if g.empty:
            continue
        xv = g._x.to_numpy(float)
        yv = g.value.to_numpy(float)
        keep = np.append(xv[1:] != xv[:-1], True)  # the last value at a repeated x
        out[int(run)] = (g["name"].iloc[0], xv[keep], yv[keep])
    return out


def common_grid(series, max_points=200):
    """runs' (x[], y[]) -> grid[T], scores[runs, T]: values at the x every run has reached (the
    range they share), linear interpolation between a run's own log points (exact where runs share
    log points, as the runs of one point do), at most max_points columns."""
    import numpy as np
    series = [(x, y) for x, y in series if len(x)]
    if not series:
        return np.zeros(0), np.zeros((0, 0))
    lo = max(x[0] for x, _ in series)
    hi = min(x[-1] for x, _ in series)
    xs = np.unique(np.concatenate([x for x, _ in series]))
    grid = xs[(xs >= lo) & (xs <= hi)]
    if len(grid) > max_points:
        grid = grid[np.unique(np.linspace(0, len(grid) - 1, max_points).round().astype(int))]
    scores = np.stack([np.interp(grid, x, y) for x, y in series])
    return grid, scores


def iqm(scores):
    """Interquartile mean over runs, per column of scores [runs, T]: the 25% trimmed mean of
    scipy.stats.trim_mean, which rliable.metrics.aggregate_iqm is (one task: each column alone)."""
    import scipy.stats
    return scipy.stats.trim_mean(scores, proportiontocut=0.25, axis=0)


def aggregate(scores, reps=2000, seed=0, size=0.95):
    """scores [runs, T] -> (iqm[T], lo[T], hi[T]): the IQM across runs and its stratified-bootstrap
    percentile interval (rliable.library.get_interval_estimates, one task, `reps` resamples of the
    runs), clipped to the observed range of scores. rliable draws from numpy's global generator:
    it is seeded with `seed` so that a picture is the same every time."""
    import numpy as np
    from rliable import library as rly
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"aggregate: scores must be [runs >= 1, T >= 1], got shape {scores.shape}")
    np.random.seed(seed)
    point, ci = rly.get_interval_estimates({"x": scores[:, None, :]}, lambda s: iqm(s[:, 0, :]), reps=reps,
                                           confidence_interval_size=size)
    lo_obs, hi_obs = np.nanmin(scores), np.nanmax(scores)
    lo, hi = clip_band(ci["x"][0], ci["x"][1], lo_obs, hi_obs)
    return point["x"], lo, hi


def clip_band(lo, hi, vmin, vmax):
    """A band clipped to the possible range [vmin, vmax] (the observed range of the metric)."""
    import numpy as np
    return np.clip(lo, vmin, vmax), np.clip(hi, vmin, vmax)


def median_or_inf(values):
    """The median of episodes to solve across seeds, inf standing for a seed that did not solve
    (the median is inf when half or more did not: for an even count the mean of the two middle
    values, inf when the upper one is unsolved)."""
    v = sorted(values)
    if not v:
        return float("inf")
    return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])
