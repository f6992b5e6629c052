#!/usr/bin/env python3
"""cuda_resources.py — the static resource check of the CUDA backend (CI): compiles kernels/cuda/*.cu
with nvcc for each architecture the build targets, with `-Xptxas -v,-warn-spills,-warn-lmem-usage`,
prints a report per kernel (registers, shared memory, local-memory stack frame, spills) and fails when
 - ptxas warns (warnings are errors), except a local-memory frame listed in ALLOWED_STACK below,
 - a kernel spills registers,
 - registers x threads per block > 65,536 (the register file of an SM; every backend kernel is
   launched with 256 threads: kBlock in kernels/cuda/cuda_impl.h),
 - static shared memory > 48 KiB (the limit without an opt-in).
No GPU is needed: ptxas reports what it allocated. Exit 0 when every check holds, 1 otherwise, 2 when
nvcc is missing. Usage: scripts/cuda_resources.py [REPORT_FILE]
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ["backend_cuda.cu", "learn_cuda.cu", "explore_cuda.cu", "bandit_cuda.cu", "solve_cuda.cu"]
ARCHS = ["80", "86", "90"]  # CMAKE_CUDA_ARCHITECTURES' default: 80-real;86-real;90
THREADS_PER_BLOCK = 256
REG_FILE = 65536
SMEM_LIMIT = 48 * 1024

# Kernels whose per-thread arrays are indexed at run time, so their stack frame stays (bytes: the most
# allowed on any architecture, and why). Local memory is cached in L1; these arrays are small.
ALLOWED_STACK = {
    "bandit_step_kernel": (1024, "per-arm statistics of one bandit instance (up to QF_MAX_ARMS arms), "
                                 "indexed by the arm each step picks (kernels/bandit_agent.h)"),
    "env_step_kernel": (64, "the env state fields f[QF_NF], i[QF_NI] (envs/qf_common.h), loaded and stored "
                            "by loops over fields whose count depends on the env kind"),
    "env_reset_kernel": (64, "as env_step_kernel"),
    "solve_sweep_kernel": (192, "the outcomes of one (state, action) of the exact model, up to QF_MAX_OUTCOMES = 5 "
                                "(next state, probability, reward; envs/tabular.h), filled and read by loops over "
                                "their run-time count in the backup shared with control as inference "
                                "(kernels/infer_ops.h); removing it means unrolling per env kind"),
}


def main():
    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None)
    if not nvcc:
        print("cuda_resources: nvcc not found; the static resource check needs the CUDA toolkit", file=sys.stderr)
        return 2
    gencode = []
    for a in ARCHS:
        gencode += ["-gencode", f"arch=compute_{a},code=sm_{a}"]
    rows, problems = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for src in SOURCES:
            cmd = [nvcc, "-c", "--fmad=false", "-I", ROOT, *gencode, "-Xptxas", "-v,-warn-spills,-warn-lmem-usage",
                   os.path.join(ROOT, "kernels", "cuda", src), "-o", os.path.join(tmp, src + ".o")]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                print(res.stdout + res.stderr, file=sys.stderr)
                problems.append(f"{src}: nvcc failed")
                continue
            rows += parse(src, res.stdout + res.stderr, problems)
    names = demangle([r["mangled"] for r in rows])
    for r in rows:
        r["name"] = names[r["mangled"]]
        short = r["name"].split("(")[0]
        if r["spill"]:
            problems.append(f"{short} (sm_{r['arch']}): {r['spill']} bytes of register spills")
        if r["regs"] * THREADS_PER_BLOCK > REG_FILE:
            problems.append(f"{short} (sm_{r['arch']}): {r['regs']} registers x {THREADS_PER_BLOCK} threads > {REG_FILE}")
        if r["smem"] > SMEM_LIMIT:
            problems.append(f"{short} (sm_{r['arch']}): {r['smem']} bytes of shared memory > {SMEM_LIMIT}")
        if r["stack"]:
            allowed = ALLOWED_STACK.get(short)
            if not allowed:
                problems.append(f"{short} (sm_{r['arch']}): {r['stack']}-byte local-memory stack frame (ptxas warning)")
            elif r["stack"] > allowed[0]:
                problems.append(f"{short} (sm_{r['arch']}): stack frame {r['stack']} > the {allowed[0]} bytes allowed")
    lines = ["| kernel | arch | registers | regs x 256 | shared memory | stack frame | spills |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in sorted(rows, key=lambda r: (r["src"], r["name"], r["arch"])):
        short = r["name"].split("(")[0]
        lines.append(f"| {short} ({r['src']}) | sm_{r['arch']} | {r['regs']} | {r['regs'] * THREADS_PER_BLOCK} | "
                     f"{r['smem']} | {r['stack']} | {r['spill']} |")
    lines.append("")
    lines.append("Local-memory frames that stay (checked against the bytes allowed):")
    for k, (b, why) in sorted(ALLOWED_STACK.items()):
        lines.append(f"- {k} (<= {b} bytes): {why}")
    report = "\n".join(lines) + "\n"
    print(report)
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            f.write(report)
    if not rows:
        problems.append("no kernel found in the ptxas output")
    for p in problems:
        print("cuda_resources: FAIL:", p, file=sys.stderr)
    print(f"cuda_resources: {len(rows)} kernel builds checked, {len(problems)} problems")
    return 1 if problems else 0


def parse(src, text, problems):
    rows, cur = [], None
    for line in text.splitlines():
        m = re.search(r"Compiling entry function '([^']+)' for 'sm_(\d+)'", line)
        if m:
            cur = {"src": src, "mangled": m.group(1), "arch": m.group(2), "regs": 0, "smem": 0, "stack": 0, "spill": 0}
            rows.append(cur)
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and cur:
            cur["stack"] = int(m.group(1))
            cur["spill"] = int(m.group(2)) + int(m.group(3))
            continue
        m = re.search(r"Used (\d+) registers", line)
        if m and cur:
            cur["regs"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            cur["smem"] = int(s.group(1)) if s else 0
            continue
        if "warning" in line and "Local memory used" not in line:
            problems.append(f"{src}: {line.strip()}")  # every other ptxas/nvcc warning is an error
    return rows


def demangle(mangled):
    out = subprocess.run(["c++filt"], input="\n".join(mangled), capture_output=True, text=True).stdout.splitlines()
    return dict(zip(mangled, out)) if len(out) == len(mangled) else {m: m for m in mangled}


if __name__ == "__main__":
    sys.exit(main())
