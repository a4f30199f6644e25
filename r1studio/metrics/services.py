"""Writes for metrics: turning a batch of pipeline events into stored points.

The run supervisor calls `metrics_ingest` once per batch of events, inside the transaction that
also advances `run.events_offset`, so a restart never stores a batch twice; on top of that a
series only accepts steps after its last one, so ingesting the same batch again is harmless.
The work per point is one dict lookup and two list appends; everything else is numpy per
series and a handful of statements per batch (see `storage.py` for the layout).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db import connection, transaction

from pipeline.reporting import finite_or_none
from r1studio.metrics import storage
from r1studio.metrics.models import MetricChunk, MetricSeries

Points = dict[str, list[list[Any]]]


def _collect(events: list[dict]) -> dict[str, tuple[list, list]]:
    """Group the batch's points by series name; eval figures become `eval/<bench>/<metric>`."""
    collected: dict[str, tuple[list, list]] = {}
    for event in events:
        kind = event.get("type")
        if kind == "metrics":
            step, values = event.get("step"), event.get("values")
            if step is None or not values:
                continue
        elif kind == "eval":
            step = event.get("step") or 0
            prefix = f"eval/{event.get('benchmark') or 'benchmark'}/"
            values = {prefix + str(k): v for k, v in (event.get("metrics") or {}).items()}
        else:
            continue
        for name, value in values.items():
            entry = collected.get(name)
            if entry is None:
                entry = collected[name] = ([], [])
            entry[0].append(step)
            entry[1].append(value)
    return collected


def _series_for(run: Any, names: list[str]) -> dict[str, MetricSeries]:
    """The run's series with these names, creating the missing ones."""
    found = {s.name: s for s in MetricSeries.objects.filter(run=run, name__in=names)}
    missing = [name for name in names if name not in found]
    if missing:
        MetricSeries.objects.bulk_create(
            [MetricSeries(run=run, name=name[:255]) for name in missing]
        )
        found.update((s.name, s) for s in MetricSeries.objects.filter(run=run, name__in=missing))
    return found


@transaction.atomic
def metrics_ingest(*, run: Any, events: list[dict]) -> Points:
    """Store the points of `metrics` and `eval` events; returns the new points by series name.

    `metrics` events add one point per value at the event's step; `eval` events add their
    figures as series `eval/<benchmark>/<metric>` (e.g. `eval/math500/pass@1`) and one
    `EvalResult` row each. Values that are not numbers (a null standing for NaN) are stored as
    NaN. The returned points (`{name: [[step, value], ...]}`, NaN as None) are what the
    supervisor publishes on `run:<id>`.
    """
    collected = _collect(events)
    if not collected:
        return {}
    series_by_name = _series_for(run, list(collected))
    new_chunks: list[MetricChunk] = []
    updates: list[tuple] = []
    published: Points = {}
    for name, (step_list, value_list) in collected.items():
        series = series_by_name.get(name[:255])
        if series is None:
            continue
        steps, values = storage.new_points(
            np.asarray(step_list, dtype=np.int64),
            storage.to_values(value_list),
            series.last_step,
        )
        if steps.size == 0:
            continue
        tail_steps, tail_values = storage.unpack(series.tail)
        chunks, (rest_steps, rest_values) = storage.split_chunks(
            np.concatenate((tail_steps, steps)), np.concatenate((tail_values, values))
        )
        for i, (chunk_steps, chunk_values) in enumerate(chunks):
            new_chunks.append(
                MetricChunk(
                    series_id=series.pk,
                    seq=series.chunk_count + i,
                    first_step=int(chunk_steps[0]),
                    last_step=int(chunk_steps[-1]),
                    count=int(chunk_steps.size),
                    summary=storage.pack(*storage.summarize(chunk_steps, chunk_values)),
                    data=storage.pack(chunk_steps, chunk_values),
                )
            )
        first_step = series.first_step if series.first_step is not None else int(steps[0])
        updates.append(
            (
                series.count + int(steps.size),
                series.chunk_count + len(chunks),
                first_step,
                int(steps[-1]),
                finite_or_none(float(values[-1])),
                storage.pack(rest_steps, rest_values),
                series.pk,
            )
        )
        published[name] = [
            list(p) for p in zip(steps.tolist(), storage.json_values(values), strict=True)
        ]
    if new_chunks:
        MetricChunk.objects.bulk_create(new_chunks, batch_size=100)
    if updates:
        _update_series(updates)
    return published


def _update_series(rows: list[tuple]) -> None:
    """One executemany for every touched series (count, chunks, steps, last value, tail)."""
    qn = connection.ops.quote_name
    table = qn(MetricSeries._meta.db_table)
    columns = ["count", "chunk_count", "first_step", "last_step", "last_value", "tail"]
    assignments = ", ".join(f"{qn(c)} = %s" for c in columns)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {qn('id')} = %s", rows)
