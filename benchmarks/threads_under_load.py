#!/usr/bin/env python3
"""threads_under_load.py [--repeats N] — the CPU backend's team size on a busy machine (issue 11).

One K=10 bootstrap fleet (DeepSea-20, MLP 50-50, 64 runs) is trained with threads=1, threads=<all
cores> and threads=0 (auto: probes pick one thread or all cores), interleaved, first on the machine as
it is, then beside busy loops that hold all cores but one (at least one loop). Prints wall seconds and
the ratio to threads=1. Results do not depend on the thread count (tested in test_batch/test_learn);
only the time does. Needs a build in build/ (./run.sh or ./test.sh once)."""
import argparse, multiprocessing, os, re, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = ("train backend=cpu env=deep_sea env.size=20 explore=bootstrap heads=10 hidden=[50,50] runs=64 "
         "steps=600 learning_starts=200 log_every=600").split()


def busy():
    while True:
        pass


def one(binary, threads, out):
    t0 = time.perf_counter()
    p = subprocess.run([binary] + WORDS + [f"threads={threads}", f"out={out}"], capture_output=True, text=True,
                       env=dict(os.environ, GOMP_SPINCOUNT=os.environ.get("GOMP_SPINCOUNT", "3000")))
    dt = time.perf_counter() - t0
    if p.returncode:
        sys.exit(p.stderr)
    m = re.search(r"one thread was faster in (\d+) of (\d+) probes", p.stderr)
    return dt, (m.group(1) + "/" + m.group(2)) if m else ""


def measure(binary, label, reps, cores, out):
    teams = [1, cores, 0]
    wall = {t: [] for t in teams}
    picks = []
    for _ in range(reps):
        for t in teams:
            dt, pick = one(binary, t, out)
            wall[t].append(dt)
            if pick:
                picks.append(pick)
    base = sum(wall[1]) / reps
    for t in teams:
        m = sum(wall[t]) / reps
        name = "auto" if t == 0 else str(t)
        extra = f"  (one thread chosen in {', '.join(picks)} probes)" if t == 0 else ""
        print(f"| {label} | threads={name} | {m:.2f} s | {m / base:.2f}x |{extra}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "qfleet"))
    a = ap.parse_args()
    cores = os.cpu_count() or 1
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"qfleet threads under load: {model}, {cores} cores, {a.repeats} interleaved repeats; fleet: {' '.join(WORDS)}")
    print("| machine | team | wall per fleet | vs threads=1 |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        measure(a.bin, f"as is (load {os.getloadavg()[0]:.1f})", a.repeats, cores, os.path.join(d, "r"))
        hogs = [multiprocessing.Process(target=busy, daemon=True) for _ in range(max(1, cores - 1))]
        for h in hogs:
            h.start()
        try:
            time.sleep(1)
            measure(a.bin, f"beside {len(hogs)} busy loop(s)", a.repeats, cores, os.path.join(d, "r"))
        finally:
            for h in hogs:
                h.terminate()


if __name__ == "__main__":
    main()
