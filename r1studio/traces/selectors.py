"""Reads for traces: the filtered, keyset-paginated browser, a group, a prompt over time.

Pages go newest first by (step, id) and continue from a cursor `"<step>:<id>"` rather than an
offset, so page 1000 costs what page 1 costs: the (run, step, id) and (step, id) indexes are
walked from the cursor and the filters are checked on the way. Lists read short previews
(`Substr`) instead of whole completions.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet
from django.db.models.functions import Substr

from pipeline.config import GRPOStage
from r1studio.core.roles import RESEARCHER, user_has_role
from r1studio.runs.models import Run
from r1studio.runs.selectors import runs_visible_to
from r1studio.traces.models import Trace
from r1studio.traces.search import sqlite_matching_ids, traces_search
from r1studio.traces.text import diff_stats, reflection_counts, word_diff

# The whole prompt: its preview is the user's message, found by parsing the chat template.
LIST_FIELDS = (
    "id", "run_id", "run__name", "step", "source", "benchmark", "position", "prompt_hash",
    "prompt", "reward", "advantage", "length", "correct", "well_formed",
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


def traces_filtered(
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
) -> QuerySet[Trace]:
    """The traces `user` may read that pass the browser's filters, unordered (empty for a user
    who may not read traces or a run they may not see).

    Filters: one run, a step range, a reward range, correct / incorrect, a word search in the
    prompt and completion (`r1studio.traces.search`), the source (train | probe | eval).
    """
    if not user_has_role(user, RESEARCHER):
        return Trace.objects.none()
    visible = runs_visible_to(user=user)
    qs = Trace.objects.all()
    if run is not None:
        if not visible.filter(pk=run.pk).exists():
            return Trace.objects.none()
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
    return traces_search(qs, q)


def _on_fts5(q: str | None) -> bool:
    """A word search on SQLite, whose matches come from FTS5 in the browser's order."""
    return bool((q or "").strip()) and connection.vendor == "sqlite"


def _step_range(filters: dict[str, Any]) -> dict[str, int | None]:
    return {"step_min": filters.get("step_min"), "step_max": filters.get("step_max")}


def _older_than(qs: QuerySet[Trace], step: int, pk: int) -> QuerySet[Trace]:
    # The redundant `step <= cursor step` lets the database walk the index from the cursor.
    return qs.filter(Q(step__lt=step) | Q(step=step, id__lt=pk), step__lte=step)


def traces_page(
    *, user: Any, after: str | None = None, limit: int = 50, **filters: Any
) -> tuple[list[Trace], str | None]:
    """One page of traces `user` may read, newest first, and the cursor of the next page.

    `filters` are those of `traces_filtered`. `after` is the `next_cursor` of the previous
    page; None comes back after the last page.
    """
    limit = max(1, min(int(limit), MAX_LIMIT))
    cursor = parse_cursor(after)
    q = filters.get("q")
    if _on_fts5(q):
        # FTS5 returns matches newest first: walk them, checking the other filters on the way.
        qs = traces_filtered(user=user, **{**filters, "q": None})
        if cursor is not None:
            qs = _older_than(qs, *cursor)
        ids = sqlite_matching_ids(qs, q, before=cursor, limit=limit + 1, **_step_range(filters))
        qs = Trace.objects.filter(pk__in=ids)
    else:
        qs = traces_filtered(user=user, **filters)
        if cursor is not None:
            qs = _older_than(qs, *cursor)
    rows = list(
        qs.select_related("run")
        .only(*LIST_FIELDS)
        .annotate(answer_preview=Substr("answer", 1, 120))
        .order_by("-step", "-id")[: limit + 1]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = f"{rows[-1].step}:{rows[-1].pk}" if more and rows else None
    return rows, next_cursor


def trace_neighbours(*, user: Any, trace: Trace, **filters: Any) -> dict[str, Trace | None]:
    """The traces just before (`newer`) and after (`older`) `trace` in the browser's order
    (newest first by step, id) among those passing `filters` (see `traces_filtered`)."""
    q = filters.get("q")
    fts = _on_fts5(q)
    qs = traces_filtered(user=user, **({**filters, "q": None} if fts else filters))
    newer = qs.filter(
        Q(step__gt=trace.step) | Q(step=trace.step, id__gt=trace.pk), step__gte=trace.step
    )
    older = _older_than(qs, trace.step, trace.pk)
    if fts:  # as for a page: walk FTS5's matches from the trace, one way and the other
        at, steps = (trace.step, trace.pk), _step_range(filters)
        ids = sqlite_matching_ids(newer, q, after=at, limit=1, oldest_first=True, **steps)
        newer = Trace.objects.filter(pk__in=ids)
        older = Trace.objects.filter(
            pk__in=sqlite_matching_ids(older, q, before=at, limit=1, **steps)
        )
    return {
        "newer": newer.only("id", "step").order_by("step", "id").first(),
        "older": older.only("id", "step").order_by("-step", "-id").first(),
    }


def traces_export_chunks(
    *, user: Any, chunk_size: int = 500, **filters: Any
) -> Iterator[list[Trace]]:
    """Every trace passing `filters` (see `traces_filtered`), newest first, whole, in chunks of
    `chunk_size`: one keyset query per chunk, so an export of millions of traces holds one
    chunk in memory and never pays for an offset."""
    qs = traces_filtered(user=user, **filters).select_related("run").order_by("-step", "-id")
    cursor: tuple[int, int] | None = None
    while True:
        page = qs if cursor is None else _older_than(qs, *cursor)
        rows = list(page[:chunk_size])
        if not rows:
            return
        yield rows
        if len(rows) < chunk_size:
            return
        cursor = (rows[-1].step, rows[-1].pk)


def trace_for_user(*, user: Any, trace_id: int) -> Trace | None:
    """The trace when it exists and `user` may read its run."""
    return (
        Trace.objects.filter(pk=trace_id, run__in=runs_visible_to(user=user))
        .select_related("run")
        .first()
    )


def _reward_weights(run: Any) -> dict[str, float]:
    """{reward name: weight} from the run's config (the GRPO default list when it has none)."""
    specs = (run.config or {}).get("rewards")
    if specs is None and run.kind == "grpo":
        specs = [spec.model_dump() for spec in GRPOStage.model_fields["rewards"].default_factory()]
    weights: dict[str, float] = {}
    for spec in specs or []:
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            weight = spec.get("weight", 1.0)
            if isinstance(weight, int | float) and not isinstance(weight, bool):
                # A reward listed twice reports one score under its name: the first weight.
                weights.setdefault(spec["name"], float(weight))
    return weights


def trace_reward_breakdown(*, trace: Trace) -> dict[str, Any]:
    """The trace's total reward taken apart: each reward's raw value, its weight in the run's
    config and weight × value (`rows`), and their sum (`total`: what GRPO trained on).

    `matches` is False when that sum disagrees with the stored total (a config edited after
    the run, or a reward the config does not list: its weight is unknown, None).
    """
    weights = _reward_weights(trace.run)
    rows = []
    for name, value in sorted((trace.rewards or {}).items()):
        weight = weights.get(name)
        weighted = weight * value if weight is not None and value is not None else None
        rows.append({"name": name, "value": value, "weight": weight, "weighted": weighted})
    known = [r["weighted"] for r in rows if r["weighted"] is not None]
    total = sum(known) if known else None
    matches = (
        total is None
        or trace.reward is None
        or math.isclose(total, trace.reward, rel_tol=1e-6, abs_tol=1e-9)
    ) and all(r["weight"] is not None for r in rows if r["value"] is not None)
    return {"rows": rows, "total": total, "matches": matches}


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


# Which of a prompt's sources "over time" shows when none is asked for.
OVER_TIME_SOURCES = (Trace.Source.TRAIN, Trace.Source.PROBE, Trace.Source.EVAL)


def prompt_sources(*, run: Any, prompt_hash: str) -> list[dict[str, Any]]:
    """The sources (train, probe, eval) that have traces of this prompt, with their step counts."""
    counts = dict(
        Trace.objects.filter(run=run, prompt_hash=prompt_hash)
        .values("source")
        .annotate(steps=Count("step", distinct=True))
        .values_list("source", "steps")
    )
    return [
        {"source": s.value, "label": s.label, "steps": counts[s.value]}
        for s in OVER_TIME_SOURCES
        if s.value in counts
    ]


def run_probe_prompts(*, run: Any, limit: int = 20) -> list[dict[str, Any]]:
    """The run's probe prompts (`prompt_hash`, `prompt`, `steps`): the ones "over time" follows."""
    hashes = list(
        Trace.objects.filter(run=run, source=Trace.Source.PROBE)
        .values("prompt_hash")
        .annotate(steps=Count("step", distinct=True), first=Min("id"))
        .order_by("first")[:limit]
    )
    prompts = dict(
        Trace.objects.filter(pk__in=[h["first"] for h in hashes]).values_list("id", "prompt")
    )
    return [
        {
            "prompt_hash": h["prompt_hash"],
            "steps": h["steps"],
            "prompt": prompts.get(h["first"], ""),
        }
        for h in hashes
    ]


def prompt_over_time(
    *,
    run: Any,
    prompt_hash: str,
    source: str | None = None,
    max_steps: int = MAX_STEPS_OVER_TIME,
) -> dict[str, Any]:
    """The same prompt's completions across the run's steps (the "aha moment" view).

    One source at a time: training samples, the run's probe prompts (greedy, at every samples
    step) or evaluations; `source` None or one without traces of this prompt picks the first
    that has some (train, probe, eval). `sources` lists them all for the page's switch.
    Per step: how many completions, mean reward, mean length (characters), reflection words
    per completion ("wait", "let me re-check", ...), and the first completion of the step with
    a word diff against the previous step's one. At most `max_steps` steps (the latest).
    """
    sources = prompt_sources(run=run, prompt_hash=prompt_hash)
    known = [s["source"] for s in sources]
    if source not in known:
        source = known[0] if known else Trace.Source.TRAIN
    qs: QuerySet[Trace] = Trace.objects.filter(run=run, prompt_hash=prompt_hash, source=source)
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
    return {"rows": rows, "prompt": prompt, "chart": chart, "source": source, "sources": sources}


def traces_runs_for_filter(*, user: Any, limit: int = 200) -> list[Any]:
    """Runs for the browser's run filter: those with traces, newest first."""
    return list(
        runs_visible_to(user=user)
        .filter(Exists(Trace.objects.filter(run=OuterRef("pk"))))
        .order_by("-created_at", "-id")
        .only("id", "name")[:limit]
    )
