"""The whole DeepSeek-R1 toy recipe through the studio and through the CLI, with held-out figures.

Builds the toy assets (``python -m pipeline toy``), runs every ``recipe/NN-*.yaml`` in order with
``python -m pipeline run`` (one subprocess per stage: the CLI reference), then launches the same
recipe **through the studio** — a fresh database, an embedded Redis, one Celery worker and the
web server as ``manage.py studio`` starts them; ``POST /api/recipes {"preset": "toy"}``, launch,
poll — and after each training stage measures greedy accuracy and the think-first rate of its
final model on the held-out problems (never trained on). Prints a table per way and checks the
targets, each printed PASS or FAIL; exits 1 when a stage fails or a target is missed. Studio
mode (default) at demo size: the studio's whole recipe within 1.10x of the CLI's, R1-Zero
>= 80%, the final SFT >= 95% and the distilled student >= 95% (``STUDIO_TARGETS``); CLI mode
keeps the CLI's own targets (``TARGETS``). At test size, R1-Zero must raise both the accuracy
and the think-first rate of the base model.

    .venv/bin/python bench/recipe.py                         # demo size: CLI, then studio
    .venv/bin/python bench/recipe.py --cli-reference 205     # studio only, against 205 s
    .venv/bin/python bench/recipe.py --mode cli              # the CLI only
    .venv/bin/python bench/recipe.py --size test             # seconds, smaller margins
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
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _checks import verdict  # noqa: E402

import pipeline  # noqa: E402,F401  (sets OMP_WAIT_POLICY before torch loads)

TARGETS = {"recipe_seconds": 300, "01-r1-zero": 0.80, "06-sft": 0.95, "08-student-sft": 0.80}
# Through the studio (issue 12): the whole recipe within 1.10x of the same stages by the CLI.
STUDIO_TARGETS = {"overhead": 1.10, "01-r1-zero": 0.80, "06-sft": 0.95, "08-student-sft": 0.95}
CLI_REFERENCE_SECONDS = 205.0  # the CLI's whole recipe on this kind of machine (issue 12)
LABELS = {"01-r1-zero": "R1-Zero", "06-sft": "final SFT", "08-student-sft": "student"}


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


def stage_row(name: str, seconds: float, run_dir: Path, heldout: list[dict]) -> tuple:
    """(name, seconds, accuracy, think-first, note) of a finished stage from its run folder."""
    note, acc, think = "", None, None
    if (run_dir / "final").is_dir():
        acc, think = heldout_figures(run_dir / "final", heldout)
    elif (run_dir / "dataset").is_dir():
        kept = sum(1 for _ in (run_dir / "dataset" / "data.jsonl").open())
        note = f"{kept} rows kept"
    elif (run_dir / "eval" / "results.json").is_file():
        results = json.loads((run_dir / "eval" / "results.json").read_text())
        note = ", ".join(
            f"{bench}: pass@1 {m['pass@1']:.1%}, cons@4 {m.get('cons@4', 0):.1%}"
            for bench, m in results.items()
        )
    return name, seconds, acc, think, note


def print_table(rows: list[tuple]) -> None:
    print(f"\n{'stage':28} {'time':>7} {'held-out acc':>13} {'think-first':>12}  note")
    for name, seconds, acc, think, note in rows:
        acc_s = "" if acc is None else f"{acc:.1%}"
        think_s = "" if think is None else f"{think:.1%}"
        time_s = f"{seconds:.1f}s" if seconds else ""
        print(f"{name:28} {time_s:>7} {acc_s:>13} {think_s:>12}  {note}")


def run_cli(toy: Path, runs: Path, heldout: list[dict]) -> tuple[list[tuple], float, int, int]:
    """Every recipe/NN-*.yaml in order, one `python -m pipeline run` each:
    (rows, seconds, stages finished, stages)."""
    rows, seconds_total, finished = [], 0.0, 0
    configs = sorted((toy / "recipe").glob("*.yaml"))
    for config in configs:
        name = config.stem
        run_dir = runs / name
        code, seconds = cli("run", str(config), "--run-dir", str(run_dir), "--runs-root", str(runs))
        seconds_total += seconds
        if code:
            print(f"{name} failed (exit {code}); see {run_dir}/events.jsonl")
            rows.append((name, seconds, None, None, f"FAILED exit {code}"))
            break
        finished += 1
        rows.append(stage_row(name, seconds, run_dir, heldout))
        print(f"  {name}: {seconds:.1f}s {rows[-1][4]}")
    return rows, seconds_total, finished, len(configs)


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def run_studio(work: Path, data: Path, heldout: list[dict]) -> tuple[list[tuple], float, int, int]:
    """The toy recipe through the studio: `POST /api/recipes {"preset": "toy"}`, launch, poll
    until it ends; (rows, recipe wall seconds, stages finished, stages)."""
    from _studio import Studio

    studio = Studio(work, data)
    try:
        studio.start()
        recipe = studio.api("POST", "/recipes", {"preset": "toy"})
        recipe = studio.api("POST", f"/recipes/{recipe['id']}/launch")
        seen: dict[str, str] = {}
        while recipe["status"] in ("running", "waiting"):
            for stage in recipe["stages"]:
                if seen.get(stage["key"]) != stage["status"]:
                    seen[stage["key"]] = stage["status"]
                    print(f"  {time.strftime('%H:%M:%S')} {stage['key']}: {stage['status']}")
            time.sleep(1.0)
            recipe = studio.api("GET", f"/recipes/{recipe['id']}")
        print(f"  recipe {recipe['status']} {recipe['error']}")
        rows, finished = [], 0
        for stage in recipe["stages"]:
            if stage["kind"] == "gate":
                finished += stage["status"] in ("finished", "skipped")
                rows.append((stage["key"], 0.0, None, None, f"gate {stage['status']}"))
                continue
            if stage["status"] != "finished" or not stage["run"]:
                rows.append((stage["key"], 0.0, None, None, f"{stage['status']}: {stage['error']}"))
                continue
            finished += 1
            run = studio.api("GET", f"/runs/{stage['run']}")
            seconds = _seconds(run["started_at"], run["finished_at"])
            rows.append(stage_row(stage["key"], seconds, Path(run["run_dir"]), heldout))
        wall = _seconds(recipe["started_at"], recipe["finished_at"])
        return rows, wall, finished, len(recipe["stages"])
    finally:
        studio.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=["demo", "test"], default="demo")
    parser.add_argument(
        "--mode",
        choices=["studio", "cli"],
        default="studio",
        help="studio: the CLI reference, then the same recipe through the studio (default); "
        "cli: the CLI only",
    )
    parser.add_argument(
        "--cli-reference",
        type=float,
        help=f"skip the CLI run in studio mode and compare with these seconds "
        f"(the issue's figure: {CLI_REFERENCE_SECONDS:.0f})",
    )
    parser.add_argument("--dir", help="work folder (default: a temp folder, removed at the end)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)

    work = Path(args.dir).resolve() if args.dir else Path(tempfile.mkdtemp(prefix="r1-recipe-"))
    data = work / "data"
    toy, runs = data / "toy", work / "runs"
    for old in (runs, data / "runs", work / "studio.sqlite3"):
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    load = os.getloadavg()[0]
    print(f"work folder: {work}  (size {args.size}, {os.cpu_count()} cores, load {load:.1f})")

    if not (toy / "recipe").is_dir():
        code, toy_seconds = cli("toy", str(toy), "--size", args.size)
        if code:
            print("toy build failed")
            return verdict([(f"toy build (exit {code})", False)])
        print(f"toy build (pretraining the base): {toy_seconds:.1f}s")
    heldout = [json.loads(line) for line in (toy / "data" / "heldout.jsonl").open()]
    base_rows = [
        ("base model", 0.0, *heldout_figures(toy / "models" / "base", heldout), ""),
        ("student base (untrained)", 0.0, *heldout_figures(toy / "models" / "student-base", heldout), ""),
    ]  # fmt: skip
    base_acc, base_think = base_rows[0][2], base_rows[0][3]

    checks: list[tuple[str, bool]] = []
    cli_seconds = args.cli_reference
    if args.mode == "cli" or cli_seconds is None:
        print("\nthe recipe through the CLI (one subprocess per stage):")
        rows, cli_seconds, finished, total = run_cli(toy, runs, heldout)
        print_table(base_rows + rows)
        print(f"\nwhole recipe ({total} stages, CLI subprocesses): {cli_seconds:.1f}s")
        checks.append((f"CLI: every stage finished ({finished} of {total})", finished == total))
        figures = {row[0]: (row[2] or 0.0, row[3] or 0.0) for row in rows}
        if args.mode == "cli":
            checks += cli_checks(args.size, cli_seconds, figures, base_acc, base_think)
    if args.mode == "studio":
        print("\nthe same recipe through the studio (API, a Celery worker, the database):")
        rows, seconds, finished, total = run_studio(work, data, heldout)
        print_table(base_rows + rows)
        ratio = seconds / cli_seconds if cli_seconds else float("inf")
        print(
            f"\nwhole recipe through the studio: {seconds:.1f}s, {ratio:.2f}x the CLI's "
            f"{cli_seconds:.1f}s; load average now {os.getloadavg()[0]:.1f}"
        )
        figures = {row[0]: (row[2] or 0.0, row[3] or 0.0) for row in rows}
        checks.append((f"studio: every stage finished ({finished} of {total})", finished == total))
        if args.size == "demo":
            overhead = STUDIO_TARGETS["overhead"]
            checks.append((f"studio recipe <= {overhead:.2f}x the CLI", ratio <= overhead))
            for stage, label in LABELS.items():
                target = STUDIO_TARGETS[stage]
                checks.append(
                    (
                        f"{label} held-out accuracy >= {target:.0%}",
                        figures.get(stage, (0, 0))[0] >= target,
                    )
                )
        else:
            zero_acc, zero_think = figures.get("01-r1-zero", (0.0, 0.0))
            checks.append(("R1-Zero raises the held-out accuracy", zero_acc > base_acc))
            checks.append(("R1-Zero raises the think-first rate", zero_think > base_think))
    status = verdict(checks)

    if not args.dir and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept: {work}")
    return status


def cli_checks(
    size: str, seconds: float, figures: dict, base_acc: float, base_think: float
) -> list[tuple[str, bool]]:
    """The CLI mode's targets (TARGETS at demo size; R1-Zero learning at test size)."""
    if size != "demo":
        zero_acc, zero_think = figures.get("01-r1-zero", (0.0, 0.0))
        return [
            ("R1-Zero raises the held-out accuracy", zero_acc > base_acc),
            ("R1-Zero raises the think-first rate", zero_think > base_think),
        ]
    checks = [
        (
            f"whole recipe <= {TARGETS['recipe_seconds'] / 60:.0f} min",
            seconds <= TARGETS["recipe_seconds"],
        )
    ]
    for stage, label in LABELS.items():
        target = TARGETS[stage]
        acc = figures.get(stage, (0.0, 0.0))[0]
        checks.append((f"{label} held-out accuracy >= {target:.0%}", acc >= target))
    return checks


if __name__ == "__main__":
    sys.exit(main())
