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

Targets (checked, printed PASS or FAIL; the script exits 1 when one fails): every gold scores
1.0, and grading costs at most 1/``MIN_COMPLETIONS_PER_CPU_S`` CPU seconds a completion in each
setting, so an evaluate stage spends a few seconds grading a benchmark of this size. The target
is on CPU time, which neighbours do not inflate; the wall-clock figures are printed alone.

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

from _checks import verdict

ROOT = Path(__file__).resolve().parents[1]
MIN_COMPLETIONS_PER_CPU_S = 200  # both settings; measured ~340 and ~300 per CPU second


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


def measure(processes: int, benchmarks: Path) -> tuple[float, float, int]:
    """(wall, CPU) seconds to grade the 500 golds with ``processes`` and how many did not score
    1.0, in a fresh interpreter."""
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
    return wall, cpu, sum(1 for s in scores if s != 1.0)


def run_fresh(processes: int, benchmarks: Path) -> tuple[float, float, int]:
    cmd = [sys.executable, __file__, "--measure", str(processes), "--benchmarks", str(benchmarks)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr or done.stdout)
    wall, cpu, wrong = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu), int(wrong)


def main() -> int:
    default_dir = os.environ.get("R1STUDIO_BENCHMARKS_DIR", ROOT.parent / "shared" / "benchmarks")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmarks", type=Path, default=Path(default_dir))
    ap.add_argument("--repeat", type=int, default=3, help="fresh runs per setting (median kept)")
    ap.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # internal: one measurement
    args = ap.parse_args()

    if args.measure is not None:
        print(*measure(args.measure, args.benchmarks))
        return 0
    if not (args.benchmarks / "math500.jsonl").is_file():
        print(f"FAIL  no math500.jsonl in {args.benchmarks} (--benchmarks)")
        return 1

    n, cores = 500, os.cpu_count() or 1
    runs: dict[int, list[tuple[float, float, int]]] = {1: [], 0: []}
    for _ in range(args.repeat):  # interleaved, so a burst of other work hits both settings
        for processes in (1, 0):
            runs[processes].append(run_fresh(processes, args.benchmarks))
    results = {
        p: (statistics.median(w for w, _, _ in r), statistics.median(c for _, c, _ in r))
        for p, r in runs.items()
    }
    wrong = max(w for r in runs.values() for _, _, w in r)
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
    floor = MIN_COMPLETIONS_PER_CPU_S
    return verdict(
        [
            (f"every gold scores 1.0 ({wrong} did not)", wrong == 0),
            (f"1 process >= {floor} completions per CPU second", n / one_cpu >= floor),
            (f"{cores} cores >= {floor} completions per CPU second", n / every_cpu >= floor),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
