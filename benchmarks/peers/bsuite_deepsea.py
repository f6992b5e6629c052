#!/usr/bin/env python3
"""CPU env-stepping peer: bsuite's numpy DeepSea (dm_env, one Python object per env) vs qfleet.

Run it from a venv with bsuite installed (run_bsuite_peers.sh makes .venv-bsuite); it installs
nothing itself. For each E the tools run in turn -- bsuite, qfleet, qfleet threads=1,
qfleet obs=dense, bsuite, ... -- `--repeats` times, and each side's median is reported.

bsuite side: `bsuite.environments.deep_sea.DeepSea(size=N, deterministic=True,
randomize_actions=True, mapping_seed=i)` for env i, stepped with uniformly random actions:
  * E=1 "loop": one env, `ts = env.step(a); if ts.last(): env.reset()`;
  * E envs "list": a Python list of E envs, each round steps every env once the same way.
Actions are drawn by numpy in chunks of ~4096 (`Generator.integers(...).tolist()`, inside the
timed region). dm_env semantics: an env that returned LAST is reset with `env.reset()` and only
`step()` calls that make a transition are counted (bsuite's auto-reset would spend one extra
`step()` call per episode on the reset; calling reset() directly is the cheaper, usual way).
Each step builds bsuite's dense N x N float32 observation and a dm_env TimeStep.

qfleet side: `qfleet bench envs env=deep_sea env.size=N backend=cpu max_envs=E seconds=S csv=F`,
the row whose envs column is E; again with threads=1 (one core, like the Python loop), and with
obs=dense (the same N x N floats per step as bsuite; qfleet's default writes a 4-byte state index).
"""

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gymnax_envs import OtherLoad, machine, qfleet_once, sh  # noqa: E402  (no jax needed for these)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qfleet", default="build-peer/qfleet", help="qfleet binary")
    ap.add_argument("--sizes", default="1,64,1024", help="numbers of envs E")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats per tool and E")
    ap.add_argument("--bsuite-seconds", type=float, default=1.0, help="least timed seconds per bsuite repeat")
    ap.add_argument("--qfleet-seconds", type=float, default=0.5, help="qfleet bench seconds= per repeat")
    ap.add_argument("--deep-sea-size", type=int, default=10, help="DeepSea N, both tools")
    ap.add_argument("--out", default="", help="markdown results file to write")
    ap.add_argument("--command", default="", help="the command line to record in the results")
    return ap.parse_args()


CHUNK = 4096  # random actions drawn per numpy call


def make_envs(deep_sea, E, N):
    envs = [deep_sea.DeepSea(size=N, deterministic=True, randomize_actions=True, mapping_seed=i)
            for i in range(E)]
    for env in envs:
        env.reset()  # the constructor leaves the env expecting a reset first
    return envs


def time_loop(env, rng, seconds):
    """One env in a plain Python loop; transitions per second."""
    steps = 0
    t0 = time.perf_counter()
    while True:
        for a in rng.integers(0, 2, size=CHUNK).tolist():
            if env.step(a).last():
                env.reset()
        steps += CHUNK
        el = time.perf_counter() - t0
        if el >= seconds:
            return steps / el


def time_list(envs, rng, seconds):
    """A list of E envs, each round stepping every env once; transitions per second."""
    E = len(envs)
    rounds = max(1, CHUNK // E)
    steps = 0
    t0 = time.perf_counter()
    while True:
        for row in rng.integers(0, 2, size=(rounds, E)).tolist():
            for env, a in zip(envs, row):
                if env.step(a).last():
                    env.reset()
        steps += rounds * E
        el = time.perf_counter() - t0
        if el >= seconds:
            return steps / el


def sig(x):
    return "—" if x is None else f"{x:.3g}"


def ratio(a, b):
    return "—" if a is None or b is None else f"{a / b:,.0f}x" if a / b >= 100 else f"{a / b:.1f}x"


def main():
    args = parse_args()
    import numpy as np
    from importlib.metadata import version as pkg_version

    from bsuite.environments import deep_sea

    N = args.deep_sea_size
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rng = np.random.default_rng(0)
    t_start = time.time()
    load_before = open("/proc/loadavg").read().split()[:3]
    rows = []  # (label, E, {key: [(value, other load), ...]})
    qdev = ""
    for E in sizes:
        envs = make_envs(deep_sea, E, N)
        cells = {}
        kinds = (["loop"] if E == 1 else []) + ["list", "q", "q1", "qd"]
        for _ in range(args.repeats):
            for k in kinds:
                probe = OtherLoad()
                probe.start()
                if k == "loop":
                    v = time_loop(envs[0], rng, args.bsuite_seconds)
                elif k == "list":
                    v = time_list(envs, rng, args.bsuite_seconds)
                elif k == "q":
                    v, _, qdev = qfleet_once(args, "deep_sea", E)
                elif k == "q1":
                    v = qfleet_once(args, "deep_sea", E, threads=1)[0]
                else:
                    v = qfleet_once(args, "deep_sea", E, obs="dense")[0]
                cells.setdefault(k, []).append((v, probe.stop()))
        rows.append((E, cells))
        med = {k: statistics.median(x[0] for x in vs) for k, vs in cells.items()}
        print(f"E={E}: " + ", ".join(f"{k} {sig(v)}" for k, v in med.items()), flush=True)
    elapsed = time.time() - t_start
    load_after = open("/proc/loadavg").read().split()[:3]

    m = machine()
    commit = sh("git rev-parse --short HEAD")
    L = [f"## bsuite DeepSea (numpy, dm_env) vs qfleet, env stepping on the CPU\n"]
    L.append(f"- CPU: {m['cpu']}, {m['cores']} cores (nproc), {m['simd'] or '?'}; memory {m['mem']}; "
             f"Linux {m['kernel']}; load average before / after: {' '.join(load_before)} / {' '.join(load_after)}")
    L.append(f"- bsuite {pkg_version('bsuite')}, dm-env {pkg_version('dm-env')}, numpy {pkg_version('numpy')}, "
             f"Python {platform.python_version()}")
    L.append(f"- qfleet: commit {commit} (HEAD when this ran), `{args.qfleet}`, backend cpu"
             f"{f' ({qdev})' if qdev else ''}")
    L.append(f"- DeepSea N={N}, deterministic, randomized action map; {args.repeats} interleaved repeats, "
             f"medians; bsuite >= {args.bsuite_seconds} s per repeat, qfleet seconds={args.qfleet_seconds}; "
             f"total {elapsed:.0f} s\n")
    L.append("| envs E | bsuite steps/s | qfleet steps/s (all cores) | ratio | qfleet 1 thread | ratio (1 thread) "
             "| qfleet obs=dense | ratio (dense) |")
    L.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for E, cells in rows:
        med = {k: statistics.median(x[0] for x in vs) for k, vs in cells.items()}
        for bk, label in (("loop", "1 (one env, plain loop)"), ("list", f"{E} (list of {E})")):
            if bk not in med:
                continue
            b = med[bk]
            L.append(f"| {label} | {sig(b)} | {sig(med['q'])} | **{ratio(med['q'], b)}** | {sig(med['q1'])} | "
                     f"{ratio(med['q1'], b)} | {sig(med['qd'])} | {ratio(med['qd'], b)} |")
    L.append("")
    L.append("ratio = qfleet / bsuite (env-steps/s; transitions only, resets not counted as steps). Every repeat "
             "(steps/s, in brackets the cores other processes kept busy meanwhile):\n")
    names = {"loop": "bsuite loop", "list": "bsuite list", "q": "qfleet", "q1": "qfleet 1 thread",
             "qd": "qfleet dense"}
    for E, cells in rows:
        L.append(f"- E={E}: " + "; ".join(
            f"{names[k]}: " + ", ".join(f"{v:.3g} [{ld:.2f}]" for v, ld in vs) for k, vs in cells.items()))
    L.append("")
    L.append("bsuite: `deep_sea.DeepSea(size=N, deterministic=True, randomize_actions=True, mapping_seed=i)`, "
             "uniformly random actions (numpy, drawn in chunks of 4096 inside the timed loop), "
             "`if env.step(a).last(): env.reset()`; E=1 as a plain loop over one env, E envs as a Python list "
             "stepped env by env each round. Every bsuite step allocates its N x N float32 observation and a "
             "dm_env TimeStep. qfleet: `bench envs env=deep_sea env.size=N backend=cpu max_envs=E "
             f"seconds={args.qfleet_seconds} csv=FILE` (row envs=E; threads=0: every core), the same with "
             "threads=1, and with obs=dense (the same N x N floats per step as bsuite; the default writes a "
             "4-byte state index).\n")
    L.append("Command:\n")
    L.append("```")
    L.append(args.command or shlex.join(["python"] + sys.argv))
    L.append("```")
    text = "\n".join(L) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    sys.exit(main())
