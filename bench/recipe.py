"""The whole DeepSeek-R1 recipe on the toy task, through the CLI, with held-out figures per stage.

Builds the toy assets (``python -m pipeline toy``), then runs every ``recipe/NN-*.yaml`` in order
with ``python -m pipeline run`` (one subprocess per stage, as the studio's supervisor does), and
after each training stage measures greedy accuracy and the think-first rate of its final model
on the held-out problems (never trained on). Prints a table and checks the targets, each
printed PASS or FAIL; the script exits 1 when a stage fails or a target is missed. Every stage
must finish; at demo size the whole recipe takes <= 5 min, R1-Zero reaches >= 80%, the final
SFT >= 95% and the distilled student >= 80% (``TARGETS``); at test size, where the margins are
small, R1-Zero must raise both the accuracy and the think-first rate of the base model.

    .venv/bin/python bench/recipe.py                 # demo size, a few minutes
    .venv/bin/python bench/recipe.py --size test     # seconds, smaller margins
    .venv/bin/python bench/recipe.py --dir var/bench-recipe --keep
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _checks import verdict  # noqa: E402

import pipeline  # noqa: E402,F401  (sets OMP_WAIT_POLICY before torch loads)

TARGETS = {"recipe_seconds": 300, "01-r1-zero": 0.80, "06-sft": 0.95, "08-student-sft": 0.80}


def cli(*args: str) -> tuple[int, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        print(proc.stdout[-4000:])
    return proc.returncode, elapsed


def heldout_figures(model_dir: Path, heldout: list[dict]) -> tuple[float, float]:
    """Greedy held-out accuracy and think-first rate of a saved model."""
    from pipeline.stages.common import quiet_libraries
    from pipeline.stages.evaluate import heldout_figures as figures

    quiet_libraries()
    metrics = figures(model_dir, heldout)
    return metrics["pass@1"], metrics["think_first"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=["demo", "test"], default="demo")
    parser.add_argument("--dir", help="work folder (default: a temp folder, removed at the end)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)

    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="r1-recipe-"))
    toy, runs = work / "toy", work / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    load = os.getloadavg()[0]
    print(f"work folder: {work}  (size {args.size}, {os.cpu_count()} cores, load {load:.1f})")

    code, toy_seconds = cli("toy", str(toy), "--size", args.size)
    if code:
        print("toy build failed")
        return verdict([(f"toy build (exit {code})", False)])
    print(f"toy build (pretraining the base): {toy_seconds:.1f}s")
    heldout = [json.loads(line) for line in (toy / "data" / "heldout.jsonl").open()]

    rows = []
    base_acc, base_think = heldout_figures(toy / "models" / "base", heldout)
    rows.append(("base model", 0.0, base_acc, base_think, ""))
    student_acc, student_think = heldout_figures(toy / "models" / "student-base", heldout)
    rows.append(("student base (untrained)", 0.0, student_acc, student_think, ""))

    recipe_seconds = 0.0
    figures: dict[str, tuple[float, float]] = {}
    configs = sorted((toy / "recipe").glob("*.yaml"))
    finished = 0
    for config in configs:
        name = config.stem
        run_dir = runs / name
        code, seconds = cli("run", str(config), "--run-dir", str(run_dir))
        recipe_seconds += seconds
        if code:
            print(f"{name} failed (exit {code}); see {run_dir}/events.jsonl")
            rows.append((name, seconds, None, None, f"FAILED exit {code}"))
            break
        finished += 1
        note, acc, think = "", None, None
        if (run_dir / "final").is_dir():
            acc, think = heldout_figures(run_dir / "final", heldout)
            figures[name] = acc, think
        elif (run_dir / "dataset").is_dir():
            kept = sum(1 for _ in (run_dir / "dataset" / "data.jsonl").open())
            note = f"{kept} rows kept"
        elif (run_dir / "eval" / "results.json").is_file():
            results = json.loads((run_dir / "eval" / "results.json").read_text())
            note = ", ".join(
                f"{bench}: pass@1 {m['pass@1']:.1%}, cons@4 {m.get('cons@4', 0):.1%}"
                for bench, m in results.items()
            )
        rows.append((name, seconds, acc, think, note))

    print()
    print(f"{'stage':28} {'time':>7} {'held-out acc':>13} {'think-first':>12}  note")
    for name, seconds, acc, think, note in rows:
        acc_s = "" if acc is None else f"{acc:.1%}"
        think_s = "" if think is None else f"{think:.1%}"
        time_s = f"{seconds:.1f}s" if seconds else ""
        print(f"{name:28} {time_s:>7} {acc_s:>13} {think_s:>12}  {note}")
    print(
        f"\nwhole recipe (9 stages, CLI subprocesses): {recipe_seconds:.1f}s;"
        f" plus toy build {toy_seconds:.1f}s; load average now {os.getloadavg()[0]:.1f}"
        " (times grow with other processes on the same cores)"
    )

    checks = [(f"every stage finished ({finished} of {len(configs)})", finished == len(configs))]
    zero_acc, zero_think = figures.get("01-r1-zero", (0.0, 0.0))
    if args.size == "demo":
        seconds = TARGETS["recipe_seconds"]
        checks.append((f"whole recipe <= {seconds / 60:.0f} min", recipe_seconds <= seconds))
        for stage, label in (
            ("01-r1-zero", "R1-Zero"),
            ("06-sft", "final SFT"),
            ("08-student-sft", "student"),
        ):
            target = TARGETS[stage]
            acc = figures.get(stage, (0.0, 0.0))[0]
            checks.append((f"{label} held-out accuracy >= {target:.0%}", acc >= target))
    else:
        checks.append(("R1-Zero raises the held-out accuracy", zero_acc > base_acc))
        checks.append(("R1-Zero raises the think-first rate", zero_think > base_think))
    status = verdict(checks)

    if not args.dir and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    elif args.keep or args.dir:
        print(f"kept: {work}")
    return status


if __name__ == "__main__":
    sys.exit(main())
