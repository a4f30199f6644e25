"""Writes for evaluation results; `evals_ingest` gets every run's `eval` events (see apps.py)."""

from __future__ import annotations

import re
from typing import Any

from pipeline.reporting import finite_or_none
from r1studio.evals.models import EvalResult
from r1studio.traces.services import prompt_hash

_CONS = re.compile(r"^cons@(\d+)$")
PROBLEM_TEXT = 300  # characters of a problem kept with its result (the traces hold it whole)
ANSWER_TEXT = 200
DECODING_KEYS = ("temperature", "top_p", "n_samples", "max_new_tokens")


def evals_ingest(*, run: Any, events: list[dict]) -> int:
    """Store one `EvalResult` per `eval` event; returns how many rows were created.

    Re-ingesting the same event (same run, benchmark and step) updates the row instead of
    adding a second one. Other event types are ignored. Events from before the R1 protocol's
    reporting (no `decoding`, no `problems`, no `pass@1_se`) are stored with what they have:
    their problems are read from the items.
    """
    created = 0
    for event in events:
        if event.get("type") != "eval":
            continue
        metrics = event.get("metrics") if isinstance(event.get("metrics"), dict) else {}
        cons_at_k, k = None, None
        for key, value in metrics.items():
            match = _CONS.match(str(key))
            if match:
                cons_at_k, k = finite_or_none(value), int(match.group(1))
                break
        items = event.get("items") if isinstance(event.get("items"), list) else []
        n_problems = finite_or_none(metrics.get("n_problems"))
        if n_problems is None and items:
            n_problems = float(len(items))
        _, was_created = EvalResult.objects.update_or_create(
            run=run,
            benchmark=str(event.get("benchmark") or "benchmark")[:200],
            step=int(event.get("step") or 0),
            defaults={
                "metrics": {str(k): finite_or_none(v) for k, v in metrics.items()},
                "pass_at_1": finite_or_none(metrics.get("pass@1")),
                "cons_at_k": cons_at_k,
                "k": k,
                "n_samples": int(event.get("n_samples") or 1),
                "n_problems": int(n_problems) if n_problems is not None else None,
                "pass_at_1_se": finite_or_none(metrics.get("pass@1_se")),
                "pass_at_1_ci_low": finite_or_none(metrics.get("pass@1_ci_low")),
                "pass_at_1_ci_high": finite_or_none(metrics.get("pass@1_ci_high")),
                "decoding": _decoding(event.get("decoding")),
                "problems": _problems(event.get("problems"), items),
            },
        )
        created += was_created
    return created


def _decoding(value: Any) -> dict[str, float | int | None]:
    if not isinstance(value, dict):
        return {}
    out: dict[str, float | int | None] = {}
    for key in DECODING_KEYS:
        if key in value:
            number = finite_or_none(value.get(key))
            counted = key in ("n_samples", "max_new_tokens") and number is not None
            out[key] = int(number) if counted else number
    return out


def _problems(problems: Any, items: list) -> list[dict[str, Any]]:
    """Each problem's result, with the hash that finds its traces and the start of its text.

    `problems` (the event's list, for every problem) and `items` (with the problem text) come
    in the same order; an older event has only items, whose `correct` list gives the counts.
    """
    if not isinstance(problems, list):
        problems = [_from_item(i, item) for i, item in enumerate(items)]
    out = []
    for index, problem in enumerate(problems):
        if not isinstance(problem, dict):
            continue
        item = items[index] if index < len(items) and isinstance(items[index], dict) else {}
        text = _text(item.get("problem", item.get("prompt")))
        answer = problem.get("majority_answer")
        out.append(
            {
                "id": str(problem.get("id", index))[:100],
                "n_correct": _count(problem.get("n_correct")),
                "n": _count(problem.get("n")),
                "majority_answer": None if answer is None else str(answer)[:ANSWER_TEXT],
                "correct": problem.get("correct")
                if isinstance(problem.get("correct"), bool)
                else None,
                "prompt_hash": prompt_hash(text) if text else "",
                "problem": text[:PROBLEM_TEXT],
            }
        )
    return out


def _from_item(index: int, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        return {}
    grades = item.get("correct") if isinstance(item.get("correct"), list) else []
    return {
        "id": item.get("id", index),
        "n_correct": sum(bool(g) for g in grades) if grades else None,
        "n": len(grades) or None,
        "majority_answer": item.get("majority_answer"),
        "correct": item.get("cons"),
    }


def _count(value: Any) -> int | None:
    number = finite_or_none(value)
    return int(number) if number is not None else None


def _text(value: Any) -> str:
    """The problem as the traces store it (their prompt hash must match): eval items carry
    the problem as text; anything else finds no traces."""
    return value if isinstance(value, str) else ""
