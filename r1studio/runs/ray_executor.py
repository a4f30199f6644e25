"""Stages on a Ray cluster: submit `python -m pipeline run` as a Ray job, watch it, stop it.

A run whose executor is `ray` is never spawned by a worker. `run_launch` queues it on the `ray`
Celery queue, where `runs.ray_watch` (r1studio/runs/ray_tasks.py) calls `ray_tick` again and
again, a few seconds apart, each call a short task: no worker slot is held for the run's length.

The first tick claims the run (queued → running), makes a run token and submits the job through
the Jobs API (`JobSubmissionClient(RAY_ADDRESS).submit_job`) with

- `submission_id` = `r1studio-run-<id>-<uid>` (`-r<n>` for the n-th attempt, after a resume):
  submitting an attempt again (a duplicate message, a retried task) finds its job already there
  and starts nothing;
- an entrypoint that writes the config from the runtime env into the run folder on the cluster
  and runs the stage, under `accelerate launch` with one process per GPU when it asks for more
  than one;
- `entrypoint_num_gpus` = the GPUs the launch asked for (R1STUDIO_RAY_GPUS by default);
- a runtime env with the config, the studio's URL, the run's id and its token, so that the stage
  reports over HTTP ingest (r1studio.runs.remote), as an external script does.

Every later tick reads the job's status and the new part of its log, appends that log to the run
folder's `stdout.log` (the run page's log pane), stamps the heartbeat, and
- stops the job once the user cancelled (`run_cancel` sets `cancel_requested`);
- ends the run when the job ended: SUCCEEDED → finished, FAILED → failed (the job's message, and
  the end of its log as the traceback), STOPPED → cancelled; a status the stage's own events
  set first (finished, failed) is left as it is;
- marks the run `lost` when the cluster has not answered for R1STUDIO_LOST_AFTER_SECONDS, or no
  longer knows the job (restarted); the heartbeat says the watcher lives, so the lost-run sweep
  catches a watcher that died (its chain of ticks broken). A lost run is resumable: `run_resume`
  queues it again and the next attempt (a new submission id) starts from the last checkpoint the
  stage reported, after the old attempt's job is stopped if the cluster still runs it.
"""

from __future__ import annotations

import json
import logging
import shlex
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pipeline.access import roots_env
from r1studio.runs import services
from r1studio.runs.hooks import runs_ended
from r1studio.runs.ingest import events_publish, run_state_payload
from r1studio.runs.inputs import config_inputs_resolve
from r1studio.runs.models import Run, RunExecutor, RunStatus
from r1studio.runs.remote import run_token_create

logger = logging.getLogger(__name__)

RAY_QUEUE = services.RAY_QUEUE
WATCH_TASK = services.RAY_WATCH_TASK
TRAINING_KINDS = ("grpo", "sft")
# Ray's job states (ray.job_submission.JobStatus values) and what they make of a run.
JOB_ENDS = {
    "SUCCEEDED": RunStatus.FINISHED,
    "FAILED": RunStatus.FAILED,
    "STOPPED": RunStatus.CANCELLED,
}
# What the stage reads to report over HTTP (pipeline.reporting's HttpReporter).
CONFIG_ENV = "R1STUDIO_STAGE_CONFIG"
URL_ENV = "R1STUDIO_URL"
RUN_ENV = "R1STUDIO_RUN_ID"
TOKEN_ENV = "R1STUDIO_RUN_TOKEN"
LOG_FILE = "stdout.log"
TRACEBACK_LINES = 60


class RayError(RuntimeError):
    """The cluster cannot be used: no address configured, `ray` not installed, or it refused."""


class ClusterAway(RayError):
    """The cluster did not answer (network, dashboard down): worth trying again."""


# (connect, read) seconds for each request to the cluster's Jobs API; a submit that uploads the
# working directory's package is the slowest answer.
RAY_HTTP_TIMEOUT_S = (10.0, 120.0)


def ray_enabled() -> bool:
    """True when a cluster is configured (RAY_ADDRESS): the launch form then offers it."""
    return bool(settings.RAY_ADDRESS)


def ray_client(address: str | None = None) -> Any:
    """A `JobSubmissionClient` for the cluster; ClusterAway when it does not answer."""
    address = address or settings.RAY_ADDRESS
    if not address:
        raise RayError("No Ray cluster is configured: set RAY_ADDRESS (see .env.example).")
    try:
        # Imported here: `ray` is an optional extra (`pip install -e '.[ray]'`), heavy to load,
        # needed only by the workers of the `ray` queue.
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise RayError(
            "RAY_ADDRESS is set but the `ray` package is missing: pip install 'ray[default]'"
        ) from None

    class TimedClient(JobSubmissionClient):
        """Ray's client sends its requests with no timeout: a dashboard that accepts the
        connection and never answers would hold the watcher forever (it is then ClusterAway)."""

        def _do_request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", RAY_HTTP_TIMEOUT_S)
            return super()._do_request(*args, **kwargs)

    try:
        return TimedClient(address)
    except Exception as error:  # requests' ConnectionError, Ray's "Failed to connect"
        raise ClusterAway(f"the Ray cluster at {address} does not answer: {error}") from error


def _not_found(error: Exception) -> bool:
    return "does not exist" in str(error) or "404" in str(error)


def _transient(error: Exception) -> bool:
    """A server-side failure worth retrying (the dashboard's agent starting, a 5xx), as opposed
    to a job the cluster refuses (a 400: bad runtime env, bad resources)."""
    text = str(error)
    return "try again" in text or any(f"status code {code}" in text for code in (500, 502, 503))


def submission_id_for(run: Run, attempt: int = 1) -> str:
    """The stable id of the run's n-th job: the same attempt always gets the same id."""
    base = f"r1studio-run-{run.pk}-{run.uid.hex[:12]}"
    return base if attempt <= 1 else f"{base}-r{attempt}"


def remote_run_dir(run: Run) -> str:
    """The run folder as the cluster's nodes see it: R1STUDIO_RAY_RUNS_DIR/<name>, else the same
    path as here (storage shared between the studio and the cluster)."""
    root = settings.R1STUDIO_RAY_RUNS_DIR
    return str(Path(root) / Path(run.run_dir).name) if root else run.run_dir


def job_resources(run: Run) -> dict[str, int]:
    """GPUs per node and nodes the job asks for: the launch's choice, else the defaults."""
    asked = run.job_state.get("resources") or {}
    gpus = asked.get("gpus")
    gpus = int(settings.R1STUDIO_RAY_GPUS) if gpus is None else int(gpus)
    return {"gpus": max(0, gpus), "nodes": max(1, int(asked.get("nodes") or 1))}


def job_entrypoint(run: Run, *, run_dir: str, resume: bool) -> str:
    """The shell command the job runs: write the config from the env, then run the stage."""
    python = settings.R1STUDIO_RAY_PYTHON
    config_path = f"{run_dir}/config.json"
    stage = ["-m", "pipeline", "run", config_path, "--run-dir", run_dir]
    if resume:
        stage.append("--resume")
    gpus = job_resources(run)["gpus"]
    if run.kind in TRAINING_KINDS and gpus > 1:
        # One process per GPU on the job's node, as the local supervisor does on a GPU worker.
        stage = ["-m", "accelerate.commands.launch", "--num_processes", str(gpus), *stage]
    command = " ".join(shlex.quote(part) for part in [python, *stage])
    folder, config = shlex.quote(run_dir), shlex.quote(config_path)
    return f'mkdir -p {folder} && printf %s "${CONFIG_ENV}" > {config} && exec {command}'


def job_runtime_env(run: Run, *, run_dir: str, token: str) -> dict[str, Any]:
    """Env vars of the job: the config, where to report and how; nothing is uploaded."""
    config = config_inputs_resolve(run.config, run=run)
    env = {
        CONFIG_ENV: json.dumps(config),
        URL_ENV: settings.R1STUDIO_RAY_STUDIO_URL,
        RUN_ENV: str(run.pk),
        TOKEN_ENV: token,
        "PYTHONUNBUFFERED": "1",
        "R1STUDIO_RUNS_ROOT": str(Path(run_dir).parent),
        # Ray's job supervisor waits this long after SIGTERM before SIGKILL: time for the stage
        # to save a checkpoint, as a cancel on a local worker gives it.
        "RAY_JOB_STOP_WAIT_TIME_S": str(int(settings.R1STUDIO_CANCEL_GRACE_SECONDS)),
    }
    env.update(
        roots_env(data_dir=settings.R1STUDIO_DATA_DIR, extra=settings.R1STUDIO_ALLOWED_ROOTS)
    )
    return {"env_vars": env}


def job_submit(*, run: Run, attempt: int, resume: bool, client: Any | None = None) -> str:
    """Submit the run's job for `attempt`; returns its submission id. Idempotent: an attempt
    already submitted is found by its id and not started again (nor its token renewed)."""
    client = client or ray_client()
    submission_id = submission_id_for(run, attempt)
    try:
        client.get_job_status(submission_id)
        return submission_id  # submitted before (a duplicate message): nothing to start
    except Exception as error:
        if not _not_found(error):
            raise ClusterAway(f"the Ray cluster does not answer: {error}") from error
    run_dir = remote_run_dir(run)
    token = run_token_create(run=run)  # revokes the token of an earlier attempt
    resources = job_resources(run)
    try:
        client.submit_job(
            entrypoint=job_entrypoint(run, run_dir=run_dir, resume=resume),
            submission_id=submission_id,
            runtime_env=job_runtime_env(run, run_dir=run_dir, token=token),
            entrypoint_num_gpus=resources["gpus"] or None,
            metadata={"r1studio_run": str(run.pk), "name": run.name[:100]},
        )
    except Exception as error:
        if "already exists" in str(error):
            return submission_id  # two ticks raced: the other one submitted it
        if _transient(error):  # e.g. "No available agent to submit job, please try again"
            raise ClusterAway(f"the Ray cluster cannot take the job now: {error}") from error
        raise RayError(f"the Ray cluster refused the job: {error}") from error
    return submission_id


def job_stop(*, submission_id: str, client: Any | None = None) -> bool:
    """Ask the cluster to stop a job (SIGTERM, SIGKILL after the grace); False if it had ended
    or is unknown."""
    client = client or ray_client()
    try:
        return bool(client.stop_job(submission_id))
    except Exception as error:
        if _not_found(error):
            return False
        raise ClusterAway(f"the Ray cluster does not answer: {error}") from error


# --- the watcher ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NextTick:
    watcher: str
    delay: float


def _state_update(run: Run, **changes: Any) -> dict[str, Any]:
    state = {**run.job_state, **changes}
    Run.objects.filter(pk=run.pk).update(job_state=state)
    run.job_state = state
    return state


def _claim(run: Run) -> Run | None:
    """Queued → running for a new watcher; None when another tick (or a cancel) won."""
    resume = run.started_at is not None
    attempt = int(run.job_state.get("attempt") or 0) + 1
    watcher = uuid.uuid4().hex
    now = timezone.now()
    state = {
        **run.job_state,
        "attempt": attempt,
        "resume": resume,
        # The trainer resumed from a checkpoint repeats the steps after it: the points already
        # stored are kept, as the local supervisor does (r1studio.runs.remote reads this).
        "skip_until_step": run.step if resume and run.kind in TRAINING_KINDS else None,
        "watcher": watcher,
        "address": settings.RAY_ADDRESS,
        "status": "SUBMITTING",
        "message": "",
        "log_chars": 0,
        "stop_sent": False,
        "away_since": None,
        "previous": run.job_id,
    }
    claimed = Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
        worker=f"ray {settings.RAY_ADDRESS}",
        pid=None,
        error="",
        traceback="",
        job_id="",  # this attempt's job is submitted next; the last one is in `previous`
        job_state=state,
    )
    if not claimed:
        return None
    run.refresh_from_db()
    return run


def _submit(run: Run, client: Any) -> None:
    previous = run.job_state.get("previous")
    if previous and previous != submission_id_for(run, run.job_state["attempt"]):
        # The last attempt's job may still run (the run was lost, not stopped): one job a run.
        job_stop(submission_id=previous, client=client)
    submission_id = job_submit(
        run=run, attempt=run.job_state["attempt"], resume=run.job_state["resume"], client=client
    )
    Run.objects.filter(pk=run.pk).update(job_id=submission_id)
    run.job_id = submission_id
    _state_update(run, status="PENDING", previous="")
    _log_append(run, f"--- {timezone.now().isoformat()} submitted Ray job {submission_id}\n")


def _log_append(run: Run, text: str) -> None:
    if not text or not run.run_dir:
        return
    folder = Path(run.run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOG_FILE, "a", encoding="utf-8") as fh:
        fh.write(text)


def _log_follow(run: Run, client: Any) -> str:
    """Append the job's log written since the last tick; returns the whole log."""
    logs = client.get_job_logs(run.job_id) or ""
    seen = int(run.job_state.get("log_chars") or 0)
    if len(logs) > seen:
        _log_append(run, logs[seen:])
        _state_update(run, log_chars=len(logs))
    return logs


def _close(run: Run, **fields: Any) -> None:
    """End a run still running with `fields`; tell the pages and the run-ended hooks (a
    recipe's next stages) when this call ended it."""
    with transaction.atomic():
        ended = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**fields)
        if ended:
            runs_ended([run.pk])
    run.refresh_from_db()
    if ended:
        events_publish(run.pk, run_state_payload(run))


def _end(run: Run, job_status: str, message: str, logs: str) -> None:
    """Record the end of the job on a run still running (the stage's events may have ended it
    first: its own finished or failed status is kept)."""
    status = JOB_ENDS[job_status]
    now = timezone.now()
    fields: dict[str, Any] = {"status": status, "finished_at": now, "eta_seconds": None}
    if status == RunStatus.FINISHED:
        fields["progress"] = 1.0
    elif status == RunStatus.FAILED:
        tail = [line for line in logs.splitlines() if line.strip()][-TRACEBACK_LINES:]
        fields["error"] = message or (tail[-1] if tail else "the Ray job failed")
        fields["traceback"] = "\n".join(tail)
    _close(run, **fields)


def _lost(run: Run, error: str) -> None:
    _close(run, status=RunStatus.LOST, finished_at=timezone.now(), eta_seconds=None, error=error)


def _away(run: Run, error: Exception) -> bool:
    """The cluster did not answer; True once that has lasted too long (the run is then lost)."""
    now = time.time()
    since = run.job_state.get("away_since") or now
    _state_update(run, away_since=since, message=str(error)[:500])
    # The watcher is alive (the sweep is for dead watchers); the cluster's silence is timed here.
    Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(heartbeat_at=timezone.now())
    limit = float(settings.R1STUDIO_LOST_AFTER_SECONDS)
    if now - since < limit:
        return False
    _lost(run, f"The Ray cluster did not answer for over {limit:g} s: {error}")
    return True


def _watch(run: Run, client: Any) -> bool:
    """One look at a running run's job; True while it goes on."""
    if not run.job_id:
        _submit(run, client)
    try:
        job_status = str(client.get_job_status(run.job_id).value)
        logs = _log_follow(run, client)
    except Exception as error:
        if not _not_found(error):  # a timeout, a 5xx, the dashboard restarting: try again
            raise ClusterAway(f"the Ray cluster does not answer: {error}") from error
        _lost(run, f"The Ray cluster no longer knows the job {run.job_id} (was it restarted?)")
        return False
    run.refresh_from_db(fields=["status", "cancel_requested"])
    changes: dict[str, Any] = {"status": job_status, "away_since": None}
    if run.cancel_requested and not run.job_state.get("stop_sent") and job_status not in JOB_ENDS:
        job_stop(submission_id=run.job_id, client=client)
        changes["stop_sent"] = True
    if job_status in JOB_ENDS:
        changes["message"] = str(client.get_job_info(run.job_id).message or "")
    _state_update(run, **changes)
    Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(heartbeat_at=timezone.now())
    if job_status in JOB_ENDS:
        _end(run, job_status, run.job_state.get("message", ""), logs)
        return False
    return run.status == RunStatus.RUNNING


def _stop_orphan(run: Run) -> None:
    """A run that ended here (lost, or cancelled while the cluster was away) whose job may still
    run: ask once more to stop it, so that no job trains for a run nobody watches."""
    if not run.job_id or run.job_state.get("orphan_stopped"):
        return
    try:
        job_stop(submission_id=run.job_id)
    except RayError:
        return
    _state_update(run, orphan_stopped=True)


def ray_tick(*, run_id: int, watcher: str | None) -> NextTick | None:
    """Advance a Ray run by one look; returns when and as whom to look next, None when done.

    Never raises: a cluster that does not answer is retried until the run counts as lost; any
    other error fails the run with the message."""
    run = Run.objects.filter(pk=run_id, executor=RunExecutor.RAY).first()
    if run is None:
        return None
    delay = float(settings.R1STUDIO_RUN_HEARTBEAT_SECONDS)
    if run.status == RunStatus.QUEUED and watcher is None:
        run = _claim(run)
        if run is None:
            return None
    elif run.status != RunStatus.RUNNING or run.job_state.get("watcher") != watcher:
        # Ended, or another watcher owns this attempt: this chain of ticks stops here.
        if run.status in (RunStatus.LOST, RunStatus.CANCELLED) and watcher is not None:
            _stop_orphan(run)
        return None
    try:
        client = ray_client(run.job_state.get("address") or None)
        going = _watch(run, client)
    except ClusterAway as error:
        logger.warning("run %s: %s", run_id, error)
        going = not _away(run, error)
    except Exception as error:
        logger.exception("run %s: the Ray watcher failed", run_id)
        _close(
            run,
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            error=f"Ray: {error}",
            eta_seconds=None,
        )
        if run.job_id:
            _stop_orphan(run)
        return None
    return NextTick(watcher=run.job_state["watcher"], delay=delay) if going else None
