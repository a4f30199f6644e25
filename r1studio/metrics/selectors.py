"""Reads for metrics: which runs a user may see, downsampled series, names and alerts.

A chart never needs more points than it has pixels, so `run_metrics_series` returns at most
`max_points` points chosen by MinMaxLTTB (tsdownsample), plus the series' global minimum and
maximum, which LTTB alone may drop. For a long series it reads the chunks' M4 summaries
(1/16 of the points, every extreme kept) instead of the raw points, which is what keeps a chart
of a 1M-point series well under 100 ms.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from tsdownsample import MinMaxLTTBDownsampler

from pipeline.reporting import finite_or_none
from r1studio.metrics import storage
from r1studio.metrics.alerts import Alert, run_alerts
from r1studio.metrics.models import MetricChunk, MetricSeries
from r1studio.runs.models import Run
from r1studio.runs.selectors import runs_visible_to

__all__ = [
    "Alert",
    "downsample_indices",
    "run_alerts",
    "run_for_user",
    "run_last_values",
    "run_metric_names",
    "run_metric_points",
    "run_metrics_after",
    "run_metrics_series",
    "run_series_json",
    "run_series_version",
    "runs_visible_to",
]

MAX_POINTS_LIMIT = 20_000
# Read summaries once they still hold >= 4 points per output point (MinMaxLTTB's own ratio):
# a summary keeps at least 2 of every SUMMARY_BUCKET points.
SUMMARY_MIN_RATIO = storage.SUMMARY_BUCKET * 2
CHART_JSON_SECONDS = 600  # how long an unrequested chart JSON stays in the cache


def run_for_user(*, user: Any, run_id: int) -> Run | None:
    """The run, or None when it does not exist or `user` may not see it (the runs app's
    visibility rule, `r1studio.runs.selectors.runs_visible_to`)."""
    return runs_visible_to(user=user).filter(pk=run_id).first()


def downsample_indices(steps: np.ndarray, values: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most ~`max_points` points: MinMaxLTTB plus the global min and max.

    NaN points are not candidates for LTTB, so the first and last NaN are added too: a
    diverged loss shows as a gap instead of vanishing.
    """
    n = values.size
    if n <= max_points:
        return np.arange(n)
    finite = np.isfinite(values)
    extras: list[int] = []
    if finite.any():
        extras += [
            int(np.where(finite, values, np.inf).argmin()),
            int(np.where(finite, values, -np.inf).argmax()),
        ]
        nan_at = np.flatnonzero(~finite)
        if nan_at.size:
            extras += [int(nan_at[0]), int(nan_at[-1])]
        picked = MinMaxLTTBDownsampler().downsample(
            steps, np.where(finite, values, np.nan), n_out=max(3, max_points - len(extras))
        )
    else:
        picked = np.linspace(0, n - 1, max_points).astype(np.int64)
    return np.unique(np.concatenate((picked.astype(np.int64), np.asarray(extras, np.int64))))


def _points(
    series: MetricSeries, after_step: int | None, max_points: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(steps, values, total) of a series: raw points after `after_step`, or for a long series
    without `after_step` the M4 summaries of its chunks plus its summarized tail."""
    tail_steps, tail_values = storage.unpack(series.tail)
    use_summary = (
        after_step is None
        and series.chunk_count > 0
        and series.count > SUMMARY_MIN_RATIO * max_points
    )
    if series.chunk_count == 0:  # every point is in the tail: no chunk to read
        steps, values = tail_steps, tail_values
    else:
        chunks = MetricChunk.objects.filter(series=series).order_by("seq")
        if use_summary:
            parts = [storage.unpack(b) for b in chunks.values_list("summary", flat=True)]
            parts.append(storage.summarize(tail_steps, tail_values))
        else:
            if after_step is not None:
                chunks = chunks.filter(last_step__gt=after_step)
            parts = [storage.unpack(b) for b in chunks.values_list("data", flat=True)]
            parts.append((tail_steps, tail_values))
        steps = np.concatenate([p[0] for p in parts])
        values = np.concatenate([p[1] for p in parts])
    if after_step is not None:
        keep = steps > after_step
        steps, values = steps[keep], values[keep]
        return steps, values, int(steps.size)
    return steps, values, int(series.count)


def _clamp(max_points: int) -> int:
    return max(3, min(int(max_points), MAX_POINTS_LIMIT))


def series_payload(
    series: MetricSeries | None,
    *,
    name: str,
    max_points: int = 500,
    smoothing: float = 0.0,
    after_step: int | None = None,
) -> dict[str, Any]:
    """`run_metrics_series` for an already fetched series row (None: an empty series)."""
    if series is None:
        return {"name": name, "steps": [], "values": [], "total": 0, "shown": 0}
    max_points = _clamp(max_points)
    steps, values, total = _points(series, after_step, max_points)
    index = downsample_indices(steps, values, max_points)
    steps, values = steps[index], values[index]
    shown_values = storage.json_values(values)
    if smoothing and 0 < smoothing < 1:
        shown_values = storage.ema(shown_values, float(smoothing))
    return {
        "name": name,
        "steps": steps.tolist(),
        "values": shown_values,
        "total": total,
        "shown": int(steps.size),
    }


def run_metrics_series(
    *,
    run: Run,
    name: str,
    max_points: int = 500,
    smoothing: float = 0.0,
    after_step: int | None = None,
) -> dict[str, Any]:
    """One series of a run, downsampled to `max_points` keeping its minimum and maximum.

    Returns `{"name", "steps", "values", "total", "shown"}`: `total` points exist (after
    `after_step` when given), `shown` are returned ("shown of total points" in the UI). NaN
    values come back as None. `smoothing` in (0, 1) applies TensorBoard's debiased EMA to the
    returned points (server-side, for API clients; the charts smooth in the browser instead so
    that the slider needs no round trip). `after_step` returns only points after that step, as
    the live stream does on reconnect.
    """
    series = MetricSeries.objects.filter(run=run, name=name).first()
    return series_payload(
        series, name=name, max_points=max_points, smoothing=smoothing, after_step=after_step
    )


def _series_names_filter(run: Run, names: list[str] | None) -> Any:
    qs = MetricSeries.objects.filter(run=run)
    return qs if names is None else qs.filter(name__in=names)


def run_metrics_many(
    *, run: Run, names: list[str] | None = None, max_points: int = 500
) -> list[dict[str, Any]]:
    """Several series of a run (all when `names` is None), each as `run_metrics_series`."""
    qs = _series_names_filter(run, names).order_by("name")
    return [series_payload(s, name=s.name, max_points=max_points) for s in qs]


def run_series_version(*, run: Run, names: list[str] | None, max_points: int) -> str:
    """A tag (an HTTP ETag) that changes whenever `run_series_json` would.

    The chart JSON depends on the run (its id, creation time and status), the request and
    each series' points; series only ever grow, so a series' id and point count name its
    points. One small query, without the points themselves.
    """
    versions = sorted(_series_names_filter(run, names).values_list("id", "count"))
    key = [run.pk, run.created_at.isoformat(), run.status, _clamp(max_points)]
    key += [sorted(set(names)) if names is not None else None, versions]
    return '"' + hashlib.sha1(json.dumps(key).encode()).hexdigest() + '"'


def run_series_json(*, run: Run, names: list[str] | None, max_points: int, version: str) -> bytes:
    """The run page's chart JSON: `run_metrics_many` with the run's status and last step.

    Cached (Django's cache: per process by default) with `version`, the tag
    `run_series_version` gives for the same arguments, so the viewers polling a run share one
    computation per change of its points; one entry per run and chart, the latest. Points read
    after the tag are at least as new as the tag says, so the cache never hands out older
    points than the tag promises.
    """
    chart = [run.pk, run.created_at.isoformat(), sorted(set(names or [])), names is None]
    chart.append(_clamp(max_points))
    key = "metrics:series-json:" + hashlib.sha1(json.dumps(chart).encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    series = run_metrics_many(run=run, names=names, max_points=max_points)
    last_steps = [s["steps"][-1] for s in series if s["steps"]]
    payload = {
        "run": run.pk,
        "status": run.status,
        "last_step": max(last_steps) if last_steps else None,
        "series": series,
    }
    body = json.dumps(payload, cls=DjangoJSONEncoder).encode()
    cache.set(key, (version, body), CHART_JSON_SECONDS)
    return body


def run_last_values(*, run: Run, names: list[str]) -> dict[str, float | None]:
    """The last logged value of each of these series of the run (absent names are left out)."""
    rows = MetricSeries.objects.filter(run=run, name__in=names).values_list("name", "last_value")
    return {name: finite_or_none(value) for name, value in rows}


def run_metric_points(*, run: Run) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Every raw point of the run as `(name, steps, values)` pieces, one chunk at a time.

    Series in name order, points in step order; at most one chunk's blob is in memory at once,
    so an export of a million points streams in constant memory.
    """
    series = list(MetricSeries.objects.filter(run=run).order_by("name").values_list("pk", "name"))
    for pk, name in series:
        blobs = (
            MetricChunk.objects.filter(series_id=pk).order_by("seq").values_list("data", flat=True)
        )
        for blob in blobs.iterator(chunk_size=4):
            yield (name, *storage.unpack(blob))
        tail = MetricSeries.objects.filter(pk=pk).values_list("tail", flat=True).first()
        steps, values = storage.unpack(tail)
        if steps.size:
            yield name, steps, values


def run_metric_names(*, run: Run) -> list[str]:
    """Names of the run's series, sorted."""
    return list(
        MetricSeries.objects.filter(run=run).order_by("name").values_list("name", flat=True)
    )


def run_metrics_after(
    *, run: Run, after_step: int | None, max_points: int = 2000
) -> dict[str, list[list[Any]]]:
    """Every series' points after `after_step` (all when None) as `{name: [[step, value]]}`.

    What the live stream sends first on (re)connect; each series is downsampled to
    `max_points` when more came in while the browser was away.
    """
    out: dict[str, list[list[Any]]] = {}
    qs = MetricSeries.objects.filter(run=run)
    if after_step is not None:
        qs = qs.filter(last_step__gt=after_step)
    for series in qs.order_by("name"):
        payload = series_payload(
            series, name=series.name, max_points=max_points, after_step=after_step
        )
        if payload["steps"]:
            out[series.name] = [
                list(p) for p in zip(payload["steps"], payload["values"], strict=True)
            ]
    return out
