"""The supervisor end to end: real worker, real Redis, real pipeline processes on toy models."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from r1studio.metrics.selectors import run_metric_names, run_metrics_series
from r1studio.runs.models import Checkpoint, Run, RunStatus
from r1studio.runs.selectors import dataset_choices, model_choices
from r1studio.runs.services import run_cancel, run_create, run_launch
from r1studio.runs.supervisor import process_group_alive
from r1studio.traces.models import Trace
from tests.conftest import wait_for


def _launch(user, config: dict, name: str = "toy") -> Run:
    run = run_create(user=user, name=name, config=config)
    return run_launch(run=run, user=user)


def _ended(run: Run) -> Run | None:
    run.refresh_from_db()
    return run if run.is_ended else None


@pytest.mark.django_db(transaction=True)
def test_it_runs_a_toy_grpo_stage_to_finished(celery_worker, researcher, data_dir, toy_config):
    run = _launch(researcher, toy_config("grpo"))

    wait_for(lambda: _ended(run), timeout=180)

    assert run.status == RunStatus.FINISHED, (run.error, run.traceback)
    assert run.step == 6 and run.total_steps == 6 and run.progress == 1.0
    assert run.worker == celery_worker.hostname
    assert run.started_at and run.finished_at and run.last_event_at and run.heartbeat_at
    run_dir = Path(run.run_dir)
    assert run_dir == data_dir / "runs" / f"{run.pk}-{run.uid.hex}"
    assert (run_dir / ".r1studio-run").read_text().strip() == run.uid.hex
    assert (run_dir / "config.json").is_file() and (run_dir / "final").is_dir()
    assert run.events_offset == (run_dir / "events.jsonl").stat().st_size
    assert (run_dir / "stdout.log").exists() and (run_dir / "stderr.log").exists()
    # save_total_limit 2: checkpoint-2 was rotated away, and its row with it
    assert list(Checkpoint.objects.filter(run=run).values_list("step", flat=True)) == [4, 6]
    assert not process_group_alive(run.pid)
    reward = run_metrics_series(run=run, name="reward")
    assert reward["steps"] == [1, 2, 3, 4, 5, 6] and reward["total"] == 6
    assert "rewards/accuracy/mean" in run_metric_names(run=run)
    # samples every 2 steps, 8 completions each; the 4 probe prompts before training and then
    assert Trace.objects.filter(run=run, source="train").count() == 3 * 8
    assert Trace.objects.filter(run=run, source="probe").count() == 4 * 4
    models = [c.path for c in model_choices(user=researcher)]
    assert (
        str(run_dir / "final") in models and str(run_dir / "checkpoints" / "checkpoint-6") in models
    )


@pytest.mark.django_db(transaction=True)
def test_it_runs_a_toy_sft_stage_to_finished(celery_worker, researcher, data_dir, toy_config):
    run = _launch(researcher, toy_config("sft"))

    wait_for(lambda: _ended(run), timeout=180)

    assert run.status == RunStatus.FINISHED, (run.error, run.traceback)
    assert run.step == 4 and (Path(run.run_dir) / "final").is_dir()


@pytest.mark.django_db(transaction=True)
def test_it_records_a_failed_stage_with_its_error(celery_worker, researcher, data_dir, toy_config):
    run = run_create(user=researcher, name="broken", config=toy_config("grpo"))
    # Valid when launched, gone when the stage loads it: the stage fails, the worker lives on.
    Run.objects.filter(pk=run.pk).update(
        config={**run.config, "data": {**run.config["data"], "source": str(data_dir / "x.jsonl")}}
    )
    run.refresh_from_db()
    from r1studio.runs.services import QUEUE_FOR_KIND  # noqa: F401 - documents the routing

    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED, run_dir=str(data_dir / "r"))
    from r1studio.runs.tasks import supervise_run

    supervise_run.apply_async(args=[run.pk], queue="gpu")

    wait_for(lambda: _ended(run), timeout=120)

    assert run.status == RunStatus.FAILED
    assert "x.jsonl" in run.error
    follow_up = _launch(researcher, toy_config("sft", trainer={"max_steps": 1}))
    wait_for(lambda: _ended(follow_up), timeout=120)
    assert follow_up.status == RunStatus.FINISHED


@pytest.mark.django_db(transaction=True)
def test_it_cancels_a_running_run_and_its_process_group(
    celery_worker, researcher, data_dir, toy_config
):
    run = _launch(researcher, toy_config("grpo", trainer={"max_steps": 400}))
    wait_for(
        lambda: Run.objects.filter(pk=run.pk, step__gte=2, pid__isnull=False).first(), timeout=120
    )
    run.refresh_from_db()
    pid = run.pid
    assert psutil.pid_exists(pid) and os.getpgid(pid) == pid

    run_cancel(run=run, user=researcher)

    wait_for(lambda: _ended(run), timeout=60)
    assert run.status == RunStatus.CANCELLED
    assert run.step < 400
    assert not process_group_alive(pid)


@pytest.mark.django_db
def test_it_cancels_a_queued_run_at_once(researcher, toy_config, data_dir):
    run = run_create(user=researcher, name="q", config=toy_config("grpo"))
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
    run.refresh_from_db()

    run = run_cancel(run=run, user=researcher)

    assert run.status == RunStatus.CANCELLED and run.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_it_runs_a_toy_evaluate_stage_on_the_cpu_queue(
    celery_worker, researcher, data_dir, toy_config
):
    run = _launch(researcher, toy_config("evaluate"))

    wait_for(lambda: _ended(run), timeout=180)

    assert run.status == RunStatus.FINISHED, (run.error, run.traceback)
    names = run_metric_names(run=run)
    assert any(name.startswith("eval/") and name.endswith("/pass@1") for name in names), names
    assert Trace.objects.filter(run=run, source="eval").exists()
    assert (Path(run.run_dir) / "eval").is_dir()


@pytest.mark.django_db(transaction=True)
def test_it_offers_a_generated_dataset_in_the_pickers(
    celery_worker, researcher, data_dir, toy_config
):
    run = _launch(researcher, toy_config("generate", filters={"keep_correct": False}))

    wait_for(lambda: _ended(run), timeout=180)

    assert run.status == RunStatus.FINISHED, (run.error, run.traceback)
    dataset = Path(run.run_dir) / "dataset"
    assert dataset.is_dir()
    assert str(dataset) in [c.path for c in dataset_choices(user=researcher)]


def test_it_runs_training_stages_under_accelerate_on_multi_gpu_workers(settings) -> None:
    from r1studio.runs.supervisor import pipeline_command

    config, run_dir = Path("/runs/7/config.json"), Path("/runs/7")
    settings.R1STUDIO_TRAIN_PROCESSES = 1
    assert pipeline_command("grpo", config, run_dir)[1:4] == ["-m", "pipeline", "run"]
    settings.R1STUDIO_TRAIN_PROCESSES = 4
    command = pipeline_command("sft", config, run_dir)
    assert command[1:5] == ["-m", "accelerate.commands.launch", "--num_processes", "4"]
    assert command[5:] == ["-m", "pipeline", "run", str(config), "--run-dir", str(run_dir)]
    # light stages stay one process: generation batches on one GPU (or vLLM) instead
    assert "accelerate.commands.launch" not in pipeline_command("evaluate", config, run_dir)


@pytest.mark.django_db(transaction=True)
def test_it_requeues_a_queued_run_whose_message_was_lost(
    celery_worker, researcher, data_dir, toy_config
):
    from r1studio.runs.services import runs_requeue

    # A queued run with no message in the broker, as after `make run` restarts its Redis.
    run = run_create(user=researcher, name="orphan", config=toy_config("sft"))
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.QUEUED, run_dir=str(data_dir / "runs" / str(run.pk))
    )

    assert runs_requeue() == 1
    wait_for(lambda: _ended(run), timeout=180)
    assert run.status == RunStatus.FINISHED, (run.error, run.traceback)
    assert runs_requeue() == 0
