#!/usr/bin/env python3
"""test_plot_scaling.py --qfleet BIN — `qfleet fit` and scripts/plot_scaling.py on a results folder
written here in docs/results-format.md: the cells counted by hand (pruned and failed runs left out,
K and n from columns or config.txt), psi against an independent maximization of the same binomial
log-likelihood on a fine grid in Python, the interval's ends where 2 (l_hat - l) = chi2_1(0.95),
bad folders refused with one line, and the picture written.

Runs under the python of .venv-plot (scripts/plot-env.sh) for the picture, re-running itself there
when started by another python. CTest: label `plot`.
"""
import argparse
import csv
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import qfresults as qr  # noqa: E402

CHI2_95 = 3.841458820694124  # chi-squared quantile, 1 degree of freedom, 0.95


def law(psi, k, n):
    return 1 - (1 - psi ** n) ** k


def loglik(cells, psi):
    ll = 0.0
    for (k, n), (t, s) in cells.items():
        p = law(psi, k, n)
        if s and p <= 0 or t - s and p >= 1:
            return -math.inf
        ll += (s * math.log(p) if s else 0) + ((t - s) * math.log(1 - p) if t - s else 0)
    return ll


def write_folder(d, rng):
    """Bootstrap runs on deep_sea drawn from the law (psi 0.8 without, 0.9 with priors), heads and
    env.size as columns, prior_scale from config.txt for one method (no column: one value); an
    epsilon run, pruned and failed runs that the fit must leave out. Returns {method: cells}."""
    os.makedirs(d)
    with open(os.path.join(d, "config.txt"), "w") as f:
        f.write("env=deep_sea\nheads=10\nprior_scale=3\nenv.size=10\n")
    header = qr.RUNS_FIXED + ["heads", "env.size"] + qr.RUNS_TAIL
    rows, cells, run = [], {}, 0
    for k in (1, 2, 4):
        for n in (4, 6, 8, 10):
            for s in range(10):
                status = "finished"
                if n == 10 and k == 1:
                    status = "pruned"
                elif s == 9 and n == 4:
                    status = "failed"
                conv = status == "finished" and rng.random() < law(0.9, k, n)
                row = dict.fromkeys(header, "")
                row.update(run=run, name=f"r{run}", fleet=1, point=0, env="deep_sea", explore="bootstrap",
                           heads=k, **{"env.size": n}, seed=s, status=status,
                           episodes_to_converge=(7 if conv else ""))
                rows.append(row)
                run += 1
                if status == "finished":
                    t, c = cells.get((k, n), (0, 0))
                    cells[(k, n)] = (t + 1, c + conv)
    row = dict.fromkeys(header, "")
    row.update(run=run, name="eps", fleet=1, point=0, env="deep_sea", explore="epsilon", heads="-",
               **{"env.size": 4}, seed=0, status="finished", episodes_to_converge=3)
    rows.append(row)
    with open(os.path.join(d, "runs.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return cells


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qfleet", required=True)
    a = ap.parse_args()
    fails = []
    tmp = tempfile.mkdtemp(prefix="qfleet_plot_scaling_")
    try:
        d = os.path.join(tmp, "sweep")
        cells = write_folder(d, random.Random(5))
        r = subprocess.run([a.qfleet, "fit", d], capture_output=True, text=True)
        if r.returncode != 0:
            fails.append(f"qfleet fit exited {r.returncode}: {r.stderr}")
            raise SystemExit
        with open(os.path.join(d, "fit.csv")) as f:
            fit = list(csv.DictReader(f))
        with open(os.path.join(d, "cells.csv")) as f:
            got = {(float(c["heads"]), float(c["size"])): (float(c["runs"]), float(c["converged"]))
                   for c in csv.DictReader(f)}
        if len(fit) != 1 or fit[0]["method"] != "RP-BDQN" or float(fit[0]["prior_scale"]) != 3:
            fails.append(f"one method, RP-BDQN at prior_scale 3 (config.txt), expected: {fit}")
        want = {(float(k), float(n)): (float(t), float(s)) for (k, n), (t, s) in cells.items()}
        if got != want:
            fails.append(f"cells {got} != hand count {want}")
        # psi: the argmax of the same likelihood on a grid of step 1e-5, within a grid step
        grid = [i / 100000 for i in range(1, 100000)]
        best = max(grid, key=lambda p: loglik(cells, p))
        psi, lo, hi = float(fit[0]["psi"]), float(fit[0]["psi_lo"]), float(fit[0]["psi_hi"])
        if abs(psi - best) > 2e-5:
            fails.append(f"psi {psi} != the grid's argmax {best}")
        ll = loglik(cells, psi)
        for end in (lo, hi):
            if abs(2 * (ll - loglik(cells, end)) - CHI2_95) > 1e-3:
                fails.append(f"interval end {end}: 2 (l_hat - l) = {2 * (ll - loglik(cells, end))}, not {CHI2_95}")
        if not (lo < psi < hi):
            fails.append(f"interval [{lo}, {hi}] does not hold psi {psi}")
        if "left out: 10 pruned runs" not in r.stdout or ", 3 failed runs" not in r.stdout:
            fails.append(f"the pruned and failed runs are not reported: {r.stdout}")
        # bad folders: one line, exit 2
        for args, needle in (([os.path.join(tmp, "none")], "cannot read"), ([], "needs a results folder"),
                             ([d, "level=2"], "bad value for level")):
            r = subprocess.run([a.qfleet, "fit"] + args, capture_output=True, text=True)
            if r.returncode != 2 or needle not in r.stderr or r.stderr.count("\n") != 1:
                fails.append(f"qfleet fit {args}: exit {r.returncode}, {r.stderr!r}")
        # the picture
        r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "plot_scaling.py"), d],
                           capture_output=True, text=True)
        png = os.path.join(d, "scaling_law.png")
        if r.returncode != 0 or not os.path.exists(png) or os.path.getsize(png) < 1000:
            fails.append(f"plot_scaling.py: exit {r.returncode}, {r.stderr}")
        r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "plot_scaling.py"), tmp],
                           capture_output=True, text=True)
        if r.returncode != 2 or "cells.csv is missing" not in r.stderr:
            fails.append(f"plot_scaling.py on a folder without a fit: exit {r.returncode}, {r.stderr}")
    except SystemExit:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for f in fails:
        print(f"test_plot_scaling: {f}", file=sys.stderr)
    print(f"test_plot_scaling: {'FAILED' if fails else 'passed'} ({len(fails)} problems)")
    return 1 if fails else 0


if __name__ == "__main__":
    qr.require("test_plot_scaling.py", ["numpy", "matplotlib"])
    sys.exit(main())
