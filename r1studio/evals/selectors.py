"""Reads for evaluation results: the leaderboard per benchmark and one result's problems.

Each result says which model was evaluated (`EvalModel`): a run's own model at a step when a
run evaluates while it trains (RL's periodic eval), else the evaluate run's `model.path`, traced
back to the run that wrote it when the path is one of its checkpoints or lies in its run folder.
The step of that checkpoint places the result on the Benchmarks page's pass@1-over-steps chart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from django.db.models import F

from r1studio.evals.models import EvalResult
from r1studio.evals.precision import result_se, result_warning
from r1studio.evals.reference import BENCHMARK_TITLES, REFERENCES, benchmark_key, references_for
from r1studio.evals.reference import BENCHMARKS as REFERENCE_BENCHMARKS
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


def eval_models(
    *, results: list[EvalResult], user: Any = None, runs: Iterable[Run] | None = None
) -> dict[int, EvalModel]:
    """`{result id: EvalModel}` for these results, in three queries whatever their number.

    The producing run is looked for among the runs `user` may see, or among `runs` when given
    (a recipe's stages, already checked by the caller)."""
    paths = {}
    for result in results:
        if result.run.kind != Run.Kind.EVALUATE:
            continue
        model = result.run.config.get("model") if isinstance(result.run.config, dict) else None
        paths[result.pk] = str((model or {}).get("path") or "")
    wanted = {p for p in paths.values() if p}
    parents = {str(parent) for p in wanted for parent in PurePath(p).parents} | wanted
    if runs is None:
        visible = runs_visible_to(user=user)
    else:
        visible = Run.objects.filter(pk__in=[run.pk for run in runs])
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
        _annotate(result)
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
        # The paper's reported pass@1, drawn as labelled horizontal lines (reference.py).
        "references": references_for(benchmark),
    }


def _annotate(result: EvalResult) -> EvalResult:
    """Give a result its standard error (`se`) and precision warning (`warning`) to show."""
    result.se = result_se(result)
    result.warning = result_warning(result)
    return result


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


def eval_problem_table(*, result: EvalResult) -> list[dict[str, Any]]:
    """One row per problem: id, problem text, n correct of n, majority answer, whether it is
    correct, and `has_traces` (its sampled completions are stored: link the trace group).

    Results stored before per-problem results were reported are read from their traces."""
    traced = set(
        Trace.objects.filter(
            run_id=result.run_id,
            source=Trace.Source.EVAL,
            benchmark=result.benchmark,
            step=result.step,
        ).values_list("prompt_hash", flat=True)
    )
    if result.problems:
        rows = [dict(p) for p in result.problems]
    else:
        rows = [
            {
                "id": str(i),
                "problem": p["prompt"],
                "n_correct": p["correct"],
                "n": len(p["traces"]),
                "majority_answer": None,
                "correct": None,
                "prompt_hash": p["traces"][0].prompt_hash,
            }
            for i, p in enumerate(eval_result_problems(result=result))
        ]
    for row in rows:
        row["has_traces"] = bool(row.get("prompt_hash")) and row["prompt_hash"] in traced
        row["solved"] = _solved(row)
    return rows


def _solved(problem: dict[str, Any]) -> bool:
    """A problem counts as solved when its majority answer (cons@k) is correct; without a
    recorded vote, when at least half of its samples are."""
    if isinstance(problem.get("correct"), bool):
        return problem["correct"]
    n, n_correct = problem.get("n") or 0, problem.get("n_correct") or 0
    return bool(n) and 2 * n_correct >= n


def eval_compare(*, a: EvalResult, b: EvalResult) -> dict[str, Any]:
    """Which problems `a` solves and `b` does not, and the reverse (two results of the same
    benchmark). Problems are matched by their text's hash, else by id; each entry holds both
    sides' rows of `eval_problem_table` (`a`, `b`). Counts: `both`, `neither`, `only_a`,
    `only_b`, `unmatched` (problems only one of the two evaluated)."""
    rows_a = {_match_key(r): r for r in eval_problem_table(result=a)}
    rows_b = {_match_key(r): r for r in eval_problem_table(result=b)}
    only_a, only_b, both, neither = [], [], 0, 0
    for key, row_a in rows_a.items():
        row_b = rows_b.get(key)
        if row_b is None:
            continue
        pair = {"id": row_a["id"], "problem": row_a.get("problem") or "", "a": row_a, "b": row_b}
        if row_a["solved"] and not row_b["solved"]:
            only_a.append(pair)
        elif row_b["solved"] and not row_a["solved"]:
            only_b.append(pair)
        elif row_a["solved"]:
            both += 1
        else:
            neither += 1
    common = set(rows_a) & set(rows_b)
    return {
        "only_a": only_a,
        "only_b": only_b,
        "both": both,
        "neither": neither,
        "common": len(common),
        "unmatched": len(rows_a) + len(rows_b) - 2 * len(common),
    }


def _match_key(row: dict[str, Any]) -> str:
    return f"h:{row['prompt_hash']}" if row.get("prompt_hash") else f"id:{row['id']}"


def eval_leaderboard(*, user: Any) -> dict[str, Any]:
    """Checkpoints × benchmarks: `{"benchmarks": [name], "rows": [{"model", "label",
    "cells": [result or None per benchmark]}], "references": [{"model", "table", "cells":
    [percent or None per benchmark]}]}`.

    A row is one evaluated checkpoint (the run that produced it and its step, else the model
    path), whichever runs evaluated it; a cell is its newest result on that benchmark, with
    `se` and `warning`. Benchmarks match the paper's by short name (`aime24`, `math500`),
    which come first so the reference rows line up; the rest follow by name."""
    results = list(
        EvalResult.objects.filter(run__in=runs_visible_to(user=user))
        .select_related("run")
        .order_by("id")
    )
    models = eval_models(results=results, user=user)
    names = {benchmark_key(r.benchmark) for r in results} - set(REFERENCE_BENCHMARKS)
    benchmarks = [*REFERENCE_BENCHMARKS, *sorted(names)]
    rows: dict[tuple, dict[str, Any]] = {}
    for result in results:  # oldest first: a newer result on the same cell replaces it
        model = result.model = models[result.pk]
        if model.run is not None:
            key: tuple = ("run", model.run.pk, model.step)
        else:  # an evaluate run without a model path stays its own row
            key = ("path", model.path or f"run {result.run_id}")
        label = _label(model) if model.run or model.path else f"#{result.run_id} {result.run.name}"
        row = rows.setdefault(key, {"model": model, "label": label, "by": {}})
        row["by"][benchmark_key(result.benchmark)] = _annotate(result)
    ordered = sorted(rows.items(), key=lambda kv: (kv[0][0] != "run", kv[0][1:]))
    return {
        "benchmarks": benchmarks,
        "titles": [BENCHMARK_TITLES.get(b, b) for b in benchmarks],
        "rows": [{**row, "cells": [row["by"].get(b) for b in benchmarks]} for _, row in ordered],
        "references": [
            {
                "model": ref.model,
                "table": ref.table,
                "cells": [ref.pass_at_1.get(b) for b in benchmarks],
            }
            for ref in REFERENCES
        ],
    }


def _label(model: EvalModel) -> str:
    if model.run is None:
        return model.path or "model"
    step = f" · step {model.step}" if model.step is not None else ""
    return f"#{model.run.pk} {model.run.name}{step}"


def checkpoints_pass_at_1(*, runs: Iterable[Run]) -> dict[int, dict[str, dict[str, Any]]]:
    """pass@1 per benchmark of each run's checkpoint, for "pass@1 along the recipe".

    `runs` are the stage runs of a recipe, in recipe order (the caller has checked the user
    may see them). Returns `{run id: {benchmark short name: {"pass_at_1", "se", "ci_low",
    "ci_high", "n_samples", "n_problems", "step", "result_id"}}}` with every run as a key, in
    the order given (empty for a run with no result yet).

    A result counts for the run that produced the model it evaluated, found among `runs`:
    an evaluate stage's result on `<run_dir>/final` or a `checkpoint-N` counts for the stage
    that wrote it, RL's periodic eval for the RL run itself. An evaluate stage whose model
    none of `runs` made (the base model) keeps its results. Per run and benchmark the result
    on the latest step wins; at the same step an evaluate stage beats a periodic eval (it
    samples more), then more samples, then the newest.
    """
    runs = list(runs)
    out: dict[int, dict[str, dict[str, Any]]] = {run.pk: {} for run in runs}
    results = list(
        EvalResult.objects.filter(run__in=[run.pk for run in runs])
        .select_related("run")
        .order_by("id")
    )
    models = eval_models(results=results, runs=runs)
    best: dict[tuple[int, str], tuple[tuple, EvalResult, EvalModel]] = {}
    for result in results:
        model = models[result.pk]
        owner = model.run.pk if model.run is not None and model.run.pk in out else result.run_id
        rank = (model.step or 0, not model.during_run, result.n_samples, result.pk)
        key = (owner, benchmark_key(result.benchmark))
        if key not in best or rank > best[key][0]:
            best[key] = (rank, result, model)
    for (owner, benchmark), (_, result, model) in best.items():
        out[owner][benchmark] = {
            "pass_at_1": result.pass_at_1,
            "se": result_se(result),
            "ci_low": result.pass_at_1_ci_low,
            "ci_high": result.pass_at_1_ci_high,
            "n_samples": result.n_samples,
            "n_problems": result.n_problems,
            "step": model.step,
            "result_id": result.pk,
        }
    return out


def eval_results_for_picker(*, user: Any, limit: int = 500) -> list[dict[str, Any]]:
    """`[{"benchmark", "results": [EvalResult]}]`, newest first: the compare page's choices."""
    groups: dict[str, list[EvalResult]] = {}
    results = (
        EvalResult.objects.filter(run__in=runs_visible_to(user=user))
        .select_related("run")
        .order_by("-id")[:limit]
    )
    for result in results:
        groups.setdefault(result.benchmark, []).append(result)
    return [{"benchmark": name, "results": rows} for name, rows in sorted(groups.items())]
