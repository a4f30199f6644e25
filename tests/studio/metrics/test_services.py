"""metrics_ingest: events in, series out; chunks, eval results, NaN, idempotence."""

from __future__ import annotations

import math
from typing import Any

from r1studio.evals.models import EvalResult
from r1studio.metrics import storage
from r1studio.metrics.models import MetricChunk, MetricSeries
from r1studio.metrics.selectors import run_metric_names, run_metrics_series
from r1studio.metrics.services import metrics_ingest
from r1studio.runs.events import events_dispatch


def metrics_events(steps: range, **series: Any) -> list[dict]:
    """One `metrics` event per step; each keyword is a name → function of the step."""
    return [
        {"type": "metrics", "time": 0.0, "step": s, "values": {n: f(s) for n, f in series.items()}}
        for s in steps
    ]


def test_it_stores_the_points_of_metrics_events(researcher: Any, make_run: Any) -> None:
    run = make_run(researcher)
    events = metrics_events(range(1, 11), reward=lambda s: s / 10, loss=lambda s: 1 / s)
    events.append({"type": "log", "time": 0.0, "level": "info", "message": "ignored"})

    published = metrics_ingest(run=run, events=events)

    assert run_metric_names(run=run) == ["loss", "reward"]
    assert published["reward"][:2] == [[1, 0.1], [2, 0.2]]
    series = run_metrics_series(run=run, name="reward", max_points=100)
    assert series["steps"] == list(range(1, 11))
    assert series["values"] == [s / 10 for s in range(1, 11)]
    assert (series["total"], series["shown"]) == (10, 10)
    row = MetricSeries.objects.get(run=run, name="loss")
    assert (row.count, row.first_step, row.last_step, row.last_value) == (10, 1, 10, 0.1)


def test_it_stores_nothing_twice_when_a_batch_is_ingested_again(
    researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    events = metrics_events(range(1, 6), reward=lambda s: float(s))
    metrics_ingest(run=run, events=events)

    again = metrics_ingest(run=run, events=events)
    replayed = metrics_ingest(run=run, events=metrics_events(range(3, 8), reward=lambda s: -1.0))

    assert again == {}
    assert replayed == {"reward": [[6, -1.0], [7, -1.0]]}
    series = run_metrics_series(run=run, name="reward")
    assert series["steps"] == [1, 2, 3, 4, 5, 6, 7]
    assert series["values"][:5] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_it_fills_chunks_across_batches_and_keeps_the_rest_in_the_tail(
    researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    size = storage.CHUNK_POINTS
    total = 2 * size + 123
    for start in range(0, total, 1000):
        steps = range(start, min(start + 1000, total))
        metrics_ingest(run=run, events=metrics_events(steps, kl=lambda s: s * 0.5))

    row = MetricSeries.objects.get(run=run, name="kl")
    assert (row.count, row.chunk_count) == (total, 2)
    chunks = list(MetricChunk.objects.filter(series=row).order_by("seq"))
    assert [(c.first_step, c.last_step, c.count) for c in chunks] == [
        (0, size - 1, size),
        (size, 2 * size - 1, size),
    ]
    assert storage.unpack(row.tail)[0].tolist() == list(range(2 * size, total))
    series = run_metrics_series(run=run, name="kl", max_points=20_000)
    assert series["steps"] == list(range(total))
    assert series["values"][-1] == (total - 1) * 0.5


def test_it_stores_eval_events_as_series_and_results_through_the_registry(
    researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    event = {
        "type": "eval",
        "time": 0.0,
        "step": 20,
        "benchmark": "math500",
        "metrics": {"pass@1": 0.25, "cons@4": 0.5, "n_problems": 8.0},
        "n_samples": 4,
        "items": [],
    }
    published = events_dispatch(run=run, events=[event])["metrics"]
    events_dispatch(run=run, events=[event])  # a second delivery adds nothing

    assert published["eval/math500/pass@1"] == [[20, 0.25]]
    assert "eval/math500/cons@4" in run_metric_names(run=run)
    result = EvalResult.objects.get(run=run)
    assert (result.benchmark, result.step, result.pass_at_1) == ("math500", 20, 0.25)
    assert (result.cons_at_k, result.k, result.n_samples, result.n_problems) == (0.5, 4, 4, 8)


def test_it_stores_a_null_value_as_nan_and_returns_it_as_none(
    researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    events = metrics_events(range(1, 4), loss=lambda s: None if s == 2 else float(s))

    published = metrics_ingest(run=run, events=events)

    assert published["loss"] == [[1, 1.0], [2, None], [3, 3.0]]
    assert run_metrics_series(run=run, name="loss")["values"] == [1.0, None, 3.0]
    tail_values = storage.unpack(MetricSeries.objects.get(run=run).tail)[1]
    assert math.isnan(tail_values[1])
