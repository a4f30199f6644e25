"""Alerts: the failure signatures people hit with GRPO, read off a run's latest points.

Each rule looks at the last few points of one series (the tail and, when needed, the last
chunk: a couple of small reads) so the run list can show alerts for many runs.

- `no_signal`: `frac_reward_zero_std` near 1 for many steps: every completion of a group earns
  the same reward, the advantages are zero and GRPO learns nothing.
- `truncated`: `completions/clipped_ratio` near 1: completions hit `max_completion_length`.
- `reward_constant`: a reward component (`rewards/<fn>/mean`) has not moved for many steps.
- `nan`: loss or reward is NaN (or null, which is how the pipeline writes a NaN).
- `stalled`: a running run has reported no event for too long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from r1studio.metrics import storage
from r1studio.metrics.models import MetricChunk, MetricSeries

ZERO_STD_STEPS = 20
ZERO_STD_LEVEL = 0.95
CLIPPED_STEPS = 10
CLIPPED_LEVEL = 0.9
CONSTANT_STEPS = 50
NAN_STEPS = 20


@dataclass(frozen=True)
class Alert:
    """One alert: `code` (stable, for tests and CSS), `level` (error|warning), `message`."""

    code: str
    level: str
    message: str


def _recent(series: MetricSeries, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The last `k` points of a series (the tail, topped up from the last chunk)."""
    steps, values = storage.unpack(series.tail)
    if steps.size < k and series.chunk_count:
        blob = getattr(series, "last_chunk_data", None)  # `runs_alerts` fetched them all at once
        if blob is None:
            blob = (
                MetricChunk.objects.filter(series=series, seq=series.chunk_count - 1)
                .values_list("data", flat=True)
                .first()
            )
        chunk_steps, chunk_values = storage.unpack(blob)
        steps = np.concatenate((chunk_steps, steps))
        values = np.concatenate((chunk_values, values))
    return steps[-k:], values[-k:]


def _window(series: dict[str, MetricSeries], name: str, k: int) -> np.ndarray | None:
    """The last `k` values of series `name`; None while it has fewer (too early to tell)."""
    if name not in series:
        return None
    _, values = _recent(series[name], k)
    return values if values.size >= k else None


def _stalled(run: Any) -> Alert | None:
    if run.status != "running":
        return None
    since = run.last_event_at or run.started_at
    if since is None:
        return None
    idle = timezone.now() - since
    if idle < timedelta(seconds=settings.R1STUDIO_STALL_SECONDS):
        return None
    minutes = int(idle.total_seconds() // 60)
    return Alert(
        "stalled",
        "warning",
        f"No events for {minutes} min while running: the process may be hung (a deadlocked "
        "generation, a full disk) or still loading a large model. Check the logs.",
    )


WANTED = ["frac_reward_zero_std", "completions/clipped_ratio", "loss", "reward"]
LONGEST_WINDOW = max(ZERO_STD_STEPS, CLIPPED_STEPS, CONSTANT_STEPS, NAN_STEPS)


def _wanted() -> Q:
    return Q(name__in=WANTED) | Q(name__startswith="rewards/", name__endswith="/mean")


def run_alerts(*, run: Any) -> list[Alert]:
    """The alerts that hold for `run` now, errors first."""
    rows = MetricSeries.objects.filter(_wanted(), run=run)
    return _alerts(run, {s.name: s for s in rows})


def runs_alerts(*, runs: list[Any]) -> dict[int, list[Alert]]:
    """`run_alerts` of many runs (the runs list) in two queries whatever their number: their
    series, then the last chunk of each series whose tail is shorter than a rule's window."""
    by_run: dict[int, dict[str, MetricSeries]] = {run.pk: {} for run in runs}
    rows = list(MetricSeries.objects.filter(_wanted(), run__in=list(by_run)))
    short = {
        s.pk: s.chunk_count - 1
        for s in rows
        if s.chunk_count and storage.unpack(s.tail)[0].size < LONGEST_WINDOW
    }
    if short:
        which = Q()
        for series_id, seq in short.items():
            which |= Q(series_id=series_id, seq=seq)
        blobs = dict(MetricChunk.objects.filter(which).values_list("series_id", "data"))
    for s in rows:
        if s.pk in short:
            s.last_chunk_data = blobs.get(s.pk, b"")
        by_run[s.run_id][s.name] = s
    return {run.pk: _alerts(run, by_run[run.pk]) for run in runs}


def _alerts(run: Any, series: dict[str, MetricSeries]) -> list[Alert]:
    alerts: list[Alert] = []
    for name in ("loss", "reward"):
        if name in series:
            steps, values = _recent(series[name], NAN_STEPS)
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                alerts.append(
                    Alert(
                        "nan",
                        "error",
                        f"{name} is NaN at step {int(steps[bad[0]])}: training diverged or a "
                        "reward returned no score for a whole batch. Lower the learning rate, "
                        "check the reward functions, resume from an earlier checkpoint.",
                    )
                )
    # No signal needs *every* recent step near 1 (min); truncation is judged on the average.
    values = _window(series, "frac_reward_zero_std", ZERO_STD_STEPS)
    if values is not None and np.nanmin(values) >= ZERO_STD_LEVEL:
        alerts.append(
            Alert(
                "no_signal",
                "warning",
                f"frac_reward_zero_std has been ≥ {ZERO_STD_LEVEL} for {ZERO_STD_STEPS} "
                "steps: nearly every group gets identical rewards, so advantages are zero "
                "and nothing is learnt. Tasks may be too hard or too easy, or the reward "
                "cannot parse the answers; raise num_generations or the temperature.",
            )
        )
    values = _window(series, "completions/clipped_ratio", CLIPPED_STEPS)
    if values is not None and np.nanmean(values) >= CLIPPED_LEVEL:
        alerts.append(
            Alert(
                "truncated",
                "warning",
                f"Over {int(CLIPPED_LEVEL * 100)}% of completions hit the length limit in "
                f"the last {CLIPPED_STEPS} steps: answers are cut off before </answer>. "
                "Raise max_completion_length or add a length penalty.",
            )
        )
    for name in sorted(n for n in series if n.startswith("rewards/")):
        values = _window(series, name, CONSTANT_STEPS)
        if values is None:
            continue
        finite = values[np.isfinite(values)]
        if finite.size and np.ptp(finite) < 1e-9:
            alerts.append(
                Alert(
                    "reward_constant",
                    "warning",
                    f"{name} has stayed at {float(finite[-1]):.4g} for {CONSTANT_STEPS} steps: "
                    "this reward gives no signal (always 0: the format never matches or the "
                    "reference cannot be parsed; always 1: it is saturated).",
                )
            )
    stalled = _stalled(run)
    if stalled is not None:
        alerts.append(stalled)
    alerts.sort(key=lambda a: a.level != "error")
    return alerts
