"""Reads for traces: the filtered, keyset-paginated browser, a group, a prompt over time.

Pages go newest first by (step, id) and continue from a cursor `"<step>:<id>"` rather than an
offset, so page 1000 costs what page 1 costs: the (run, step, id) and (step, id) indexes are
walked from the cursor and the filters are checked on the way. Lists read short previews
(`Substr`) instead of whole completions.
"""

from __future__ import annotations

import statistics
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Substr

from r1studio.core.roles import RESEARCHER, user_has_role
from r1studio.runs.models import Run
from r1studio.runs.selectors import runs_visible_to
from r1studio.traces.models import Trace
from r1studio.traces.text import diff_stats, reflection_counts, word_diff

LIST_FIELDS = (
    "id", "run_id", "run__name", "step", "source", "benchmark", "position", "prompt_hash",
    "reward", "advantage", "length", "correct", "well_formed",
)  # fmt: skip
MAX_LIMIT = 200
MAX_STEPS_OVER_TIME = 200


def parse_cursor(cursor: str | None) -> tuple[int, int] | None:
    """`"<step>:<id>"` → (step, id); None for a missing or malformed cursor."""
    if not cursor:
        return None
    step, _, pk = cursor.partition(":")
    try:
        return int(step), int(pk)
    except ValueError:
        return None


def traces_page(
    *,
    user: Any,
    run: Any = None,
    step_min: int | None = None,
    step_max: int | None = None,
    reward_min: float | None = None,
    reward_max: float | None = None,
    correct: bool | None = None,
    q: str | None = None,
    source: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> tuple[list[Trace], str | None]:
    """One page of traces `user` may read, newest first, and the cursor of the next page.

    Filters: one run, a step range, a reward range, correct / incorrect, a text search in the
    prompt and completion (case-insensitive), the source (train | eval). `after` is the
    `next_cursor` of the previous page; None comes back after the last page.
    """
    if not user_has_role(user, RESEARCHER):
        return [], None
    limit = max(1, min(int(limit), MAX_LIMIT))
    visible = runs_visible_to(user=user)
    qs = Trace.objects.all()
    if run is not None:
        if not visible.filter(pk=run.pk).exists():
            return [], None
        qs = qs.filter(run_id=run.pk)
    else:
        # "Not one of the hidden runs" rather than "one of the visible runs": the hidden ones
        # are a handful of drafts, and the database keeps walking the (step, id) index in
        # order instead of gathering every visible run's traces and sorting them.
        qs = qs.exclude(run__in=Run.objects.exclude(pk__in=visible.values("pk")))
    if step_min is not None:
        qs = qs.filter(step__gte=step_min)
    if step_max is not None:
        qs = qs.filter(step__lte=step_max)
    if reward_min is not None:
        qs = qs.filter(reward__gte=reward_min)
    if reward_max is not None:
        qs = qs.filter(reward__lte=reward_max)
    if correct is not None:
        qs = qs.filter(correct=correct)
    if source:
        qs = qs.filter(source=source)
    if q:
        qs = qs.filter(Q(completion__icontains=q) | Q(prompt__icontains=q))
    cursor = parse_cursor(after)
    if cursor is not None:
        step, pk = cursor
        # The redundant `step <= cursor step` lets the database walk the index from the cursor.
        qs = qs.filter(Q(step__lt=step) | Q(step=step, id__lt=pk), step__lte=step)
    rows = list(
        qs.select_related("run")
        .only(*LIST_FIELDS)
        .annotate(
            prompt_preview=Substr("prompt", 1, 160),
            answer_preview=Substr("answer", 1, 120),
        )
        .order_by("-step", "-id")[: limit + 1]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = f"{rows[-1].step}:{rows[-1].pk}" if more and rows else None
    return rows, next_cursor


def trace_for_user(*, user: Any, trace_id: int) -> Trace | None:
    """The trace when it exists and `user` may read its run."""
    return (
        Trace.objects.filter(pk=trace_id, run__in=runs_visible_to(user=user))
        .select_related("run")
        .first()
    )


def _stats(values: list[float | None]) -> dict[str, float | None]:
    known = [v for v in values if v is not None]
    if not known:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {
        "mean": statistics.fmean(known),
        "std": statistics.stdev(known) if len(known) > 1 else 0.0,
        "min": min(known),
        "max": max(known),
    }


def trace_group(*, run: Any, step: int, prompt_hash: str) -> dict[str, Any]:
    """All completions of one prompt at one step, with their rewards and advantages.

    `reward_names` are the reward functions that scored any of them (the table's columns);
    `stats` summarise the rewards (a group whose rewards all agree has std 0: no signal).
    """
    traces = list(
        Trace.objects.filter(run=run, step=step, prompt_hash=prompt_hash).order_by(
            "source", "position", "id"
        )
    )
    names = sorted({name for t in traces for name in (t.rewards or {})})
    for t in traces:
        t.reward_cells = [(t.rewards or {}).get(name) for name in names]
    return {
        "traces": traces,
        "reward_names": names,
        "stats": _stats([t.reward for t in traces]),
        "correct": sum(1 for t in traces if t.correct),
        "graded": sum(1 for t in traces if t.correct is not None),
    }


def _step_summary(step: int, traces: list[Trace]) -> dict[str, Any]:
    counts = [reflection_counts(t.completion) for t in traces]
    per_phrase: dict[str, float] = {}
    for c in counts:
        for phrase, n in c.items():
            per_phrase[phrase] = per_phrase.get(phrase, 0) + n
    n = len(traces)
    return {
        "step": step,
        "n": n,
        "reward": _stats([t.reward for t in traces])["mean"],
        "length": statistics.fmean(t.length for t in traces),
        "reflections": sum(per_phrase.values()) / n,
        "phrases": {k: v / n for k, v in per_phrase.items() if v},
        "correct": sum(1 for t in traces if t.correct),
        "graded": sum(1 for t in traces if t.correct is not None),
        "example": traces[0],
    }


def prompt_over_time(
    *, run: Any, prompt_hash: str, max_steps: int = MAX_STEPS_OVER_TIME
) -> dict[str, Any]:
    """The same prompt's completions across the run's steps (the "aha moment" view).

    Per step: how many completions, mean reward, mean length (characters), reflection words
    per completion ("wait", "let me re-check", ...), and the first completion of the step with
    a word diff against the previous step's one. At most `max_steps` steps (the latest).
    """
    qs: QuerySet[Trace] = Trace.objects.filter(
        run=run, prompt_hash=prompt_hash, source=Trace.Source.TRAIN
    )
    steps = list(qs.order_by("-step").values_list("step", flat=True).distinct()[:max_steps])
    by_step: dict[int, list[Trace]] = {}
    if steps:
        for t in qs.filter(step__gte=min(steps)).order_by("step", "position", "id"):
            by_step.setdefault(t.step, []).append(t)
    rows = [_step_summary(step, traces) for step, traces in sorted(by_step.items())]
    previous = None
    for row in rows:
        if previous is not None:
            row["diff"] = word_diff(previous.completion, row["example"].completion)
            row["diff_stats"] = diff_stats(row["diff"])
        previous = row["example"]
    prompt = rows[0]["example"].prompt if rows else ""
    chart = {
        "steps": [r["step"] for r in rows],
        "length": [r["length"] for r in rows],
        "reflections": [r["reflections"] for r in rows],
        "reward": [r["reward"] for r in rows],
    }
    return {"rows": rows, "prompt": prompt, "chart": chart}


def traces_runs_for_filter(*, user: Any, limit: int = 200) -> list[Any]:
    """Runs for the browser's run filter: those with traces, newest first."""
    return list(
        runs_visible_to(user=user)
        .filter(Exists(Trace.objects.filter(run=OuterRef("pk"))))
        .order_by("-created_at", "-id")
        .only("id", "name")[:limit]
    )
