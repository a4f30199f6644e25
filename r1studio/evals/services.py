"""Writes for evaluation results; `evals_ingest` gets every run's `eval` events (see apps.py)."""

from __future__ import annotations

import re
from typing import Any

from pipeline.reporting import finite_or_none
from r1studio.evals.models import EvalResult

_CONS = re.compile(r"^cons@(\d+)$")


def evals_ingest(*, run: Any, events: list[dict]) -> int:
    """Store one `EvalResult` per `eval` event; returns how many rows were created.

    Re-ingesting the same event (same run, benchmark and step) updates the row instead of
    adding a second one. Other event types are ignored.
    """
    created = 0
    for event in events:
        if event.get("type") != "eval":
            continue
        metrics = event.get("metrics") or {}
        cons_at_k, k = None, None
        for key, value in metrics.items():
            match = _CONS.match(str(key))
            if match:
                cons_at_k, k = finite_or_none(value), int(match.group(1))
                break
        n_problems = finite_or_none(metrics.get("n_problems"))
        if n_problems is None and isinstance(event.get("items"), list) and event["items"]:
            n_problems = float(len(event["items"]))
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
            },
        )
        created += was_created
    return created
