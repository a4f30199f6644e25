"""Reads for evaluation results: the leaderboard per benchmark and one result's problems.

Each result says which model was evaluated (`EvalModel`): a run's own model at a step when a
run evaluates while it trains (RL's periodic eval), else the evaluate run's `model.path`, traced
back to the run that wrote it when the path is one of its checkpoints or lies in its run folder.
The step of that checkpoint places the result on the Benchmarks page's pass@1-over-steps chart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from django.db.models import F

from r1studio.evals.models import EvalResult
from r1studio.runs.models import Checkpoint, Run
from r1studio.runs.selectors import runs_visible_to
from r1studio.traces.models import Trace

_CHECKPOINT_STEP = re.compile(r"checkpoint-(\d+)$")


@dataclass(frozen=True)
class EvalModel:
    """The model a result evaluated: its path, the run that produced it (None: not a run's
    output, or a run the user may not see) and that run's step (None: unknown)."""

    path: str
    run: Run | None
    step: int | None
    during_run: bool = False


def eval_models(*, results: list[EvalResult], user: Any) -> dict[int, EvalModel]:
    """`{result id: EvalModel}` for these results, in three queries whatever their number."""
    paths = {}
    for result in results:
        if result.run.kind != Run.Kind.EVALUATE:
            continue
        model = result.run.config.get("model") if isinstance(result.run.config, dict) else None
        paths[result.pk] = str((model or {}).get("path") or "")
    wanted = {p for p in paths.values() if p}
    parents = {str(parent) for p in wanted for parent in PurePath(p).parents} | wanted
    visible = runs_visible_to(user=user)
    checkpoints = {
        c.path: c
        for c in Checkpoint.objects.filter(path__in=wanted, run__in=visible).select_related("run")
    }
    by_dir = {r.run_dir: r for r in visible.filter(run_dir__in=parents).exclude(run_dir="")}
    models: dict[int, EvalModel] = {}
    for result in results:
        if result.pk not in paths:
            models[result.pk] = EvalModel(result.run.run_dir, result.run, result.step, True)
        else:
            models[result.pk] = _producer(paths[result.pk], checkpoints, by_dir)
    return models


def _producer(path: str, checkpoints: dict[str, Checkpoint], by_dir: dict[str, Run]) -> EvalModel:
    if path in checkpoints:
        checkpoint = checkpoints[path]
        return EvalModel(path, checkpoint.run, checkpoint.step)
    pure = PurePath(path) if path else None
    for folder in [pure, *pure.parents] if pure else []:
        run = by_dir.get(str(folder))
        if run is None:
            continue
        match = _CHECKPOINT_STEP.search(pure.name)
        step = int(match.group(1)) if match else run.step if pure.name == "final" else None
        return EvalModel(path, run, step)
    return EvalModel(path, None, None)


def eval_leaderboards(*, user: Any) -> list[dict[str, Any]]:
    """`[{"benchmark", "results": [...], "chart": {...}}]`: each benchmark's results, best
    pass@1 first, each with its `model` (`EvalModel`); `chart` holds pass@1 over checkpoint
    steps, one line per producing run (or per model path when no run produced it)."""
    results = list(
        EvalResult.objects.filter(run__in=runs_visible_to(user=user))
        .select_related("run")
        # nulls_last: PostgreSQL sorts NULL first in a descending order, SQLite last.
        .order_by("benchmark", F("pass_at_1").desc(nulls_last=True), "-step", "-id")
    )
    models = eval_models(results=results, user=user)
    boards: dict[str, list[EvalResult]] = {}
    for result in results:
        result.model = models[result.pk]
        boards.setdefault(result.benchmark, []).append(result)
    return [
        {"benchmark": name, "results": rows, "chart": _chart(name, rows)}
        for name, rows in boards.items()
    ]


def _chart(benchmark: str, results: list[EvalResult]) -> dict[str, Any]:
    lines: dict[str, dict[str, list]] = {}
    for result in sorted(results, key=lambda r: (r.model.step or 0, r.pk)):
        if result.pass_at_1 is None:
            continue
        producer = result.model.run
        key = f"#{producer.pk} {producer.name}" if producer else result.model.path or "model"
        line = lines.setdefault(key, {"steps": [], "values": []})
        line["steps"].append(result.model.step or 0)
        line["values"].append(result.pass_at_1)
    return {
        "benchmark": benchmark,
        "lines": [{"label": label, **points} for label, points in lines.items()],
    }


def eval_result_for_user(*, user: Any, result_id: int) -> EvalResult | None:
    """The result when it exists and `user` may see its run."""
    return (
        EvalResult.objects.filter(pk=result_id, run__in=runs_visible_to(user=user))
        .select_related("run")
        .first()
    )


def eval_result_problems(*, result: EvalResult) -> list[dict[str, Any]]:
    """The result's problems, each with its sampled completions (traces) and how many passed."""
    traces = Trace.objects.filter(
        run_id=result.run_id,
        source=Trace.Source.EVAL,
        benchmark=result.benchmark,
        step=result.step,
    ).order_by("position", "id")
    problems: dict[str, dict[str, Any]] = {}
    for trace in traces:
        problem = problems.setdefault(
            trace.prompt_hash,
            {"prompt": trace.prompt, "reference": trace.reference, "traces": [], "correct": 0},
        )
        problem["traces"].append(trace)
        problem["correct"] += bool(trace.correct)
    return list(problems.values())
