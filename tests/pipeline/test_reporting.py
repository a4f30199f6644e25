"""The events file a run writes and the trainer callback that feeds it."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest

from pipeline.reporting import JsonlReporter, clear_stop, request_stop


@pytest.fixture
def reporter(tmp_path: Path):
    reporter = JsonlReporter(tmp_path / "run")
    yield reporter
    reporter.close()
    clear_stop()


def lines(reporter: JsonlReporter) -> list[dict]:
    return [json.loads(line) for line in reporter.path.read_text().splitlines()]


def test_it_writes_one_flushed_json_line_per_event(reporter: JsonlReporter) -> None:
    reporter.status("started", "grpo stage")
    reporter.metrics(3, {"reward": 0.5, "rewards/accuracy/mean": 0.25})
    reporter.samples(3, [{"prompt": "p", "completion": "c", "reward": 1.0}])
    reporter.checkpoint(3, "/x/checkpoint-3")
    reporter.eval(3, "gsm8k", {"pass@1": 0.5}, 4, [{"problem": "1+1"}])
    reporter.dataset("/x/dataset", 10, "messages")
    reporter.log("info", "hello")
    reporter.progress(3, 10)
    # Read while the reporter is still open: every line must already be on disk.
    events = lines(reporter)
    assert [e["type"] for e in events] == [
        "status", "metrics", "samples", "checkpoint", "eval", "dataset", "log", "progress",
    ]  # fmt: skip
    assert all(isinstance(e["time"], float) for e in events)
    assert [e.get("step") for e in events] == [None, 3, 3, 3, 3, None, None, 3]
    assert events[0] == {**events[0], "state": "started", "message": "grpo stage"}
    assert events[1]["values"] == {"reward": 0.5, "rewards/accuracy/mean": 0.25}
    assert events[4]["metrics"] == {"pass@1": 0.5} and events[4]["n_samples"] == 4
    assert events[5] == {**events[5], "path": "/x/dataset", "rows": 10, "kind": "messages"}


def test_it_keeps_metrics_json_safe(reporter: JsonlReporter) -> None:
    import torch

    reporter.metrics(1, {"loss": torch.tensor(0.5), "kl": math.nan, "note": "text", "ok": 2})
    reporter.samples(1, [{"reward": math.inf, "advantage": torch.tensor(-1.0)}])
    metrics, samples = lines(reporter)
    # a NaN is kept as null: the studio's NaN alert must see a diverged value, not a gap
    assert metrics["values"] == {"loss": 0.5, "kl": None, "ok": 2.0}
    assert samples["items"] == [{"reward": None, "advantage": -1.0}]


def test_progress_estimates_the_time_left(reporter: JsonlReporter) -> None:
    import time

    reporter.progress(10, 110)
    time.sleep(0.05)
    reporter.progress(20, 110)
    first, second = lines(reporter)
    assert first["eta_seconds"] is None
    assert second["total_steps"] == 110
    # 10 steps took >= 50 ms, so 90 more take >= 0.45 s
    assert second["eta_seconds"] >= 0.45


def test_the_callback_turns_logs_saves_and_stop_requests_into_events(reporter, tmp_path) -> None:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from pipeline.reporting import ReporterCallback

    args = TrainingArguments(output_dir=str(tmp_path / "checkpoints"), report_to=[])
    state = TrainerState(max_steps=10)
    state.global_step = 4
    control = TrainerControl()
    callback = ReporterCallback(reporter)

    callback.on_train_begin(args, state, control)
    callback.on_log(args, state, control, logs={"loss": 1.5, "reward": 0.25})
    callback.on_step_end(args, state, control)
    callback.on_save(args, state, control)
    assert not control.should_training_stop

    request_stop()
    callback.on_step_end(args, state, control)
    assert control.should_save and control.should_training_stop and callback.stopped

    events = lines(reporter)
    assert events[0] == {**events[0], "state": "running", "total_steps": 10}
    assert events[1] == {**events[1], "type": "metrics", "step": 4}
    assert events[1]["values"] == {"loss": 1.5, "reward": 0.25}
    assert events[2]["type"] == "progress"
    assert events[3] == {
        **events[3],
        "type": "checkpoint",
        "path": str(tmp_path / "checkpoints" / "checkpoint-4"),
    }


def test_it_echoes_each_event_as_a_readable_log_line(reporter, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.events")

    reporter.status("running", total_steps=10)
    reporter.metrics(2, {"loss": 0.5, "reward": 0.25, "rewards/format/mean": 1.0, "epoch": 0.1})
    reporter.samples(2, [{"prompt": "p", "completion": "c"}])
    reporter.log("warning", "the judge is slow")
    reporter.status("failed", "Traceback: boom")

    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "running (10 steps)"),
        ("INFO", "step 2: reward=0.25, loss=0.5, rewards/format/mean=1"),
        ("WARNING", "the judge is slow"),
        ("ERROR", "failed: Traceback: boom"),
    ]
