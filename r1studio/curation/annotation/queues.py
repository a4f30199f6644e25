"""Making annotation queues, and the queue lists researchers and annotators see.

`queue_create` turns a dataset version (its rows, read from the Parquet file a batch at a time)
or a trace selection (the trace browser's filters) into an `AnnotationQueue` with one item per
row or trace. Every item keeps what the annotator reads (problem, reference, think, answer,
completion, source; a trace's rewards and advantage) and the R1 checks of its completion
(`pipeline.checks_text`, computed once here and stored in `data["checks"]`). `group_key` ties
together the completions of one prompt (a GRPO group: one prompt at one step of one run), so the
labelling view can show them side by side. Gold items carry a known verdict: a `gold_verdict`
column of the rows, or items picked in the form.

A queue is made in the request that asks for it, so its size is capped (`MAX_ITEMS`): the
checks grade every answer with math-verify (~1.5 ms each).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet

from pipeline.checks_text import r1_checks_batch
from pipeline.rewards.language import LANGUAGE_SCRIPTS
from pipeline.template import completion_text, parse_completion
from r1studio.core.roles import ANNOTATOR, RESEARCHER, ROLES, user_has_role
from r1studio.curation import storage
from r1studio.curation.annotation.agreement import queue_item_counts, queue_labels
from r1studio.curation.annotation.models import (
    AnnotationItem,
    AnnotationQueue,
    Guideline,
    LabelStatus,
    Verdict,
)
from r1studio.curation.annotation.services import AnnotationError
from r1studio.curation.annotation.tally import queue_tally_rebuild
from r1studio.curation.models import DatasetVersion
from r1studio.metrics.selectors import run_for_user
from r1studio.traces.models import Trace
from r1studio.traces.selectors import traces_export_chunks
from r1studio.traces.text import conversation

MAX_ITEMS = 10_000
MAX_OVERLAP = 10
BATCH = 500
LEASE_SECONDS = (60, 7 * 24 * 3600)
QUESTIONS_DEFAULT: dict[str, Any] = {
    "verdict": True,
    "edit": True,
    "rating": True,
    "tags": [],
    "note": True,
}
# Row keys an item keeps besides the text the annotator reads.
KEPT_KEYS = ("group", "prompt", "rewards", "reward", "advantage", "correct", "id")


def questions_clean(questions: dict[str, Any] | None) -> dict[str, Any]:
    """The questions a queue asks: verdict, edit, rating and note on or off, the tag list."""
    asked = {**QUESTIONS_DEFAULT, **(questions or {})}
    tags = asked.get("tags") or []
    if isinstance(tags, str):
        tags = tags.replace("\n", ",").split(",")
    tags = list(dict.fromkeys(t.strip() for t in tags if isinstance(t, str) and t.strip()))
    if any(len(t) > 100 for t in tags) or len(tags) > 100:
        raise AnnotationError({"tags": "at most 100 tags of at most 100 characters"})
    out = {name: bool(asked.get(name)) for name in ("verdict", "edit", "rating", "note")}
    if not any(out.values()) and not tags:
        raise AnnotationError({"questions": "ask at least one question"})
    return {**out, "tags": tags}


def annotator_candidates() -> QuerySet[Any]:
    """Users who may be assigned to a queue: active users holding a role."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=ROLES)
        .distinct()
        .order_by("username")
    )


def _check_annotators(annotators: Iterable[Any]) -> list[Any]:
    users = list(annotators)
    for user in users:
        if not user.is_active or not user_has_role(user, ANNOTATOR):
            raise AnnotationError({"annotators": f"{user} does not hold the annotator role"})
    return users


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else completion_text(value) or str(value)


def _problem_of(prompt: Any) -> str:
    """The user's question in a prompt: the last user message (chat list or rendered chat)."""
    if isinstance(prompt, list):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return _text(users[-1].get("content")) if users else completion_text(prompt)
    messages = conversation(_text(prompt))
    users = [m["text"] for m in messages if m["role"] == "user"]
    return users[-1] if users else messages[-1]["text"]


def _group_key(value: Any) -> str:
    """A short stable key: the value itself when short, else a hash of it."""
    text = _text(value).strip()
    if not text:
        return ""
    return text if len(text) <= 64 else hashlib.sha256(text.encode()).hexdigest()[:32]


def row_item(row: dict[str, Any]) -> dict[str, Any]:
    """What an item keeps of a dataset row (see the module docstring)."""
    completion = row.get("completion")
    messages = row.get("messages")
    if completion is None and isinstance(messages, list):
        assistant = [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
        completion = assistant[-1].get("content") if assistant else None
    problem = row.get("problem")
    if not problem:
        prompt = row.get("prompt") or (
            [m for m in messages if isinstance(m, dict) and m.get("role") != "assistant"]
            if isinstance(messages, list)
            else None
        )
        problem = _problem_of(prompt) if prompt else ""
    completion = _text(completion)
    parsed = parse_completion(completion) if completion else None
    think = row.get("think")
    answer = row.get("answer")
    data = {
        "problem": _text(problem),
        "reference": _text(row.get("reference", row.get("solution"))),
        "think": _text(think if think is not None else (parsed.think if parsed else "")),
        "answer": _text(answer if answer is not None else (parsed.answer if parsed else "")),
        "completion": completion,
        "source": _text(row.get("source")),
    }
    for key in KEPT_KEYS:
        if key in row and row[key] is not None:
            data[key] = _json_safe(row[key])
    return data


def trace_item(trace: Trace) -> dict[str, Any]:
    """What an item keeps of a trace: the text, the run and step, rewards and advantage."""
    return {
        "problem": _problem_of(trace.prompt),
        "prompt": trace.prompt,
        "reference": trace.reference,
        "think": trace.think or "",
        "answer": trace.answer or "",
        "completion": trace.completion,
        "source": f"run {trace.run_id} step {trace.step}",
        "run_id": trace.run_id,
        "step": trace.step,
        "trace_id": trace.pk,
        "rewards": trace.rewards or {},
        "reward": trace.reward,
        "advantage": trace.advantage,
        "correct": trace.correct,
        "group": f"{trace.run_id}:{trace.step}:{trace.prompt_hash}",
    }


def _version_rows(version: DatasetVersion, limit: int) -> Iterator[list[tuple[str, dict, str]]]:
    """(source_ref, item data, gold verdict) a batch at a time, the first `limit` rows."""
    seen = 0
    for batch in storage.parquet_open(version.path).iter_batches(batch_size=BATCH):
        out = []
        for row in batch.to_pylist():
            if seen >= limit:
                break
            gold = str(row.get("gold_verdict") or "").strip().lower()
            out.append((f"{version.ref}#{seen}", row_item(row), gold))
            seen += 1
        if out:
            yield out
        if seen >= limit:
            return


def _trace_rows(user: Any, filters: dict[str, Any], limit: int) -> Iterator[list[tuple]]:
    filters = dict(filters)
    run_id = filters.pop("run_id", None)
    run = None
    if run_id is not None:
        run = run_for_user(user=user, run_id=run_id)
        if run is None:
            raise AnnotationError({"filters": f"no run #{run_id} you may read"})
    seen = 0
    for chunk in traces_export_chunks(user=user, run=run, chunk_size=BATCH, **filters):
        chunk = chunk[: limit - seen]
        seen += len(chunk)
        yield [(f"trace:{t.pk}", trace_item(t), "") for t in chunk]
        if seen >= limit:
            return


def _with_checks(data: list[dict[str, Any]], language: str) -> None:
    """Store the R1 checks in each item's data; a known verifier result is not graded again."""
    rows = []
    for d in data:
        accuracy = (
            (d.get("rewards") or {}).get("accuracy") if isinstance(d.get("rewards"), dict) else None
        )
        known = accuracy if isinstance(accuracy, int | float) else None
        rows.append(
            {
                "completion": d["completion"] or None,
                "think": None if d["completion"] else d["think"],
                "answer": None if d["completion"] else d["answer"],
                "reference": None if known is not None else d["reference"] or None,
            }
        )
        d["_known"] = known
    for d, checks in zip(data, r1_checks_batch(rows, language=language), strict=True):
        known = d.pop("_known")
        if known is not None:
            checks["verifier"] = 1.0 if known >= 1.0 else 0.0
        d["checks"] = checks


def _gold_clean(gold: dict[int, str] | None) -> dict[int, str]:
    out = {}
    for position, verdict in (gold or {}).items():
        if verdict not in Verdict.values:
            raise AnnotationError({"gold": f"item {position}: a gold verdict is accept or reject"})
        out[int(position)] = verdict
    return out


def queue_create(
    *,
    user: Any,
    name: str,
    version: DatasetVersion | None = None,
    trace_filters: dict[str, Any] | None = None,
    guidelines: str = "",
    questions: dict[str, Any] | None = None,
    overlap: int = 1,
    lease_seconds: int = 1800,
    annotators: Iterable[Any] = (),
    gold: dict[int, str] | None = None,
    limit: int | None = None,
    language: str = "en",
) -> AnnotationQueue:
    """A queue of the rows of `version` or of the traces passing `trace_filters` (the dict
    `TraceFilterForm.filters()` gives), at most `limit` (≤ MAX_ITEMS) of them, numbered from 1.

    `gold` maps item positions to a known verdict (rows may bring theirs in `gold_verdict`);
    `guidelines` (Markdown) become guideline version 1."""
    if not user_has_role(user, RESEARCHER):
        raise PermissionDenied("Queues are made by researchers.")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise AnnotationError({"name": "a name of 1 to 200 characters"})
    if (version is None) == (trace_filters is None):
        raise AnnotationError("make a queue from a dataset version or from a trace selection")
    if not 1 <= int(overlap) <= MAX_OVERLAP:
        raise AnnotationError({"overlap": f"between 1 and {MAX_OVERLAP} annotators per item"})
    if not LEASE_SECONDS[0] <= int(lease_seconds) <= LEASE_SECONDS[1]:
        raise AnnotationError({"lease_seconds": "between a minute and a week"})
    if language not in LANGUAGE_SCRIPTS:
        raise AnnotationError({"language": f"unknown language {language!r}"})
    limit = min(int(limit or MAX_ITEMS), MAX_ITEMS)
    if limit < 1:
        raise AnnotationError({"limit": "at least one item"})
    questions = questions_clean(questions)
    annotators = _check_annotators(annotators)
    gold = _gold_clean(gold)
    if version is not None:
        batches = _version_rows(version, limit)
        source_filters: dict[str, Any] = {"limit": limit} if version.rows > limit else {}
    else:
        batches = _trace_rows(user, trace_filters or {}, limit)
        source_filters = {**_json_safe(trace_filters or {}), "limit": limit}

    with transaction.atomic():
        queue = AnnotationQueue.objects.create(
            name=name,
            source_version=version,
            source_filters=source_filters,
            questions=questions,
            overlap=int(overlap),
            lease_seconds=int(lease_seconds),
            created_by=user,
        )
        queue.annotators.set(annotators)
        Guideline.objects.create(queue=queue, number=1, text=guidelines or "")
        position = 0
        for batch in batches:
            data = [d for _, d, _ in batch]
            _with_checks(data, language)
            items = []
            for ref, d, row_gold in batch:
                position += 1
                verdict = gold.pop(position, row_gold)
                items.append(
                    AnnotationItem(
                        queue=queue,
                        position=position,
                        data=d,
                        source_ref=ref[:200],
                        group_key=_group_key(d.get("group") or d.get("prompt") or d["problem"]),
                        gold_verdict=verdict if verdict in Verdict.values else "",
                    )
                )
            AnnotationItem.objects.bulk_create(items)
        if position == 0:
            raise AnnotationError("the selection has no rows: nothing to annotate")
        if gold:
            raise AnnotationError({"gold": f"no item {min(gold)}: the queue has {position}"})
        queue_tally_rebuild(queue=queue)
    return queue


def queue_settings_save(
    *, queue: AnnotationQueue, user: Any, annotators: Iterable[Any], lease_seconds: int
) -> AnnotationQueue:
    """Change who labels the queue and how long a lease lasts."""
    if not user_has_role(user, RESEARCHER):
        raise PermissionDenied("Queues are changed by researchers.")
    if not LEASE_SECONDS[0] <= int(lease_seconds) <= LEASE_SECONDS[1]:
        raise AnnotationError({"lease_seconds": "between a minute and a week"})
    users = _check_annotators(annotators)
    with transaction.atomic():
        AnnotationQueue.objects.filter(pk=queue.pk).update(lease_seconds=int(lease_seconds))
        queue.annotators.set(users)
    queue.refresh_from_db()
    return queue


def queue_gold_set(*, queue: AnnotationQueue, user: Any, gold: dict[int, str]) -> int:
    """Mark items (by position) as gold with a known verdict; "" unmarks. Returns the count."""
    if not user_has_role(user, RESEARCHER):
        raise PermissionDenied("Gold items are set by researchers.")
    changed = 0
    with transaction.atomic():
        for position, verdict in gold.items():
            if verdict not in ("", *Verdict.values):
                raise AnnotationError({"gold": f"item {position}: accept, reject or nothing"})
            updated = AnnotationItem.objects.filter(queue=queue, position=int(position)).update(
                gold_verdict=verdict
            )
            if not updated:
                raise AnnotationError({"gold": f"the queue has no item {position}"})
            changed += updated
    return changed


def queues_to_annotate(*, user: Any) -> QuerySet[AnnotationQueue]:
    """Open queues `user` labels: the ones they are assigned to (researchers: every open one)."""
    qs = AnnotationQueue.objects.filter(closed_at__isnull=True)
    if not user_has_role(user, RESEARCHER):
        qs = qs.filter(annotators=user)
    return qs.order_by("-created_at", "-id")


def queues_progress(queues: Iterable[AnnotationQueue], *, user: Any = None) -> list[dict[str, Any]]:
    """Each queue with items (total, done: labelled `overlap` times), submitted labels and, with
    `user`, the user's own submitted labels: item counts by labels done (the queues' tally
    rows), the user's labels by queue item range."""
    queues = list(queues)
    by_done = queue_item_counts(q.pk for q in queues)
    out = []
    for queue in queues:
        counts = by_done[queue.pk]
        total = sum(counts.values())
        done = sum(n for labels, n in counts.items() if labels >= queue.overlap)
        mine = 0
        if user is not None and total:
            mine = (
                queue_labels(queue, total)
                .filter(annotator=user, status=LabelStatus.SUBMITTED)
                .count()
            )
        out.append(
            {
                "queue": queue,
                "total": total,
                "done": done,
                "labels": sum(labels * n for labels, n in counts.items()),
                "mine": mine,
                "percent": round(100 * done / total) if total else 0,
            }
        )
    return out
