"""Accuracy-reward throughput on the MATH-500 golds: one process vs all cores.

Each of the 500 reference answers is put in a completion's ``<answer>`` and graded by the
``accuracy`` reward, in this process (``processes=1``) and on a process pool over every core
(``processes=0``). Every measurement runs in a fresh interpreter, so it is the cold, first-pass
cost of grading a benchmark once, as an evaluate or generate stage does: math-verify's lazy
set-up and parse caches start empty in both settings. Before the clock starts, both settings
import math-verify and grade one trivial pair (the pool: in every worker, after spawning them).
Every completion must score 1.0 or the bench fails. The figures printed are medians of
``--repeat`` runs; CPU seconds (this process and its pool) are printed too, because on a busy
machine wall-clock time says more about the neighbours than about the grader.

    .venv/bin/python bench/rewards.py [--repeat N] [--benchmarks DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds() -> float:
    """CPU time of this process and all its descendants (the pool's forkserver and workers)."""
    import psutil

    procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def measure(processes: int, benchmarks: Path) -> tuple[float, float]:
    """(wall, CPU) seconds to grade the 500 golds with ``processes``, in a fresh interpreter."""
    sys.path.insert(0, str(ROOT))
    from pipeline import rewards
    from pipeline.rewards import grade_batch

    with open(benchmarks / "math500.jsonl") as fh:
        golds = [json.loads(line)["answer"] for line in fh if line.strip()]
    completions = [f"<think>Worked out.</think><answer>{g}</answer>" for g in golds]
    accuracy = rewards.get("accuracy", processes=processes)
    # Same pre-clock set-up in both settings: import math-verify and grade one trivial pair (the
    # pool: start its workers and have each do so).
    grade_batch([("1", "1")] * (1 if processes == 1 else 4 * (os.cpu_count() or 1)), processes)
    cpu, start = cpu_seconds(), time.perf_counter()
    scores = accuracy(None, completions, answer=golds)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    wrong = sum(1 for s in scores if s != 1.0)
    if wrong:
        raise SystemExit(f"processes={processes}: {wrong} of {len(golds)} golds did not score 1.0")
    return wall, cpu


def run_fresh(processes: int, benchmarks: Path) -> tuple[float, float]:
    cmd = [sys.executable, __file__, "--measure", str(processes), "--benchmarks", str(benchmarks)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr or done.stdout)
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def main() -> None:
    default_dir = os.environ.get("R1STUDIO_BENCHMARKS_DIR", ROOT.parent / "shared" / "benchmarks")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmarks", type=Path, default=Path(default_dir))
    ap.add_argument("--repeat", type=int, default=3, help="fresh runs per setting (median kept)")
    ap.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # internal: one measurement
    args = ap.parse_args()

    if args.measure is not None:
        print(*measure(args.measure, args.benchmarks))
        return

    n, cores = 500, os.cpu_count() or 1
    runs: dict[int, list[tuple[float, float]]] = {1: [], 0: []}
    for _ in range(args.repeat):  # interleaved, so a burst of other work hits both settings
        for processes in (1, 0):
            runs[processes].append(run_fresh(processes, args.benchmarks))
    results = {
        p: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r))
        for p, r in runs.items()
    }
    (one, one_cpu), (every, every_cpu) = results[1], results[0]
    print(f"accuracy reward on the MATH-500 golds ({n} completions, cold caches, {cores} cores)")
    print(f"  1 process : {n / one:8.1f} completions/s  ({one:.2f} s wall, {one_cpu:.2f} s CPU)")
    print(
        f"  {cores:>2} cores  : {n / every:8.1f} completions/s  "
        f"({every:.2f} s wall, {every_cpu:.2f} s CPU)"
    )
    print(f"  speed-up  : {one / every:8.2f}x")
    # On a machine shared with other work the wall-clock speed-up understates the pool: the CPU
    # figures show what grading itself costs in each setting.
    print(f"  load avg  : {os.getloadavg()[0]:8.2f}  (other work competing for the {cores} cores)")


if __name__ == "__main__":
    main()
