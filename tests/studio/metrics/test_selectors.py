"""run_metrics_series: downsampling keeps the extremes, "N of M", after_step, smoothing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from r1studio.metrics import storage
from r1studio.metrics.selectors import (
    downsample_indices,
    run_metrics_after,
    run_metrics_series,
)
from r1studio.metrics.services import metrics_ingest


def ingest_array(run: Any, name: str, values: np.ndarray, batch: int = 20_000) -> None:
    for start in range(0, values.size, batch):
        events = [
            {"type": "metrics", "step": s, "values": {name: float(values[s])}}
            for s in range(start, min(start + batch, values.size))
        ]
        metrics_ingest(run=run, events=events)


@pytest.mark.parametrize("size", [5_000, 150_000])  # raw points / chunk summaries
def test_it_downsamples_to_max_points_keeping_the_minimum_and_maximum(
    researcher: Any, make_run: Any, size: int
) -> None:
    run = make_run(researcher)
    rng = np.random.default_rng(size)
    values = np.cumsum(rng.normal(size=size))
    spike_up, spike_down = size // 3 + 17, 2 * size // 3 + 5
    values[spike_up] = values.max() + 100
    values[spike_down] = values.min() - 100
    ingest_array(run, "reward", values)

    series = run_metrics_series(run=run, name="reward", max_points=500)

    assert series["total"] == size
    assert series["shown"] == len(series["steps"]) == len(series["values"])
    assert 400 <= series["shown"] <= 502
    assert series["steps"] == sorted(series["steps"])
    assert series["steps"][0] == 0 and series["steps"][-1] == size - 1
    assert spike_up in series["steps"] and spike_down in series["steps"]
    assert max(series["values"]) == values[spike_up]
    assert min(series["values"]) == values[spike_down]


def test_it_returns_only_points_after_a_step(researcher: Any, make_run: Any) -> None:
    run = make_run(researcher)
    ingest_array(run, "loss", np.linspace(1, 0, 10_000))

    series = run_metrics_series(run=run, name="loss", max_points=100_000, after_step=9_990)
    after = run_metrics_after(run=run, after_step=9_997)

    assert series["steps"] == list(range(9_991, 10_000))
    assert series["total"] == 9
    assert [p[0] for p in after["loss"]] == [9_998, 9_999]
    assert run_metrics_after(run=run, after_step=10_000) == {}


def test_it_smooths_the_returned_points_on_request(researcher: Any, make_run: Any) -> None:
    run = make_run(researcher)
    ingest_array(run, "reward", np.array([0.0, 1.0, 0.0, 1.0]))

    raw = run_metrics_series(run=run, name="reward")
    smooth = run_metrics_series(run=run, name="reward", smoothing=0.6)

    assert raw["values"] == [0.0, 1.0, 0.0, 1.0]
    assert smooth["values"] == storage.ema([0.0, 1.0, 0.0, 1.0], 0.6)
    assert max(smooth["values"]) < 1.0


def test_it_returns_an_empty_series_for_an_unknown_name(researcher: Any, make_run: Any) -> None:
    series = run_metrics_series(run=make_run(researcher), name="nope")
    assert series == {"name": "nope", "steps": [], "values": [], "total": 0, "shown": 0}


def test_it_keeps_nan_points_visible_as_gaps() -> None:
    steps = np.arange(10_000, dtype=np.int64)
    values = np.sin(steps / 100.0)
    values[5_000:5_010] = np.nan
    index = downsample_indices(steps, values, 300)
    assert np.isnan(values[index]).any()
    assert int(np.nanargmax(values)) in index.tolist()
    assert len(index) <= 302
