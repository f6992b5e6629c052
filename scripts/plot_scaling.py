#!/usr/bin/env python3
"""plot_scaling.py RESULTS_DIR [...] — the bootstrapped-DQN scaling law of a sweep, drawn.

Reads RESULTS_DIR/cells.csv and RESULTS_DIR/fit.csv, written by `qfleet fit RESULTS_DIR` (which
fits P(convergence) = 1 - (1 - psi^n)^K per method; Knyazhitskiy 2025), and writes
RESULTS_DIR/scaling_law.png: one panel per method (BDQN: prior_scale 0; RP-BDQN: prior_scale > 0),
the heat map of the empirical P(convergence) (converged seeds / seeds) over ensemble size K (rows)
x DeepSea size n (columns), cells not run or pruned left blank, with the fitted frontier: the n
where the fitted law gives P = 0.5 (solid) and P = 0.1, 0.9 (dashed), for every K, and psi with
its interval in the title.

Needs numpy and matplotlib (scripts/requirements-plot.txt): run under .venv-plot
(scripts/plot-env.sh makes it) or any python; it re-runs itself under .venv-plot when its own
python lacks them. Exit 2 with one line: a folder without the fit's files.
"""
import csv
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qfresults as qr  # noqa: E402


def frontier(psi, k, p):
    """n where 1 - (1 - psi^n)^K = p."""
    return math.log(1 - (1 - p) ** (1 / k)) / math.log(psi)


def read_rows(path):
    if not os.path.exists(path):
        raise qr.FormatError(f"{path} is missing: run `qfleet fit {os.path.dirname(path) or '.'}` first")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_dir(d, plt, np):
    cells = read_rows(os.path.join(d, "cells.csv"))
    fits = read_rows(os.path.join(d, "fit.csv"))
    if not fits:
        raise qr.FormatError(f"{d}/fit.csv holds no fit")
    fig, axes = plt.subplots(1, len(fits), figsize=(5.2 * len(fits), 4.2), squeeze=False)
    for ax, fit in zip(axes[0], fits):
        mine = [c for c in cells if c["method"] == fit["method"] and c["prior_scale"] == fit["prior_scale"]]
        ks = sorted({float(c["heads"]) for c in mine})
        ns = sorted({float(c["size"]) for c in mine})
        grid = np.full((len(ks), len(ns)), np.nan)
        for c in mine:
            grid[ks.index(float(c["heads"])), ns.index(float(c["size"]))] = float(c["p_empirical"])
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
                       extent=(-0.5, len(ns) - 0.5, -0.5, len(ks) - 0.5))
        # the frontier in the cells' index coordinates (rows K, columns n, each mapped by linear
        # interpolation between its grid values), drawn over K densely; outside the grid it is not drawn
        psi = float(fit["psi"])
        kk = np.geomspace(ks[0], ks[-1], 400) if len(ks) > 1 else np.array(ks)
        ys = np.interp(kk, ks, range(len(ks)))
        for p, style in ((0.5, "-"), (0.1, "--"), (0.9, "--")) if 0 < psi < 1 else ():  # psi 0 or 1: no frontier
            nf = np.array([frontier(psi, k, p) for k in kk])
            xs = np.where((nf >= ns[0]) & (nf <= ns[-1]), np.interp(nf, ns, range(len(ns))), np.nan)
            ax.plot(xs, ys, style, color="red", lw=2 if p == 0.5 else 1,
                    label="fitted P = 0.5" if p == 0.5 else ("fitted P = 0.1, 0.9" if p == 0.1 else None))
        ax.set_xticks(range(len(ns)))
        ax.set_xticklabels([f"{n:g}" for n in ns], fontsize=7)
        ax.set_yticks(range(len(ks)))
        ax.set_yticklabels([f"{k:g}" for k in ks], fontsize=7)
        ax.set_xlabel("DeepSea size n")
        ax.set_ylabel("ensemble size K")
        ax.set_title(f"{fit['method']} (prior_scale {fit['prior_scale']}): psi = {psi:.3f}\n"
                     f"{float(fit['level']) * 100:.0f}% interval [{float(fit['psi_lo']):.3f}, "
                     f"{float(fit['psi_hi']):.3f}], {fit['runs']} runs", fontsize=9)
        ax.legend(loc="upper right", fontsize=7, framealpha=0.5)
        fig.colorbar(im, ax=ax, label="P(convergence), empirical")
    fig.tight_layout()
    out = os.path.join(d, "scaling_law.png")
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    qr.require("plot_scaling.py", ["numpy", "matplotlib"])
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    rc = 0
    for d in argv[1:]:
        try:
            print(plot_dir(d, plt, np))
        except qr.FormatError as e:
            print(f"plot_scaling.py: {e}", file=sys.stderr)
            rc = 2
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
