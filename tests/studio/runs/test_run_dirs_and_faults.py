"""Run folders that no other run can get, and supervision that never leaves a run behind.

Real worker, real Redis, real pipeline processes on the toy models.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from r1studio.runs import ingest
from r1studio.runs.models import Checkpoint, Run, RunStatus
from r1studio.runs.services import run_create, run_dir_for, run_launch
from r1studio.runs.supervisor import process_group_alive
from tests.conftest import wait_for


def _launch(user, config: dict, name: str = "toy") -> Run:
    return run_launch(run=run_create(user=user, name=name, config=config), user=user)


def _ended(run: Run) -> Run | None:
    run.refresh_from_db()
    return run if run.is_ended else None


def test_it_gives_the_same_row_id_a_different_folder_in_another_database(settings, tmp_path):
    settings.R1STUDIO_DATA_DIR = tmp_path
    # Run 1 of an old SQLite file and run 1 of a fresh PostgreSQL over the same data dir.
    old, new = Run(pk=1, uid=uuid.uuid4()), Run(pk=1, uid=uuid.uuid4())

    assert run_dir_for(old) != run_dir_for(new)
    assert run_dir_for(new).parent == tmp_path / "runs"


@pytest.mark.django_db(transaction=True)
def test_it_never_writes_into_another_runs_folder(celery_worker, researcher, data_dir, toy_config):
    # A finished run's folder, as a database reset over the same data dir leaves it.
    first = _launch(researcher, toy_config("sft"), name="old")
    wait_for(lambda: _ended(first), timeout=180)
    assert first.status == RunStatus.FINISHED, first.error
    old_dir = Path(first.run_dir)
    before = sorted(p.relative_to(old_dir) for p in old_dir.rglob("*"))

    # A new run pointed at it (the row-id naming did exactly that) is refused, and fails.
    intruder = run_create(user=researcher, name="new", config=toy_config("sft"))
    Run.objects.filter(pk=intruder.pk).update(run_dir=str(old_dir))
    intruder.refresh_from_db()
    run_launch(run=intruder, user=researcher)
    wait_for(lambda: _ended(intruder), timeout=60)

    assert intruder.status == RunStatus.FAILED
    assert "belongs to another run" in intruder.error
    assert sorted(p.relative_to(old_dir) for p in old_dir.rglob("*")) == before
    # A non-empty folder that no run created is refused too.
    stray = data_dir / "stray"
    stray.mkdir()
    (stray / "events.jsonl").write_text("{}\n")
    other = run_create(user=researcher, name="stray", config=toy_config("sft"))
    Run.objects.filter(pk=other.pk).update(run_dir=str(stray))
    other.refresh_from_db()
    run_launch(run=other, user=researcher)
    wait_for(lambda: _ended(other), timeout=60)
    assert other.status == RunStatus.FAILED and "not empty" in other.error


@pytest.mark.django_db(transaction=True)
def test_it_fails_the_run_when_its_own_bookkeeping_breaks(
    celery_worker, researcher, data_dir, toy_config, monkeypatch
):
    def broken(**kwargs):
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    run = _launch(researcher, toy_config("grpo", trainer={"max_steps": 400}))
    wait_for(lambda: Run.objects.filter(pk=run.pk, pid__isnull=False).first(), timeout=60)
    monkeypatch.setattr(ingest, "events_drain", broken)

    wait_for(lambda: _ended(run), timeout=60)

    assert run.status == RunStatus.FAILED
    assert "OverflowError" in run.error and "Retry it" in run.error
    assert not process_group_alive(run.pid)


@pytest.mark.django_db(transaction=True)
def test_it_stops_the_process_of_a_run_marked_lost(celery_worker, researcher, data_dir, toy_config):
    run = _launch(researcher, toy_config("grpo", trainer={"max_steps": 400}))
    wait_for(
        lambda: Run.objects.filter(pk=run.pk, step__gte=1, pid__isnull=False).first(), timeout=120
    )
    run.refresh_from_db()

    # What the sweep does when the database was away for longer than the lost timeout.
    Run.objects.filter(pk=run.pk).update(status=RunStatus.LOST, error="stopped reporting")

    wait_for(lambda: not process_group_alive(run.pid), timeout=60)
    run.refresh_from_db()
    assert run.status == RunStatus.LOST and run.step < 400


@pytest.mark.django_db(transaction=True)
def test_it_drops_checkpoint_rows_whose_folders_were_rotated_away(
    celery_worker, researcher, data_dir, toy_config
):
    run = _launch(
        researcher,
        toy_config(
            "sft", trainer={"max_steps": 6}, output={"save_steps": 2, "save_total_limit": 1}
        ),
    )
    wait_for(lambda: _ended(run), timeout=180)

    assert run.status == RunStatus.FINISHED, run.error
    paths = list(Checkpoint.objects.filter(run=run).values_list("path", flat=True))
    assert paths and all(Path(p).is_dir() for p in paths), paths
