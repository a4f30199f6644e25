"""Events into the database: complete lines only, exactly once, resumed steps skipped."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from r1studio.metrics.selectors import run_metrics_series
from r1studio.runs.ingest import events_drain, events_ingest, events_read, split_traceback
from r1studio.runs.models import Checkpoint, Run, RunStatus
from r1studio.runs.services import run_create
from r1studio.runs.sweep import runs_sweep_lost


def _line(**event) -> bytes:
    return (json.dumps({"time": 1.0, **event}) + "\n").encode()


@pytest.fixture
def run(researcher, toy_config, data_dir) -> Run:
    run = run_create(user=researcher, name="ingest", config=toy_config("grpo"))
    run_dir = data_dir / "runs" / str(run.pk)
    run_dir.mkdir(parents=True)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, run_dir=str(run_dir))
    run.refresh_from_db()
    return run


def test_it_reads_only_complete_lines(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(_line(type="log", message="a") + b"not json\n" + b'{"type": "log", "mes')

    events, offset = events_read(path, 0)

    assert [e["message"] for e in events] == ["a"]
    assert offset == len(_line(type="log", message="a") + b"not json\n")
    assert events_read(path, offset) == ([], offset)


def test_it_stores_a_batch_once_even_when_asked_twice(run: Run):
    events = [_m(1, 0.1), _m(2, 0.2), {"type": "checkpoint", "step": 2, "path": "/c/checkpoint-2"}]

    first = events_ingest(run_id=run.pk, events=events, start_offset=0, end_offset=300)
    second = events_ingest(run_id=run.pk, events=events, start_offset=0, end_offset=300)

    assert first["metrics"]["reward"] == [[1, 0.1], [2, 0.2]] and second is None
    assert run_metrics_series(run=run, name="reward")["total"] == 2
    assert Checkpoint.objects.get(run=run).step == 2
    run.refresh_from_db()
    assert run.events_offset == 300 and run.step == 2


def test_it_skips_the_steps_a_resumed_stage_repeats(run: Run):
    events_ingest(
        run_id=run.pk, events=[_m(s, s / 10) for s in (1, 2, 3, 4)], start_offset=0, end_offset=10
    )

    events_ingest(
        run_id=run.pk,
        events=[_m(s, s) for s in (3, 4, 5, 6)],
        start_offset=10,
        end_offset=20,
        skip_until_step=4,
    )

    series = run_metrics_series(run=run, name="reward")
    assert series["steps"] == [1, 2, 3, 4, 5, 6]
    assert series["values"] == [0.1, 0.2, 0.3, 0.4, 5.0, 6.0]


def test_it_tracks_progress_and_the_error_of_a_failed_stage(run: Run):
    path = Path(run.run_dir) / "events.jsonl"
    trace = 'Traceback (most recent call last):\n  File "x.py"\nValueError: boom'
    path.write_bytes(
        _line(type="status", state="running", total_steps=10)
        + _line(type="progress", step=5, total_steps=10, eta_seconds=12.5)
        + _line(type="status", state="failed", message=trace)
    )

    events_drain(run=run)

    run.refresh_from_db()
    assert (run.step, run.total_steps, run.progress, run.eta_seconds) == (5, 10, 0.5, 12.5)
    assert run.error == "ValueError: boom" and run.traceback == trace
    assert run.events_offset == path.stat().st_size and run.last_event_at is not None
    assert split_traceback("bad data") == ("bad data", "")


def test_it_sweeps_runs_whose_heartbeat_stopped(run: Run, settings):
    settings.R1STUDIO_LOST_AFTER_SECONDS = 30
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=31))
    fresh = Run.objects.create(
        name="alive", owner=run.owner, kind="grpo", status=RunStatus.RUNNING,
        heartbeat_at=timezone.now(),
    )  # fmt: skip

    assert runs_sweep_lost() == 1

    run.refresh_from_db()
    fresh.refresh_from_db()
    assert run.status == RunStatus.LOST and run.finished_at is not None
    assert fresh.status == RunStatus.RUNNING


def test_it_names_an_evaluated_file_by_its_short_name(run: Run):
    from r1studio.evals.models import EvalResult
    from r1studio.metrics.selectors import run_metric_names
    from r1studio.traces.models import Trace

    item = {"prompt": "1+1?", "reference": "2", "completions": ["<answer>2</answer>"],
            "correct": [True], "pass@1": 1.0}  # fmt: skip
    event = {"type": "eval", "step": 5, "benchmark": "/srv/toy/data/heldout.jsonl",
             "metrics": {"pass@1": 0.5}, "n_samples": 1, "items": [item]}  # fmt: skip

    events_ingest(run_id=run.pk, events=[event], start_offset=0, end_offset=10)

    assert EvalResult.objects.get(run=run).benchmark == "heldout"
    assert "eval/heldout/pass@1" in run_metric_names(run=run)
    assert set(Trace.objects.filter(run=run).values_list("benchmark", flat=True)) <= {"heldout"}


def _m(step: int, reward: float) -> dict:
    return {"type": "metrics", "time": 1.0, "step": step, "values": {"reward": reward}}
