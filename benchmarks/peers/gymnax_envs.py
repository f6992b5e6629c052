#!/usr/bin/env python3
"""Side-by-side CPU benchmark: qfleet vs gymnax (jax[cpu]) env-steps/s, same machine, same envs.

For each (env, E) the tools run in turn -- qfleet, gymnax, qfleet, gymnax, ... -- `--repeats`
times, and each side's median is reported, so a load that comes and goes (a compile in another
shell) falls on both sides alike. Before each round the script waits (bounded) for the machine to
be quiet, and it records how many cores other processes kept busy during each measurement.

gymnax side (a well-optimized jax program, as gymnax is meant to be used):
  * one jitted function runs `jax.lax.scan` over T steps; each step draws the E random actions
    with jax.random inside the jit, splits one key per env and calls the vmapped `env.step`
    (which auto-resets a finished env, as gymnax always does);
  * XLA's CPU backend runs one computation on one core, so to use every core as qfleet does the
    env axis is split over D host devices (XLA_FLAGS=--xla_force_host_platform_device_count=D,
    `jax.shard_map`, no communication between them); `--no-gymnax-1dev` drops the extra
    single-device (one core) measurement;
  * the carry (key, env state, obs, reward, terminated, truncated) is donated, so the state is
    updated in place, and it holds the observation, reward and done flags of the last step, so
    XLA cannot drop the observation work (qfleet writes obs and reward for every step too);
  * env params are closed over as compile-time constants (lets XLA fold gymnax's unused
    branches, e.g. DeepSea's per-reset draw of a random action map that the default params
    never use); `--params-arg` passes them as a traced argument instead, as gymnax's README does;
  * compiled and run once before timing; each timed repeat calls it until `--gymnax-seconds` have
    passed, each call ending with block_until_ready (queueing the calls without blocking measured
    no faster).

qfleet side: `qfleet bench envs env=... backend=cpu max_envs=E seconds=S csv=...`, the row whose
envs column is E (threads=0: every core); also with threads=1, against gymnax on one device (a pair
that stays comparable while another process keeps one core busy). For deep_sea qfleet writes a 4-byte state index per
step, gymnax a dense 10x10 float one-hot (its only observation); `--qfleet-dense` also times
qfleet with obs=dense (the same 100 floats as gymnax).
"""

import argparse
import csv
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

GYMNAX_NAME = {"deep_sea": "DeepSea-bsuite", "cartpole": "CartPole-v1"}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qfleet", default="build-peer/qfleet", help="qfleet binary")
    ap.add_argument("--envs", default="deep_sea,cartpole", help="qfleet env names, comma separated")
    ap.add_argument("--sizes", default="1024,16384,131072,1048576", help="numbers of envs E")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats per tool and cell")
    ap.add_argument("--qfleet-seconds", type=float, default=0.5,
                    help="qfleet bench seconds= per cell (its clean repeats agree within ~1%%)")
    ap.add_argument("--gymnax-seconds", type=float, default=1.0, help="least timed seconds per gymnax repeat")
    ap.add_argument("--scan-steps", type=int, default=100, help="steps per jitted call (E <= 16384)")
    ap.add_argument("--scan-steps-large", type=int, default=10,
                    help="steps per jitted call for E > 16384 (one call is then already >> Python overhead)")
    ap.add_argument("--devices", type=int, default=0, help="jax host devices for gymnax (0: nproc)")
    ap.add_argument("--no-gymnax-1dev", action="store_true", help="skip the single-device gymnax column")
    ap.add_argument("--deep-sea-size", type=int, default=10, help="DeepSea N, both tools")
    ap.add_argument("--qfleet-dense", action="store_true", help="deep_sea: also time qfleet obs=dense")
    ap.add_argument("--params-arg", action="store_true", help="pass gymnax env params as a traced argument")
    ap.add_argument("--prng", default="threefry2x32", help="jax_default_prng_impl (threefry2x32, rbg, unsafe_rbg)")
    ap.add_argument("--alt-prng", default="unsafe_rbg",
                    help="also time gymnax (all devices) with keys of this PRNG impl ('' to skip)")
    ap.add_argument("--clean-load", type=float, default=0.3,
                    help="a round is clean when other processes used < this many cores in each measurement")
    ap.add_argument("--max-rounds", type=int, default=0,
                    help="rounds per cell at most, trying for --repeats clean ones (0: 2 x repeats)")
    ap.add_argument("--time-budget", type=float, default=480.0,
                    help="after the first pass, revisit disturbed cells until this many seconds have passed")
    ap.add_argument("--quiet-wait", type=float, default=10.0,
                    help="per round, wait up to this many seconds for other processes to go idle")
    ap.add_argument("--quiet-budget", type=float, default=120.0, help="total seconds of such waiting")
    ap.add_argument("--max-gymnax-call-s", type=float, default=20.0,
                    help="skip larger E for an env whose warm-up call took longer than this")
    ap.add_argument("--out", default="", help="markdown results file to write")
    ap.add_argument("--command", default="", help="the command line to record in the results")
    return ap.parse_args()


# ---------------------------------------------------------------- load probe


def _busy_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return v[0] + v[1] + v[2] + v[5] + v[6]


class OtherLoad:
    """Cores kept busy by other processes between start() and stop() (ours and our children out)."""

    HZ = os.sysconf("SC_CLK_TCK")

    def start(self):
        t = os.times()
        self.own0 = t.user + t.system + t.children_user + t.children_system
        self.busy0 = _busy_jiffies()
        self.w0 = time.perf_counter()

    def stop(self):
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system - self.own0
        busy = (_busy_jiffies() - self.busy0) / self.HZ
        wall = time.perf_counter() - self.w0
        return max(0.0, (busy - own) / wall) if wall > 0 else 0.0


def wait_quiet(max_wait, threshold=0.25, window=0.5):
    """Wait until other processes use < threshold cores over `window` s; return (seconds waited, last load)."""
    t0 = time.perf_counter()
    while True:
        p = OtherLoad()
        p.start()
        time.sleep(window)
        load = p.stop()
        waited = time.perf_counter() - t0
        if load < threshold or waited >= max_wait:
            return waited, load


# ---------------------------------------------------------------- gymnax


class GymnaxCell:
    """A compiled T-step rollout of E gymnax envs, split over the first `ndev` jax devices."""

    def __init__(self, jax, gymnax, env_name, E, ndev, args, prng=None):
        import jax.numpy as jnp
        from jax.sharding import NamedSharding, PartitionSpec as P

        self.jax, self.E, self.ndev = jax, E, ndev
        self.T = args.scan_steps if E <= 16384 else args.scan_steps_large
        if E % ndev:
            raise ValueError(f"E={E} is not a multiple of {ndev} devices")
        El = E // ndev
        T = self.T
        kw = {"size": args.deep_sea_size} if env_name == "deep_sea" else {}
        env, params = gymnax.make(GYMNAX_NAME[env_name], **kw)
        n_actions = env.num_actions
        vstep = jax.vmap(env.step, in_axes=(0, 0, 0, None))
        mesh = jax.sharding.Mesh(jax.devices()[:ndev], ("d",))

        def local(carry, p):  # one device's E/ndev envs; carry[0] is this device's key, shape (1,)
            def one_step(c, _):
                key, state = c[0][0], c[1]
                key, k_act, k_step = jax.random.split(key, 3)
                actions = jax.random.randint(k_act, (El,), 0, n_actions)
                obs, state, reward, terminated, truncated, _info = vstep(
                    jax.random.split(k_step, El), state, actions, p)
                return (key[None], state, obs, reward, terminated, truncated), None

            carry, _ = jax.lax.scan(one_step, carry, None, length=T)
            return carry

        if args.params_arg:
            sm = jax.shard_map(local, mesh=mesh, in_specs=(P("d"), P()), out_specs=P("d"))
            fn = jax.jit(sm, donate_argnums=0)
            self.call = lambda carry: fn(carry, params)  # noqa: E731
        else:
            sm = jax.shard_map(lambda c: local(c, params), mesh=mesh, in_specs=P("d"), out_specs=P("d"))
            self.call = jax.jit(sm, donate_argnums=0)

        @jax.jit
        def init(key):
            k_dev, k_reset, k_step = jax.random.split(key, 3)
            obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, E), params)
            # one step, so that the carry has exactly the step's output shapes and dtypes
            obs, state, reward, terminated, truncated, _ = vstep(
                jax.random.split(k_step, E), state, jnp.zeros((E,), jnp.int32), params)
            return (jax.random.split(k_dev, ndev), state, obs, reward, terminated, truncated)

        key = jax.random.key(0, impl=prng) if prng else jax.random.key(0)  # splits inherit the impl
        self.carry = jax.device_put(init(key), NamedSharding(mesh, P("d")))
        jax.block_until_ready(self.carry)
        self.carry_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(self.carry)) / E
        t1 = time.perf_counter()
        self.carry = self.call(self.carry)  # compile + first run
        jax.block_until_ready(self.carry)
        t2 = time.perf_counter()
        self.carry = self.call(self.carry)  # one warm call
        jax.block_until_ready(self.carry)
        t3 = time.perf_counter()
        self.warm_call_s = t3 - t2
        self.compile_s = max(0.0, (t2 - t1) - self.warm_call_s)

    def time_once(self, seconds):
        calls = 0
        t0 = time.perf_counter()
        while True:
            self.carry = self.call(self.carry)
            self.jax.block_until_ready(self.carry)
            calls += 1
            el = time.perf_counter() - t0
            if el >= seconds:
                return calls * self.T * self.E / el


# ---------------------------------------------------------------- qfleet


def qfleet_once(args, env_name, E, obs=None, threads=None):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "q.csv")
        cmd = [args.qfleet, "bench", "envs", f"env={env_name}", "backend=cpu", f"max_envs={E}",
               f"seconds={args.qfleet_seconds}", f"csv={out}"]
        if env_name == "deep_sea":
            cmd.append(f"env.size={args.deep_sea_size}")
        if obs:
            cmd.append(f"obs={obs}")
        if threads:
            cmd.append(f"threads={threads}")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
        with open(out) as f:
            rows = [row for row in csv.DictReader(f) if row["env"] == env_name and int(row["envs"]) == E]
        if not rows:
            raise RuntimeError(f"no row envs={E} for {env_name} in qfleet's CSV")
        return float(rows[0]["steps_per_s"]), rows[0]["obs"], rows[0]["device"]


# ---------------------------------------------------------------- report


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def machine():
    model = sh("grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-").strip() or platform.processor()
    flags = sh("grep -m1 '^flags' /proc/cpuinfo") + " "
    simd = [x for x in ("avx2", "avx512f", "fma") if f" {x} " in flags]
    mem = sh("awk '/^MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    return {"cpu": model, "cores": sh("nproc"), "mem": mem, "simd": ",".join(simd), "kernel": platform.release()}


def fmt(x):
    if x is None:
        return "—"
    return f"{x / 1e6:.1f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"


def sig(x):
    return "—" if x is None else f"{x:.3g}"


def ratio(a, b):
    return "—" if a is None or b is None else f"{a / b:.2f}x"


def med(xs):
    return statistics.median(xs) if xs else None


ALL_CORES = ("q", "g", "gr", "qd")  # measurements that use every core
ONE_CORE = ("q1", "g1")  # measurements on one core each


def rd_clean(rd, args):
    """No other process busy during any every-core measurement of the round."""
    return all(rd[k][1] < args.clean_load for k in ALL_CORES if k in rd)


def rd_clean1(rd, args, ndev):
    """At most ndev-1 cores busy elsewhere during the one-core measurements: one core was still free."""
    return all(rd[k][1] < args.clean_load + ndev - 1 for k in ONE_CORE if k in rd)


def main():
    args = parse_args()
    ndev = args.devices or int(sh("nproc") or os.cpu_count() or 1)
    flag = f"--xla_force_host_platform_device_count={ndev}"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()
    import jax

    jax.config.update("jax_default_prng_impl", args.prng)
    from importlib.metadata import version as pkg_version

    import gymnax

    envs = [e for e in args.envs.split(",") if e]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    one_dev = not args.no_gymnax_1dev and ndev > 1
    print(f"jax {jax.__version__} {jax.devices()}, gymnax {pkg_version('gymnax')}", flush=True)
    load_before = open("/proc/loadavg").read().split()[:3]
    t_start = time.time()
    state = {"quiet_left": args.quiet_budget}

    def build_cells(env_name, E):
        cells = {"g": GymnaxCell(jax, gymnax, env_name, E, ndev, args)}
        if one_dev:
            cells["g1"] = GymnaxCell(jax, gymnax, env_name, E, 1, args)
        if args.alt_prng:
            cells["gr"] = GymnaxCell(jax, gymnax, env_name, E, ndev, args, prng=args.alt_prng)
        return cells

    def one_round(r, cells):
        if state["quiet_left"] > 0:
            w, _ = wait_quiet(min(args.quiet_wait, state["quiet_left"]))
            state["quiet_left"] -= w
            r["waited"] += w
        probe = OtherLoad()
        rd = {}
        for k in r["order"]:
            probe.start()
            if k == "q":
                v, r["qobs"], r["qdev"] = qfleet_once(args, r["env"], r["E"])
            elif k == "qd":
                v = qfleet_once(args, r["env"], r["E"], obs="dense")[0]
            elif k == "q1":
                v = qfleet_once(args, r["env"], r["E"], threads=1)[0]
            else:
                v = cells[k].time_once(args.gymnax_seconds)
            rd[k] = (v, probe.stop())
        r["rounds"].append(rd)
        print(f"   round {len(r['rounds'])}{'' if rd_clean(rd, args) else ' (disturbed)'}: "
              + "  ".join(f"{k} {fmt(rd[k][0])} [{rd[k][1]:.2f}]" for k in r["order"]), flush=True)

    def n_clean(r):
        return sum(rd_clean(rd, args) for rd in r["rounds"])

    # pass 1: every cell, `repeats` rounds (more while the machine is busy and time is left)
    results = []
    max_rounds = args.max_rounds or 2 * args.repeats
    for env_name in envs:
        too_big = None
        for E in sizes:
            if too_big:
                results.append({"env": env_name, "E": E, "skipped": too_big})
                continue
            print(f"== {env_name} E={E}: compiling gymnax ...", flush=True)
            try:
                cells = build_cells(env_name, E)
            except Exception as e:  # out of memory, mostly
                print(f"   gymnax failed: {e}", flush=True)
                results.append({"env": env_name, "E": E, "skipped": f"gymnax failed ({type(e).__name__})"})
                too_big = "gymnax failed at a smaller E"
                continue
            for k, c in cells.items():
                print(f"   {k}: {c.ndev} device(s), compile {c.compile_s:.1f} s, warm call {c.warm_call_s:.3f} s "
                      f"({c.T} steps), carry {c.carry_bytes:.0f} B/env", flush=True)
            r = {"env": env_name, "E": E, "qobs": "", "qdev": "", "waited": 0.0, "rounds": [],
                 "order": ["q", "g"] + (["g1", "q1"] if "g1" in cells else []) + (["gr"] if "gr" in cells else [])
                 + (["qd"] if args.qfleet_dense and env_name == "deep_sea" else []),
                 "cells": {k: (c.ndev, c.T, c.carry_bytes, c.compile_s) for k, c in cells.items()}}
            results.append(r)
            while len(r["rounds"]) < args.repeats:
                one_round(r, cells)
            warm = max(c.warm_call_s for c in cells.values())
            cells.clear()
            if warm > args.max_gymnax_call_s:
                too_big = f"one jitted call at the previous E took {warm:.0f} s"
    # later passes: revisit the cells with too few clean rounds while time is left, so that a busy
    # spell of the machine is met again later rather than averaged in
    while time.time() - t_start < args.time_budget:
        todo = [r for r in results if "skipped" not in r and n_clean(r) < args.repeats
                and len(r["rounds"]) < max_rounds]
        if not todo:
            break
        r = min(todo, key=lambda r: (n_clean(r), len(r["rounds"])))
        print(f"== again {r['env']} E={r['E']} ({n_clean(r)} clean of {len(r['rounds'])} rounds)", flush=True)
        cells = build_cells(r["env"], r["E"])
        one_round(r, cells)
        cells.clear()
    for r in results:
        if "skipped" in r:
            continue
        clean = [rd for rd in r["rounds"] if rd_clean(rd, args)]
        used = clean if len(clean) >= 2 else r["rounds"]
        r.update({"n_used": len(used), "n_clean": len(clean), "used_clean": used is clean})
        for k in ALL_CORES:
            r[k] = med([rd[k][0] for rd in used if k in rd])
        clean1 = [rd for rd in r["rounds"] if rd_clean1(rd, args, ndev)]
        used1 = clean1 if len(clean1) >= 2 else r["rounds"]
        r.update({"n_used1": len(used1), "n_clean1": len(clean1), "used_clean1": used1 is clean1})
        for k in ONE_CORE:
            r[k] = med([rd[k][0] for rd in used1 if k in rd])
    elapsed = time.time() - t_start
    load_after = open("/proc/loadavg").read().split()[:3]
    write_report(args, results, ndev, one_dev, envs, load_before, load_after, elapsed, pkg_version, jax)
    return 0


def write_report(args, results, ndev, one_dev, envs, load_before, load_after, elapsed, pkg_version, jax):
    m = machine()
    commit = sh("git rev-parse --short=12 HEAD") or "?"
    dirty = sh("git status --porcelain --untracked-files=no -- envs host kernels CMakeLists.txt")
    qdev = next((r["qdev"] for r in results if r.get("qdev")), "")
    dense = args.qfleet_dense and "deep_sea" in envs
    L = []
    L.append(f"# CPU env stepping: qfleet vs gymnax ({datetime.date.today().isoformat()})\n")
    L.append("Env-steps/s on the CPU, same machine, same number of envs E, random actions drawn inside the step, "
             "auto-reset, the observation written for every env step. For each (env, E) the tools ran in turn, "
             "round after round (qfleet, gymnax, qfleet, gymnax, ...), until "
             f"{args.repeats} rounds were clean (no other process busy during any of its measurements) or "
             f"{args.max_rounds or 2 * args.repeats} rounds were run (disturbed cells were revisited after a first "
             "pass over all of them, while time was left); each number is the median over the clean rounds. "
             "Where fewer than 2 rounds were clean the median of all rounds is shown in brackets, marked "
             "DISTURBED: another process was using a core, and qfleet's per-step OpenMP barrier loses far "
             "more than gymnax's per-call split then, so such a ratio says little. ratio = qfleet / gymnax.\n")
    L.append("## Machine and versions\n")
    L.append(f"- CPU: {m['cpu']}, {m['cores']} cores (nproc), {m['simd'] or '?'}; memory {m['mem']}; "
             f"Linux {m['kernel']}")
    L.append(f"- load average before / after: {' '.join(load_before)} / {' '.join(load_after)}")
    cache = {}
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(args.qfleet)), "CMakeCache.txt")) as f:
            for line in f:
                if "=" in line and ":" in line.split("=", 1)[0]:
                    k, v = line.strip().split("=", 1)
                    cache[k.split(":", 1)[0]] = v
    except OSError:
        pass
    build = ", ".join(f"{k}={cache[k]}" for k in ("CMAKE_BUILD_TYPE", "QFLEET_CUDA", "QFLEET_NATIVE") if k in cache)
    L.append(f"- qfleet: commit {commit}{' + uncommitted changes to its sources' if dirty else ''} (HEAD when "
             f"this ran), `{args.qfleet}` ({build or 'build settings unknown'}), backend cpu"
             f"{f' ({qdev})' if qdev else ''}, threads=0 (every core)")
    L.append(f"- gymnax {pkg_version('gymnax')}, jax {jax.__version__}, jaxlib {pkg_version('jaxlib')}, "
             f"flax {pkg_version('flax')}, numpy {pkg_version('numpy')}, Python {platform.python_version()}; "
             f"jax backend {jax.default_backend()}, PRNG {args.prng}, env params "
             f"{'traced argument' if args.params_arg else 'compile-time constants'}")
    L.append(f"- total run time {elapsed:.0f} s\n")
    L.append("## Results (env-steps/s, median)\n")
    L.append(f"gymnax = the jitted, vmapped, scanned rollout with the envs split over {ndev} jax CPU devices "
             f"(one core each), i.e. using every core like qfleet; jax's default PRNG ({args.prng}).\n")
    L.append("| env | envs | qfleet steps/s | gymnax steps/s | ratio (qfleet/gymnax) | rounds used |")
    L.append("| --- | ---: | ---: | ---: | ---: | --- |")
    for r in results:
        name = f"{r['env']} ({GYMNAX_NAME[r['env']]})"
        if "skipped" in r:
            L.append(f"| {name} | {r['E']} | — | skipped: {r['skipped']} | — | |")
            continue
        if r["used_clean"]:
            L.append(f"| {name} | {r['E']} | {sig(r['q'])} | {sig(r['g'])} | **{ratio(r['q'], r['g'])}** | "
                     f"{r['n_used']} clean |")
        else:  # no trustworthy number: show it, bracketed
            L.append(f"| {name} | {r['E']} | ({sig(r['q'])}) | ({sig(r['g'])}) | ({ratio(r['q'], r['g'])}) "
                     f"DISTURBED | all {r['n_used']}, {r['n_clean']} clean |")
    L.append("")
    if one_dev:
        L.append("### One core each\n")
        L.append(f"qfleet threads=1 vs gymnax on one jax device (how gymnax runs by default: XLA's CPU backend "
                 f"keeps this computation on one core). Measured in the same rounds; a round counts here when "
                 f"at least one core was free of other work (others < {args.clean_load + ndev - 1:.1f} cores), "
                 "so this comparison holds up while another process keeps one core busy.\n")
        L.append("| env | envs | qfleet 1 thread steps/s | gymnax 1 device steps/s | ratio | rounds used |")
        L.append("| --- | ---: | ---: | ---: | ---: | --- |")
        for r in results:
            if "skipped" in r:
                continue
            if r["used_clean1"]:
                L.append(f"| {r['env']} | {r['E']} | {sig(r['q1'])} | {sig(r['g1'])} | **{ratio(r['q1'], r['g1'])}** "
                         f"| {r['n_used1']} clean |")
            else:
                L.append(f"| {r['env']} | {r['E']} | ({sig(r['q1'])}) | ({sig(r['g1'])}) | "
                         f"({ratio(r['q1'], r['g1'])}) DISTURBED | all {r['n_used1']}, {r['n_clean1']} clean |")
        L.append("")
    variants = []
    if args.alt_prng:
        variants.append(("gr", f"gymnax {args.alt_prng} keys", "q", "gr"))
    if dense:
        variants.append(("qd", "qfleet obs=dense", "qd", "g"))
    variants = [v for v in variants if any(r.get(v[0]) for r in results)]
    if variants:
        L.append("### Variants (every core, same rounds and same clean rule as the main table)\n")
        L.append(f"gymnax with {args.alt_prng or '-'} keys instead of {args.prng}, and qfleet writing DeepSea's "
                 "dense one-hot observation (the same N*N floats as gymnax) instead of the state index.\n")
        head, sep = "| env | envs |", "| --- | ---: |"
        for _, title, num, den in variants:
            head += (f" {title} steps/s | ratio ({'qfleet dense' if num == 'qd' else 'qfleet'}/"
                     f"{'this' if num == 'q' else 'gymnax'}) |")
            sep += " ---: | ---: |"
        L += [head, sep]
        for r in results:
            if "skipped" in r:
                continue
            row = f"| {r['env']} | {r['E']} |"
            br = (lambda x: x) if r["used_clean"] else (lambda x: f"({x})")  # noqa: E731
            for k, _, num, den in variants:
                row += f" {br(sig(r.get(k)))} | {br(ratio(r.get(num), r.get(den))) if r.get(k) else '—'} |"
            L.append(row)
        L.append("")
    L.append("Every round (steps/s; in brackets the cores that other processes kept busy during that "
             f"measurement, out of {m['cores']}); gymnax "
             "steps per jitted call T, carry bytes per env, compile seconds:\n")
    names = {"q": "qfleet", "qd": "qfleet dense", "g": f"gymnax {ndev} dev", "g1": "gymnax 1 dev",
             "q1": "qfleet 1 thread",
             "gr": f"gymnax {args.alt_prng}"}
    for r in results:
        if "skipped" in r:
            continue
        parts = []
        for k in r["order"]:
            vals = ", ".join(f"{rd[k][0]:.3g} [{rd[k][1]:.2f}]" for rd in r["rounds"])
            parts.append(f"{names[k]}{' (obs ' + r['qobs'] + ')' if k == 'q' else ''}: {vals}")
        c = r["cells"]["g"]
        parts.append(f"T={c[1]}, carry {c[2]:.0f} B/env, compile {c[3]:.1f} s")
        if r["waited"] > 0.6 * len(r["rounds"]):
            parts.append(f"waited {r['waited']:.0f} s for a quiet machine")
        L.append(f"- {r['env']} E={r['E']}: " + "; ".join(parts))
    L.append("")
    L.append(NOTES.format(N=args.deep_sea_size, ndev=ndev, T=args.scan_steps, TL=args.scan_steps_large))
    L.append("## Command\n")
    L.append("```")
    L.append(args.command or shlex.join(["python"] + sys.argv))
    L.append("```\n")
    L.append(f"It ran `{shlex.join(['python'] + sys.argv)}` in the venv; for each repeat qfleet ran "
             f"`{args.qfleet} bench envs env=ENV backend=cpu max_envs=E seconds={args.qfleet_seconds} csv=...`"
             + (f" (deep_sea: env.size={args.deep_sea_size})" if "deep_sea" in envs else "")
             + " and the row envs=E of its CSV was used.")
    text = "\n".join(L) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


NOTES = """## What is compared, and what is not the same

- Both tools: E independent envs stepped in lock-step, a uniformly random action per env per step drawn
  inside the compiled step, auto-reset in the same step that ends an episode, float32. qfleet: C11 + OpenMP
  over the envs, Philox counters. gymnax: `jax.lax.scan` of {T} steps per jitted call ({TL} for E > 16384,
  where one call is long enough already), `jax.vmap(env.step)`, threefry keys split per env per step, carry
  donated; the envs split over {ndev} jax CPU devices with `jax.shard_map` because XLA's CPU backend runs a
  computation of this kind on one core (measured: ~1.0 CPU-s per wall-s without the split).
- DeepSea: gymnax `DeepSea-bsuite` with `size={N}` (gymnax's default is 8; bsuite's and qfleet's 10). Its
  dynamics match bsuite's deterministic DeepSea (reward +1 for "right" in the last column, move cost
  0.01/N per right move, bad-episode when leaving the diagonal, episode of N steps). Differences that cost
  time and are part of gymnax's design: the per-env state carries the whole N x N int32 action map
  (4N^2 B per env, copied every step), the observation is always the dense N x N float one-hot (qfleet
  writes a 4-byte state index by default; the obs=dense column writes the same N^2 floats), and every step
  draws a normal and a uniform (the stochastic variant's noise) and computes a full reset state that
  `select` then discards unless the episode ended. The action map itself differs (gymnax: Bernoulli from
  `jax.random.key(0)`; bsuite and qfleet: seed 42 with their own generators) — same distribution, no effect
  on speed.
- CartPole-v1: same Euler equations in float32, same thresholds, truncation at 500 steps, 4-float
  observation on both sides.
- bsuite / dm_env spend one extra `step()` call per episode on the reset; gymnax and qfleet do not, so
  their steps/s count transitions alike.
- qfleet draws actions and resets only where needed; gymnax computes the reset branch for every env every
  step (vmap of `select`). That is how gymnax auto-resets, so it is counted.
- gymnax's env params are closed over as compile-time constants here. Passed as a traced argument (as in
  gymnax's README, `--params-arg`), DeepSea's reset can no longer drop its `sample_action_map` branch and
  draws a fresh random N x N map per env per step: about 15x slower in a one-off check while writing this
  script (1 device, E=16384: 0.9 M vs 13.7 M steps/s). CartPole is barely affected.
- PRNG: the main table uses jax's default threefry2x32 keys (what gymnax users get); the variant column
  uses another key implementation for the whole rollout. Other XLA flags were left at their defaults.
"""


if __name__ == "__main__":
    sys.exit(main())
