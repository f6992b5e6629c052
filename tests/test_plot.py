#!/usr/bin/env python3
"""test_plot.py — scripts/plot.py and scripts/tensorboard.py against docs/results-format.md.

    test_plot.py [--qfleet BIN]           the aggregation against hand-computed values, then both
                                          scripts on folders written here to the format (train,
                                          compare, sweep, one still training, one in another format);
                                          with BIN also plot.py on tiny `infer` and `irl` folders
    test_plot.py --command CMD --qfleet BIN
                                          the real `qfleet CMD` at a tiny size into a temporary
                                          folder, the folder checked against the format, both scripts
                                          run on it (CMD: train, compare or sweep)

Runs under the python of .venv-plot (scripts/plot-env.sh), re-running itself there when started by
another python. Exit 0: every check held. CTest: label `plot` (tests/CMakeLists.txt).
"""
import argparse
import csv
import glob
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import qfresults as qr  # noqa: E402

PLOT = os.path.join(ROOT, "scripts", "plot.py")
TB = os.path.join(ROOT, "scripts", "tensorboard.py")
QFLEET = None  # the qfleet binary (--qfleet)
REPS = 300  # bootstrap resamples in these tests: the checks below do not depend on Monte Carlo error


# ---------------------------------------------------------------------------------------------
# a folder in the results format, written independently of qfleet (docs/results-format.md)

def write_folder(d, command, points, seeds, log_points, value, config, solve=None, partial=False, fleets=1,
                 status=None):
    """points: [(env, explore, [(axis, value)])]; value(point_index, seed, step, metric) -> float or
    None (not written); solve(point_index, seed) -> episodes to solve or None (unsolved).
    partial: only fleet_K.curves (points split over `fleets` parts), the last line of the last part
    cut in the middle, as a reader finds it while the fleet appends. status(point_index, seed) ->
    runs.csv status (default finished)."""
    os.makedirs(d, exist_ok=True)
    axes = [k for k, _ in points[0][2] if k != "run"] + (["run_copy"] if any(k == "run" for k, _ in points[0][2]) else [])
    with open(os.path.join(d, "run.words"), "w") as f:
        f.write(f"command\t{command}\n")
    names, curve_rows = [], []
    for p, (env, explore, ax) in enumerate(points):
        for s in range(seeds):
            name = "__".join([env, explore] + [f"{k}={v}" for k, v in ax] + [f"seed{s}"])
            run = p * seeds + s
            names.append((run, name, p, s))
            for step in log_points:
                for m in qr.METRICS:
                    v = value(p, s, step, m)
                    if v is not None:
                        curve_rows.append((p * fleets // len(points), [run, name, step, step, m, repr(float(v))]))
    header = ",".join(qr.CURVES_HEADER) + "\n"
    if partial:
        for k in range(fleets):
            with open(os.path.join(d, f"fleet_{k}.curves"), "w") as f:
                f.write(header)
                f.writelines(",".join(map(str, r)) + "\n" for fk, r in curve_rows if fk == k)
                if k == fleets - 1:
                    f.write("0,half-written-li")  # no newline: a line being appended
        return names
    with open(os.path.join(d, "curves.csv"), "w") as f:
        f.write(header)
        f.writelines(",".join(map(str, r)) + "\n" for _, r in curve_rows)
    with open(os.path.join(d, "runs.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(qr.RUNS_FIXED + axes + qr.RUNS_TAIL)
        for run, name, p, s in names:
            env, explore, ax = points[p]
            e = solve(p, s) if solve else None
            tail = {"seed": s, "status": status(p, s) if status else "finished", "diverged_at_update": -1, "episodes": config.get("episodes", 40),
                    "episodes_to_solve": "" if e is None else e,
                    "solved": "" if solve is None else (0 if e is None else 1)}
            cells = dict(ax)
            cells["run_copy"] = cells.get("run", "")  # train's copy C: a column after the axes
            w.writerow([run, name, 0, p, env, explore] + [cells[c] for c in axes] + [tail.get(c, "") for c in qr.RUNS_TAIL])
    with open(os.path.join(d, "config.txt"), "w") as f:
        f.writelines(f"{k}: {v}\n" for k, v in config.items())
    with open(os.path.join(d, "summary.md"), "w") as f:
        f.write(f"# {command}\n")
    return names


LOG = [10, 20, 30, 40, 50, 60]


def train_value(p, s, step, m):
    # returns of the 4 runs at a log point (train runs=2 seeds=2: points run=0, run=1, which are
    # replicas): step * (1, 2, 3, 100): IQM = 2.5 * step (hand: the middle two of four); td_loss only
    # from step 30 on (values before are unknown, not written)
    if m == "episodic_return":
        return step * (1, 2, 3, 100)[2 * p + s]
    if m == "td_loss":
        return None if step < 30 else 1.0 / step
    if m in ("episodes", "SPS", "episodic_length"):
        return {"episodes": step // 5, "SPS": 1000.0, "episodic_length": 5}[m]
    return None


COMPARE_POINTS = [("deep_sea", e, [("env.size", str(n))]) for n in (4, 6) for e in ("epsilon", "bootstrap", "count")]
# episodes to solve per point (env.size 4: epsilon, bootstrap, count; then env.size 6), None = unsolved
COMPARE_SOLVE = [[12, 14, None, 9, None], [5, 6, 7, 8, 9], [None, None, None, 3, 4],
                 [None, 30, None, 25, None], [20, 21, 22, 23, 24], [None] * 5]
# medians by hand (the third of five sorted): N=4 epsilon 9,12,[14],inf,inf; bootstrap 5,6,[7],8,9;
# count 3,4,[inf],inf,inf (unsolved); N=6 epsilon 25,30,[inf],..: unsolved; bootstrap 22; count unsolved


def compare_value(p, s, step, m):
    n = int(COMPARE_POINTS[p][2][0][1])
    if m == "episodes":
        return step // n
    if m == "regret":
        return (step // n) * (0.1 + 0.2 * (p % 3) + 0.01 * s)
    if m == "episodic_return":
        return 0.5 + 0.1 * s
    return None


def run(args, env=None):
    return subprocess.run([sys.executable] + args, capture_output=True, text=True, env=env, timeout=600)


def nonempty(path):
    return os.path.isfile(path) and os.path.getsize(path) > 0


def read_events(path):
    """The scalar summaries of one event file: [(tag, step, value)]. TFRecord framing (length,
    masked CRC, payload, masked CRC) read here; each payload parsed as tensorboardX's Event."""
    from tensorboardX.proto import event_pb2
    out = []
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    while i < len(data):
        (n,) = struct.unpack_from("<Q", data, i)
        ev = event_pb2.Event()
        ev.ParseFromString(data[i + 12:i + 12 + n])
        i += 12 + n + 4
        for v in ev.summary.value:
            if v.HasField("simple_value"):
                out.append((v.tag, ev.step, v.simple_value))
    return out


# ---------------------------------------------------------------------------------------------

class Aggregation(unittest.TestCase):
    def test_iqm_hand_computed(self):
        import numpy as np
        # 8 runs: the 25% trim drops 2 at each end; the middle four 3, 4, 100, 200 average 76.75
        x = np.array([[1.0], [1000], [2], [300], [3], [200], [4], [100]])
        self.assertAlmostEqual(float(qr.iqm(x)[0]), 76.75, places=12)
        # 10 runs: floor(2.5) = 2 trimmed at each end (scipy.stats.trim_mean, rliable's IQM)
        y = np.array([0.0, 0, 5, 6, 7, 8, 9, 10, 50, 60])[:, None]
        self.assertAlmostEqual(float(qr.iqm(y)[0]), (5 + 6 + 7 + 8 + 9 + 10) / 6, places=12)

    def test_iqm_is_rliables_per_column(self):
        import numpy as np
        from rliable import metrics
        rng = np.random.default_rng(3)
        s = rng.normal(size=(7, 5))
        for t in range(5):
            self.assertAlmostEqual(float(qr.iqm(s)[t]), float(metrics.aggregate_iqm(s[:, t:t + 1])), places=12)

    def test_interval_of_two_runs_is_their_range(self):
        import numpy as np
        # two runs a < b: a resample is (a,a), (a,b), (b,a) or (b,b), IQM (no trim at 2) a, (a+b)/2, b
        # with probabilities 1/4, 1/2, 1/4: the 2.5% and 97.5% percentiles are a and b unless fewer
        # than 2.5% of REPS resamples are (a,a) (binomial tail below 1e-10 at REPS=300)
        mid, lo, hi = qr.aggregate(np.array([[1.0, -2.0], [3.0, 5.0]]), reps=REPS)
        np.testing.assert_allclose(mid, [2.0, 1.5])
        np.testing.assert_allclose(lo, [1.0, -2.0])
        np.testing.assert_allclose(hi, [3.0, 5.0])

    def test_constant_runs_have_no_width_and_one_run_works(self):
        import numpy as np
        mid, lo, hi = qr.aggregate(np.full((5, 3), 0.25), reps=REPS)
        np.testing.assert_allclose([mid, lo, hi], np.full((3, 3), 0.25))
        mid, lo, hi = qr.aggregate(np.array([[1.0, 2.0]]), reps=REPS)
        np.testing.assert_allclose([mid, lo, hi], [[1, 2]] * 3)

    def test_band_inside_observed_range_and_around_estimate(self):
        import numpy as np
        rng = np.random.default_rng(1)
        s = rng.exponential(size=(9, 40))
        mid, lo, hi = qr.aggregate(s, reps=REPS)
        self.assertTrue(np.all(lo <= mid + 1e-12) and np.all(mid <= hi + 1e-12))
        self.assertTrue(np.all(lo >= s.min()) and np.all(hi <= s.max()))
        lo2, hi2 = qr.clip_band(np.array([-1.0, 0.5]), np.array([0.7, 2.0]), 0.0, 1.0)
        np.testing.assert_allclose([lo2, hi2], [[0, 0.5], [0.7, 1.0]])

    def test_median_with_unsolved(self):
        inf = math.inf
        self.assertEqual(qr.median_or_inf([20, 10, inf]), 20)
        self.assertEqual(qr.median_or_inf([10, inf, inf]), inf)
        self.assertEqual(qr.median_or_inf([10, 20, inf, inf]), inf)
        self.assertEqual(qr.median_or_inf([10, 20, 30, inf]), 25)

    def test_common_grid_shared_range(self):
        import numpy as np
        a = (np.array([0.0, 10, 20, 30]), np.array([0.0, 1, 2, 3]))
        b = (np.array([0.0, 10, 20]), np.array([5.0, 6, 7]))  # a run behind the other
        grid, scores = qr.common_grid([a, b])
        np.testing.assert_allclose(grid, [0, 10, 20])
        np.testing.assert_allclose(scores, [[0, 1, 2], [5, 6, 7]])
        c = (np.array([5.0, 25]), np.array([0.0, 2]))  # other log points: interpolated
        grid, scores = qr.common_grid([a, c])
        np.testing.assert_allclose(grid, [5, 10, 20, 25])
        np.testing.assert_allclose(scores, [[0.5, 1, 2, 2.5], [0, 0.5, 1.5, 2]])

    def test_series_leave_out_infinite_values_and_join_episodes(self):
        import numpy as np
        import pandas as pd
        df = pd.DataFrame({"run": [0] * 6, "name": ["e__epsilon__seed0"] * 6, "step": [1, 1, 2, 2, 3, 3],
                           "env_steps": [4, 4, 8, 8, 12, 12],
                           "metric": ["td_loss", "episodes"] * 3, "value": [0.5, 1, np.inf, 1, 0.25, 3]})
        name, x, y = qr.run_series(df, "td_loss")[0]
        self.assertEqual((name, list(x), list(y)), ("e__epsilon__seed0", [4, 12], [0.5, 0.25]))
        _, x, y = qr.run_series(df, "td_loss", x="episodes")[0]
        self.assertEqual((list(x), list(y)), ([1, 3], [0.5, 0.25]))

    def test_names_and_styles(self):
        self.assertEqual(qr.parse_name("deep_sea__bootstrap__env.size=10__lr=0.1__seed3"),
                         ("deep_sea", "bootstrap", [("env.size", "10"), ("lr", "0.1")], 3))
        self.assertEqual(qr.group_of("deep_sea__count__env.size=10__seed0"), "deep_sea env.size=10")
        self.assertEqual(qr.point_of("chain__epsilon__run=2__seed7"), "chain__epsilon")  # run=: a replica
        self.assertEqual(qr.point_of("cartpole__rnd__lr=0.1__seed7"), "cartpole__rnd__lr=0.1")
        known = ["epsilon", "boltzmann", "bootstrap", "count", "rnd"]
        styles = [qr.strategy_style(e) for e in known]
        self.assertEqual(len({c for c, _ in styles}), 5)
        self.assertEqual(len({m for _, m in styles}), 5)
        self.assertEqual(qr.strategy_style("newthing"), qr.strategy_style("newthing"))
        self.assertEqual(qr.strategy_order({"rnd", "zeta", "epsilon"}), ["epsilon", "rnd", "zeta"])
        self.assertEqual(sorted(["d env.size=10", "d env.size=6", "d env.size=8 lr=1e-3", "d env.size=8 lr=0.01"],
                                key=qr.natural_key),
                         ["d env.size=6", "d env.size=8 lr=1e-3", "d env.size=8 lr=0.01", "d env.size=10"])


class Fixtures(unittest.TestCase):
    """Both scripts on folders written above to the format."""

    @classmethod
    def setUpClass(cls):
        import matplotlib
        matplotlib.use("Agg")
        cls.tmp = tempfile.mkdtemp(prefix="qfleet-plot-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def folder(self, kind):
        d = os.path.join(self.tmp, kind)
        if os.path.exists(d):
            return d
        if kind == "train":
            write_folder(d, "train", [("chain", "epsilon", [("run", "0")]), ("chain", "epsilon", [("run", "1")])], 2,
                         LOG, train_value, {"env": "chain", "steps": 60})
        elif kind == "compare":
            write_folder(d, "compare", COMPARE_POINTS, 5, LOG, compare_value, {"env": "deep_sea", "episodes": 40},
                         solve=lambda p, s: COMPARE_SOLVE[p][s])
        elif kind == "sweep":
            pts = [("deep_sea", e, [("env.size", "5"), ("lr", lr)]) for lr in ("0.01", "0.1") for e in ("epsilon", "rnd")]
            # point 0's seed 2 is in a failed fleet: left out of scaling.png (its 12 would make the median 11)
            write_folder(d, "sweep", pts, 3, LOG, lambda p, s, step, m: compare_value(p % 3, s, step, m),
                         {"env": "deep_sea"}, solve=lambda p, s: None if p % 2 else 10 + s + p,
                         status=lambda p, s: "failed" if (p, s) == (0, 2) else "finished")
        elif kind == "training":
            write_folder(d, "train", [("chain", "epsilon", []), ("chain", "count", [])], 2, LOG,
                         lambda p, s, step, m: train_value(0, p + s, step, m), {}, partial=True, fleets=2)
        return d

    def test_train_curves_are_the_hand_computed_iqm(self):
        import matplotlib.pyplot as plt
        import plot
        df, partial = qr.read_curves(self.folder("train"))
        self.assertFalse(partial)
        drawn = plot.curves_figure(plt, df, "episodic_return", "env_steps", "x", "y",
                                   os.path.join(self.tmp, "t.png"), REPS, False)
        grid, mid, lo, hi, n = drawn[("chain", "epsilon")]
        self.assertEqual(n, 4)
        self.assertEqual(list(grid), LOG)
        for t, step in enumerate(LOG):
            self.assertAlmostEqual(mid[t], 2.5 * step, places=9)
            self.assertTrue(1 * step <= lo[t] <= mid[t] <= hi[t] <= 100 * step)
        # td_loss is written from step 30 on: its curve starts there
        drawn = plot.curves_figure(plt, df, "td_loss", "env_steps", "x", "y", os.path.join(self.tmp, "t.png"),
                                   REPS, False)
        self.assertEqual(list(drawn[("chain", "epsilon")][0]), [30, 40, 50, 60])

    def test_scaling_puts_unsolved_medians_on_the_budget(self):
        import matplotlib.pyplot as plt
        import plot
        d = self.folder("compare")
        got = plot.scaling_figure(plt, qr.read_runs(d), os.path.join(self.tmp, "s.png"))
        self.assertEqual(got["top"], 40)  # the runs' 40 episodes, the budget, not a number beyond it
        self.assertEqual(got["solved"], {"epsilon": [(4, 14)], "bootstrap": [(4, 7), (6, 22)], "count": []})
        self.assertEqual(got["unsolved"], {"epsilon": [6], "bootstrap": [], "count": [4, 6]})

    def test_scaling_of_a_sweep_keeps_its_other_axes_apart(self):
        import matplotlib.pyplot as plt
        import plot
        got = plot.scaling_figure(plt, qr.read_runs(self.folder("sweep")), os.path.join(self.tmp, "s2.png"))
        # epsilon at lr=0.01: seeds 10, 11 (12 failed) -> 10.5; at lr=0.1 (point 2): 12, 13, 14 -> 13
        self.assertEqual(got["solved"], {"epsilon lr=0.01": [(5, 10.5)], "epsilon lr=0.1": [(5, 13)],
                                         "rnd lr=0.01": [], "rnd lr=0.1": []})
        self.assertEqual(got["unsolved"], {"epsilon lr=0.01": [], "epsilon lr=0.1": [], "rnd lr=0.01": [5],
                                           "rnd lr=0.1": [5]})

    def test_regret_against_episodes(self):
        import matplotlib.pyplot as plt
        import plot
        df, _ = qr.read_curves(self.folder("compare"))
        drawn = plot.curves_figure(plt, df, "regret", "episodes", "x", "y", os.path.join(self.tmp, "r.png"), REPS,
                                   False)
        grid, mid, _, _, n = drawn[("deep_sea env.size=6", "bootstrap")]
        self.assertEqual(n, 5)
        self.assertEqual(list(grid), [s // 6 for s in LOG])  # x: the episodes metric, not env steps
        # regret = episodes * (0.3 + 0.01 s), s = 0..4: IQM of 5 (trim 1 each end) = episodes * 0.32
        for x, y in zip(grid, mid):
            self.assertAlmostEqual(y, x * 0.32, places=9)

    def plot_ok(self, d, pictures):
        r = run([PLOT, d, "--reps", str(REPS)])
        self.assertEqual(r.returncode, 0, r.stderr)
        for p in pictures:
            self.assertTrue(nonempty(os.path.join(d, p)), p)
        return r

    def tb_ok(self, d, names):
        r = run([TB, d])
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = {}
        df, _ = qr.read_curves(d)
        for name, metric, step, value in zip(df["name"], df["metric"], df["env_steps"], df["value"]):
            rows.setdefault(name, set()).add((qr.tensorboard_tag(metric), int(step), float(value)))
        for name in names:
            files = glob.glob(os.path.join(d, "tensorboard", name, "events.out.tfevents.*"))
            self.assertEqual(len(files), 1, name)
            self.assertTrue(nonempty(files[0]))
            got = read_events(files[0])
            want = rows.get(name, set())
            self.assertEqual(len(got), len(want), name)
            for tag, step, value in got:  # a float32 in the event file
                self.assertTrue(any(t == tag and s == step and abs(v - value) <= 1e-6 * max(1.0, abs(v))
                                    for t, s, v in want), (name, tag, step, value))
        return r

    def test_scripts_on_train(self):
        d = self.folder("train")
        self.plot_ok(d, ["learning_curves.png"])
        self.assertFalse(os.path.exists(os.path.join(d, "scaling.png")))
        names = [f"chain__epsilon__run={c}__seed{s}" for c in range(2) for s in range(2)]
        self.tb_ok(d, names)
        self.tb_ok(d, names)  # again: replaced, not doubled

    def test_scripts_on_compare(self):
        d = self.folder("compare")
        self.plot_ok(d, ["learning_curves.png", "regret.png", "scaling.png"])
        with open(os.path.join(d, "runs.csv")) as f:
            self.tb_ok(d, [r["name"] for r in csv.DictReader(f)])

    def test_scripts_on_sweep(self):
        d = self.folder("sweep")
        self.plot_ok(d, ["learning_curves.png", "regret.png", "scaling.png"])
        with open(os.path.join(d, "runs.csv")) as f:
            self.tb_ok(d, [r["name"] for r in csv.DictReader(f)])

    def test_scripts_on_a_folder_still_training(self):
        d = self.folder("training")
        r = self.plot_ok(d, ["learning_curves.png"])
        self.assertIn("still training", r.stdout)
        # a chain folder never gets scaling.png: it is not told to wait for it (a new user's finding)
        self.assertNotIn("scaling.png", r.stdout)
        self.assertFalse(os.path.exists(os.path.join(d, "scaling.png")))
        self.tb_ok(d, [f"chain__{e}__seed{s}" for e in ("epsilon", "count") for s in range(2)])

    def test_another_format_is_refused_in_one_line(self):
        d = os.path.join(self.tmp, "old")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "curves.csv"), "w") as f:
            f.write("run,step,env_steps,episodes,episodic_return\n0,1,1,0,0.5\n")
        for script in (PLOT, TB):
            r = run([script, d])
            self.assertEqual(r.returncode, 2)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn("curves.csv:1", r.stderr)
        r = run([PLOT, os.path.join(self.tmp, "no-such-folder")])
        self.assertEqual(r.returncode, 2)

    def test_infer_and_irl_folders(self):
        if not QFLEET:
            self.skipTest("no --qfleet BIN")
        cmds = {"infer": "infer env=gridworld temperatures=1 env_seeds=2",
                "irl": "irl env=gridworld demos=4 lrs=0.2 env_seeds=1 seeds=2 iters=20"}
        pictures = {"infer": ["visitation.png"],
                    "irl": ["true_regret.png", "demo_log_likelihood.png", "feature_expectation_gap.png",
                            "reward_map.png"]}
        for cmd, words in cmds.items():
            d = os.path.join(self.tmp, cmd)
            r = subprocess.run([QFLEET] + words.split() + [f"out={d}"], capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.plot_ok(d, pictures[cmd])

    def test_a_missing_package_is_one_line_and_exit_1(self):
        fake = os.path.join(self.tmp, "fake")
        os.makedirs(os.path.join(fake, "rliable"), exist_ok=True)
        os.makedirs(os.path.join(fake, "tensorboardX"), exist_ok=True)
        for pkg in ("rliable", "tensorboardX"):
            with open(os.path.join(fake, pkg, "__init__.py"), "w") as f:
                f.write("raise ImportError('not installed')\n")
        env = dict(os.environ, PYTHONPATH=fake, QFLEET_PLOT_NO_VENV="1")
        for script, pkg in ((PLOT, "rliable"), (TB, "tensorboardX")):
            r = run([script, self.folder("train")], env=env)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn(pkg, r.stderr)


# ---------------------------------------------------------------------------------------------
# the real commands (the runner of issue 13 writes the format)

TINY = {
    "infer": "infer env=gridworld temperatures=1,2 env_seeds=2 backend=cpu",
    "bandits": "bandits env.probs=[0.9,0.8,0.7] envs=16 seeds=3 steps=400 log_every=50 backend=cpu",
    "irl": "irl env=gridworld env.size=6 horizon=12 demos=4,16 lrs=0.2 seeds=3 iters=40 log_every=5 backend=cpu "
           "threads=1",
    "train": "train env=chain env.size=5 backend=cpu runs=3 envs=2 steps=400 log_every=100 hidden=[]",
    "compare": "compare backend=cpu sizes=4,5 explorers=epsilon,bootstrap seeds=3 episodes=30",
    "sweep": "sweep env=deep_sea env.size=4,5 explore=epsilon,bootstrap,count hidden=[] seeds=3 steps=400 "
             "log_every=40 envs=1 batch=8 learning_starts=8 backend=cpu",
}
PICTURES = {"bandits": ["regret.png"], "infer": ["visitation.png"], "irl": ["true_regret.png", "demo_log_likelihood.png", "reward_map.png"],
            "train": ["learning_curves.png"], "compare": ["learning_curves.png", "regret.png", "scaling.png"],
            "sweep": ["learning_curves.png", "regret.png", "scaling.png"]}


def command_test(cmd, qfleet):
    tmp = tempfile.mkdtemp(prefix=f"qfleet-plot-{cmd}-")
    try:
        d = os.path.join(tmp, "out")
        r = subprocess.run([qfleet] + TINY[cmd].split() + [f"out={d}"], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            print(f"test_plot: qfleet {TINY[cmd]} exited {r.returncode}:\n{r.stderr[-2000:]}", file=sys.stderr)
            return 1
        fails = []
        # infer is one exact computation: no curves (docs/results-format.md)
        for f in ("run.words", "config.txt", "runs.csv", "summary.md") + (() if cmd == "infer" else ("curves.csv",)):
            if not nonempty(os.path.join(d, f)):
                fails.append(f"{f} missing or empty (docs/results-format.md)")
        try:
            runs = qr.read_runs(d)
            if cmd == "infer":
                import pandas as pd
                df, partial = pd.DataFrame({"metric": [], "name": []}), False
                if not runs:
                    fails.append("runs.csv not written at the end")
            else:
                df, partial = qr.read_curves(d)
            if partial or not runs:
                fails.append("curves.csv / runs.csv not written at the end")
            want_axes = {"train": [], "compare": ["env.size"], "sweep": ["env.size"], "bandits": [],
                         "irl": ["env.map_seed", "lr", "demos"], "infer": ["env.map_seed", "alpha"]}[cmd]
            if qr.runs_axes(runs) != want_axes:
                fails.append(f"runs.csv axes {qr.runs_axes(runs)}, want {want_axes}")
            if cmd == "train" and "run_copy" not in runs[0]:  # runs=3
                fails.append("train runs=3: no run_copy column in runs.csv")
            if set(df["metric"]) - set(qr.METRICS):
                fails.append(f"curves.csv metrics outside the table: {sorted(set(df['metric']) - set(qr.METRICS))}")
            if cmd != "infer" and set(df["name"]) != {r["name"] for r in runs}:
                fails.append("curves.csv names differ from runs.csv names")
        except qr.FormatError as e:
            fails.append(str(e))
        r = run([PLOT, d, "--reps", str(REPS)])
        if r.returncode != 0:
            fails.append(f"plot.py exited {r.returncode}: {r.stderr.strip()}")
        for p in PICTURES[cmd]:
            if not nonempty(os.path.join(d, p)):
                fails.append(f"plot.py wrote no {p}")
        r = run([TB, d]) if cmd != "infer" else None
        if r is None:
            pass
        elif r.returncode != 0:
            fails.append(f"tensorboard.py exited {r.returncode}: {r.stderr.strip()}")
        elif not os.path.exists(os.path.join(d, "runs.csv")):
            fails.append("no runs.csv for the event files")
        else:
            with open(os.path.join(d, "runs.csv")) as f:
                for row in csv.DictReader(f):
                    ev = glob.glob(os.path.join(d, "tensorboard", row["name"], "events.out.tfevents.*"))
                    if len(ev) != 1 or not read_events(ev[0]):
                        fails.append(f"no scalars for run {row['name']}")
        for f in fails:
            print(f"test_plot {cmd}: {f}", file=sys.stderr)
        print(f"test_plot {cmd}: {'FAILED' if fails else 'passed'} ({len(fails)} problems)")
        return 1 if fails else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    qr.require("test_plot.py", ["numpy", "pandas", "matplotlib", "rliable.library", "tensorboardX"])
    ap = argparse.ArgumentParser()
    ap.add_argument("--command", choices=sorted(TINY))
    ap.add_argument("--qfleet")
    a, rest = ap.parse_known_args()
    if a.command:
        if not a.qfleet:
            ap.error("--command needs --qfleet BIN")
        sys.exit(command_test(a.command, a.qfleet))
    QFLEET = a.qfleet
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
