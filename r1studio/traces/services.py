"""Writes for traces: storing the completions of `samples` and `eval` events.

`traces_ingest` is called by the run supervisor for each batch of events, in the transaction
that advances `run.events_offset`. Each trace carries a content hash (`uid`, unique per run),
so a batch ingested twice stores nothing the second time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from pipeline.reporting import finite_or_none
from pipeline.template import completion_text, parse_completion
from r1studio.traces.models import Trace, TraceSource


def prompt_hash(prompt: str) -> str:
    """16 hex digits identifying a prompt (its group at a step, its history across steps)."""
    return hashlib.sha1(prompt.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _prompt_text(prompt: Any) -> str:
    """A prompt as text; chat prompts become `role: content` paragraphs."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt):
        return "\n\n".join(f"{m.get('role', 'user')}: {completion_text([m])}" for m in prompt)
    return completion_text(prompt) if prompt is not None else ""


def _correct(rewards: dict[str, Any]) -> bool | None:
    """accuracy reward ≥ 1 when the run scored accuracy, else None (unknown)."""
    for name, score in rewards.items():
        if name.startswith("accuracy"):
            score = finite_or_none(score)
            return None if score is None else score >= 1.0
    return None


def _rows(event: dict) -> Iterator[dict[str, Any]]:
    """Normalised trace fields for each completion in a `samples` or `eval` event."""
    step = int(event.get("step") or 0)
    items = event.get("items") or []
    if event.get("type") == "samples":
        for position, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            rewards = {str(k): finite_or_none(v) for k, v in (item.get("rewards") or {}).items()}
            probe = (item.get("source") or event.get("source")) == TraceSource.PROBE
            yield {
                "source": TraceSource.PROBE if probe else TraceSource.TRAIN,
                "benchmark": "",
                "step": step,
                "position": position,
                "prompt": _prompt_text(item.get("prompt")),
                "completion": completion_text(item.get("completion")),
                "reference": item.get("reference"),
                "rewards": rewards,
                "reward": finite_or_none(item.get("reward")),
                "advantage": finite_or_none(item.get("advantage")),
                "correct": _correct(rewards),
            }
    elif event.get("type") == "eval":
        benchmark = str(event.get("benchmark") or "benchmark")[:200]
        position = 0
        for item in items:
            if not isinstance(item, dict):
                continue
            completions = item.get("completions")
            if completions is None:
                completions = [item.get("completion")]
            grades = item.get("correct")
            for j, completion in enumerate(completions):
                grade = grades[j] if isinstance(grades, list) and j < len(grades) else grades
                yield {
                    "source": TraceSource.EVAL,
                    "benchmark": benchmark,
                    "step": step,
                    "position": position,
                    "prompt": _prompt_text(item.get("problem", item.get("prompt"))),
                    "completion": completion_text(completion),
                    "reference": item.get("reference", item.get("answer")),
                    "rewards": {},
                    "reward": None,
                    "advantage": None,
                    "correct": bool(grade) if isinstance(grade, bool | int) else None,
                }
                position += 1


# Columns written by `traces_ingest`, in the order `_values` produces them.
COLUMNS = (
    "run_id", "step", "source", "benchmark", "position", "uid", "prompt_hash", "prompt",
    "completion", "think", "answer", "reference", "rewards", "reward", "advantage", "length",
    "correct", "well_formed", "created_at",
)  # fmt: skip


def _values(run_id: int, row: dict[str, Any], created_at: Any) -> tuple:
    """One row of COLUMNS: the completion parsed, hashed and measured."""
    completion = row["completion"]
    parsed = parse_completion(completion)
    reference = row["reference"]
    key = "\x1f".join(
        [row["source"], row["benchmark"], str(row["step"]), str(row["position"]),
         row["prompt"], completion]
    )  # fmt: skip
    return (
        run_id,
        row["step"],
        str(row["source"]),
        row["benchmark"],
        row["position"],
        hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest(),
        prompt_hash(row["prompt"]),
        row["prompt"],
        completion,
        parsed.think,
        parsed.answer,
        "" if reference is None else str(reference),
        json.dumps(row["rewards"]),
        row["reward"],
        row["advantage"],
        len(completion),
        row["correct"],
        parsed.well_formed,
        created_at,
    )


def _insert(rows: list[tuple]) -> int:
    """Store the rows a trace of this run does not already have (same `uid`); returns how
    many were stored. Conflicts are left to the unique (run, uid) index, so re-ingesting costs
    no lookup. PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT; SQLite: one
    executemany. Both are much faster than the ORM's bulk_create, which spends more time
    building SQL than the database spends storing the rows."""
    qn = connection.ops.quote_name
    table = qn(Trace._meta.db_table)
    columns = ", ".join(qn(c) for c in COLUMNS)
    skip = f"ON CONFLICT ({qn('run_id')}, {qn('uid')}) DO NOTHING"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS traces_incoming ON COMMIT DELETE ROWS "
                f"AS SELECT {columns} FROM {table} WITH NO DATA"
            )
            cursor.execute("DELETE FROM traces_incoming")
            with cursor.cursor.copy(f"COPY traces_incoming ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT * FROM traces_incoming {skip}")
            return cursor.rowcount
        marks = ", ".join(["%s"] * len(COLUMNS))
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks}) {skip}", rows)
        return cursor.rowcount


@transaction.atomic
def traces_ingest(*, run: Any, events: list[dict]) -> int:
    """Store a trace per completion of the batch's `samples` and `eval` events.

    Returns how many traces were stored (traces already stored for this run are skipped).
    Other event types are ignored.
    """
    created_at = timezone.now()
    if connection.vendor != "postgresql":
        created_at = connection.ops.adapt_datetimefield_value(created_at)
    rows = [
        _values(run.pk, row, created_at)
        for event in events
        if event.get("type") in ("samples", "eval")
        for row in _rows(event)
    ]
    return _insert(rows) if rows else 0
