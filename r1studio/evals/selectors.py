"""Reads for evaluation results: the leaderboard per benchmark and one result's problems."""

from __future__ import annotations

from typing import Any

from django.db.models import F

from r1studio.evals.models import EvalResult
from r1studio.runs.selectors import runs_visible_to
from r1studio.traces.models import Trace


def eval_leaderboards(*, user: Any) -> list[dict[str, Any]]:
    """`[{"benchmark", "results": [...]}]`: each benchmark's results, best pass@1 first."""
    results = (
        EvalResult.objects.filter(run__in=runs_visible_to(user=user))
        .select_related("run")
        # nulls_last: PostgreSQL sorts NULL first in a descending order, SQLite last.
        .order_by("benchmark", F("pass_at_1").desc(nulls_last=True), "-step", "-id")
    )
    boards: dict[str, list[EvalResult]] = {}
    for result in results:
        boards.setdefault(result.benchmark, []).append(result)
    return [{"benchmark": name, "results": rows} for name, rows in boards.items()]


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
