"""run_alerts fires on the GRPO failure signatures and stays quiet on a healthy run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from r1studio.metrics.selectors import run_alerts
from r1studio.metrics.services import metrics_ingest


def ingest(run: Any, steps: int, **series: Any) -> None:
    events = [
        {"type": "metrics", "step": s, "values": {n: f(s) for n, f in series.items()}}
        for s in range(1, steps + 1)
    ]
    metrics_ingest(run=run, events=events)


def codes(run: Any) -> list[str]:
    return [alert.code for alert in run_alerts(run=run)]


def test_it_is_quiet_on_a_healthy_run(researcher: Any, make_run: Any) -> None:
    run = make_run(researcher, last_event_at=timezone.now())
    ingest(
        run,
        60,
        reward=lambda s: s / 60,
        loss=lambda s: 0.1,
        frac_reward_zero_std=lambda s: 0.2,
        **{
            "rewards/accuracy/mean": lambda s: (s % 7) / 7,
            "completions/clipped_ratio": lambda s: 0.1,
        },
    )
    assert run_alerts(run=run) == []


def test_it_warns_when_groups_have_no_reward_variance(researcher: Any, make_run: Any) -> None:
    run = make_run(researcher)
    ingest(run, 30, frac_reward_zero_std=lambda s: 0.5 if s < 5 else 1.0)
    assert codes(run) == ["no_signal"]


def test_it_warns_when_completions_are_truncated(researcher: Any, make_run: Any) -> None:
    run = make_run(researcher)
    ingest(run, 12, **{"completions/clipped_ratio": lambda s: 0.97})
    assert codes(run) == ["truncated"]


def test_it_warns_when_a_reward_component_is_constant(researcher: Any, make_run: Any) -> None:
    run = make_run(researcher)
    ingest(run, 60, **{"rewards/format/mean": lambda s: 0.0, "rewards/accuracy/mean": lambda s: s})
    alerts = run_alerts(run=run)
    assert [a.code for a in alerts] == ["reward_constant"]
    assert "rewards/format/mean" in alerts[0].message


def test_it_raises_an_error_when_loss_is_nan(researcher: Any, make_run: Any) -> None:
    run = make_run(researcher)
    ingest(run, 10, loss=lambda s: None if s >= 8 else 1.0, reward=lambda s: 0.5)
    alerts = run_alerts(run=run)
    assert [(a.code, a.level) for a in alerts] == [("nan", "error")]
    assert "step 8" in alerts[0].message


def test_it_warns_when_a_running_run_has_been_silent_too_long(
    researcher: Any, make_run: Any, settings: Any
) -> None:
    settings.R1STUDIO_STALL_SECONDS = 600
    silent = make_run(researcher, last_event_at=timezone.now() - timedelta(minutes=30))
    recent = make_run(researcher, last_event_at=timezone.now() - timedelta(minutes=2))
    ended = make_run(
        researcher, status="finished", last_event_at=timezone.now() - timedelta(hours=3)
    )
    assert codes(silent) == ["stalled"]
    assert codes(recent) == []
    assert codes(ended) == []
