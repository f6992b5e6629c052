#!/usr/bin/env python3
"""readme_examples.py [QFLEET] — regenerate the example outputs shown in README.md.

Each example is a command run as a user would run it (the real binary, a fresh results folder); its
output replaces the text between `<!-- example:NAME -->` and `<!-- /example:NAME -->` in README.md,
headed by the machine it came from (CPU model, cores, backend line, date) and the wall time. Run it
on an idle machine: the times are part of what it shows. Progress lines (stderr when not a terminal)
are left out with --quiet; everything else is printed as the command prints it.
"""
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QFLEET = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "qfleet")

# name -> (words, what the README shows)
EXAMPLES = {
    "main": (["--quiet"], "the main job: `./run.sh` (here `qfleet --quiet`, which leaves out the progress line)"),
    "sweep-dry-run": (["sweep", "examples/deep_sea_exploration.yaml", "--dry-run"],
                      "`qfleet sweep examples/deep_sea_exploration.yaml --dry-run`"),
    "sweep": (["sweep", "examples/deep_sea_exploration.yaml", "--quiet"],
              "`qfleet sweep examples/deep_sea_exploration.yaml --quiet`"),
}


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores" % (model, os.cpu_count() or 0)


def run(words, tmp):
    out = os.path.join(tmp, "out")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [QFLEET] + words + ([] if "--dry-run" in words else ["out=" + out])
    t0 = time.time()
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    took = time.time() - t0
    if p.returncode != 0:
        sys.exit("readme_examples: %s exited %d:\n%s" % (" ".join(cmd), p.returncode, p.stdout))
    text = p.stdout.replace(out, "results/FOLDER")
    return text.rstrip("\n"), took


def main():
    if not os.access(QFLEET, os.X_OK):
        sys.exit("readme_examples: %s is not an executable (build first: ./test.sh or cmake --build build)" % QFLEET)
    readme_path = os.path.join(ROOT, "README.md")
    with open(readme_path) as f:
        readme = f.read()
    stamp = datetime.date.today().isoformat()
    with tempfile.TemporaryDirectory() as tmp:
        for name, (words, what) in EXAMPLES.items():
            begin, end = "<!-- example:%s -->" % name, "<!-- /example:%s -->" % name
            if begin not in readme or end not in readme:
                sys.exit("readme_examples: README.md has no %s ... %s markers" % (begin, end))
            text, took = run(words, tmp)
            block = "%s\n%s on %s, %s (%.0f s of wall time; scripts/readme_examples.py):\n\n```\n%s\n```\n%s" % (
                begin, what, machine(), stamp, took, text, end)
            readme = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, readme, flags=re.S)
            print("readme_examples: %s: %.1f s" % (name, took))
    with open(readme_path + ".tmp", "w") as f:
        f.write(readme)
    os.replace(readme_path + ".tmp", readme_path)


if __name__ == "__main__":
    main()
