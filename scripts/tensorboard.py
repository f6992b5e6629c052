#!/usr/bin/env python3
"""tensorboard.py RESULTS_DIR [...] [--out LOGDIR] — TensorBoard event files of qfleet results folders.

For a folder of `train`, `compare` or `sweep` (docs/results-format.md; also while it trains, from the
fleet_K.curves parts): one TensorBoard run per run of runs.csv (named as in runs.csv, e.g.
deep_sea__bootstrap__env.size=10__seed3), each metric of curves.csv a scalar over env_steps, under
CleanRL's tags (charts/episodic_return, losses/td_loss, ...), and config.txt as text. Written with
tensorboardX into LOGDIR (default RESULTS_DIR/tensorboard); the event files this script wrote there
before are replaced, nothing else is touched. Then:

    tensorboard --logdir RESULTS_DIR/tensorboard

(TensorBoard itself is not installed by scripts/plot-env.sh: pip install tensorboard.) Needs pandas
and tensorboardX (scripts/requirements-plot.txt); re-runs itself under .venv-plot like plot.py.
Exit 1: a package missing; 2: a folder not in the format (one line naming the file).
"""
import argparse
import glob
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import qfresults as qr  # noqa: E402

# this file is not the `tensorboard` package: keep its folder off the path of what is imported next
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]


def write_folder(d, out):
    """Event files of folder d into out; returns (runs written, scalars written). Raises qr.FormatError."""
    from tensorboardX import SummaryWriter
    runs = qr.read_runs(d)
    df, partial = qr.read_curves(d)
    names = [r["name"] for r in runs] if runs else sorted(set(df["name"]))
    cfg_path = os.path.join(d, "config.txt")
    config = open(cfg_path).read() if os.path.exists(cfg_path) else ""
    by_name = {n: g for n, g in df.groupby("name", sort=False)}
    scalars = 0
    for name in names:
        if "/" in name or name in ("", ".", ".."):
            raise qr.FormatError(f"{d}: run name {name!r} cannot name a folder")
        logdir = os.path.join(out, name)
        for old in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
            os.remove(old)
        w = SummaryWriter(logdir=logdir)
        if config:
            # markdown: four spaces keep the key: value lines as they are
            w.add_text("config", "\n".join("    " + line for line in config.splitlines()), 0)
        g = by_name.get(name)
        if g is not None:
            g = g.sort_values(["step", "metric"], kind="stable")
            for metric, env_steps, value in zip(g["metric"], g["env_steps"], g["value"]):
                w.add_scalar(qr.tensorboard_tag(metric), float(value), int(env_steps))
                scalars += 1
        w.close()
    return len(names), scalars, partial


def main(argv):
    ap = argparse.ArgumentParser(prog="tensorboard.py", description=__doc__.split("\n", 1)[0])
    ap.add_argument("dirs", nargs="+", metavar="RESULTS_DIR")
    ap.add_argument("--out", help="log folder (default RESULTS_DIR/tensorboard; with several folders, "
                                  "one sub-folder per results folder)")
    a = ap.parse_args(argv[1:])
    qr.require("tensorboard.py", ["pandas", "tensorboardX"])
    rc = 0
    for d in a.dirs:
        if a.out:
            out = a.out if len(a.dirs) == 1 else os.path.join(a.out, os.path.basename(os.path.normpath(d)))
        else:
            out = os.path.join(d, "tensorboard")
        try:
            if not os.path.isdir(d):
                raise qr.FormatError(f"{d}: not a folder")
            runs = qr.read_runs(d)
            if runs and qr.runs_kind(list(runs[0].keys())) == "infer":
                # one exact computation: no curves over training (docs/results-format.md)
                print(f"{d}: an infer folder has no curves (one exact computation): nothing to write; "
                      f"scripts/plot.py draws its visitation heat maps")
                continue
            n, k, partial = write_folder(d, out)
        except qr.FormatError as e:
            print(f"tensorboard.py: {e}", file=sys.stderr)
            rc = 2
            continue
        note = " (still training: the fleet parts so far)" if partial else ""
        print(f"{d}: {n} runs, {k} scalars in {out}{note}; view: tensorboard --logdir {out}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
