"""The run supervisor: owns one pipeline process from claim to exit.

`supervise(run_id, hostname=...)` is what the Celery task `runs.supervise` calls:

1. claim the row atomically (queued → running); a run cancelled or claimed elsewhere is left;
2. write `config.json` into the run dir (`dataset:` references resolved to their files,
   r1studio.runs.inputs) and spawn
   `python -m pipeline run config.json --run-dir DIR [--resume]` in a new session (its own
   process group), stdout/stderr into `stdout.log`/`stderr.log` (files, never a pipe), and with
   the parent-death signal set to SIGTERM so that a killed worker takes its run down with it
   (the stage saves a checkpoint; the sweep then marks the run `lost`);
3. every tick: ingest new events (`ingest.events_drain`), stamp `heartbeat_at`, honour
   `cancel_requested` (SIGTERM to the group, SIGKILL after the grace period), sweep lost runs;
4. on exit record the outcome: finished, cancelled, or failed with the error and traceback
   from the stage's last status event (or the tail of stderr).

Nothing the pipeline does can raise out of here: a crashed stage is a failed run, not a
crashed worker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import psutil
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections
from django.utils import timezone

from pipeline.access import roots_env
from pipeline.reporting import PARENT_PID_ENV
from r1studio.runs import ingest
from r1studio.runs.hooks import runs_ended
from r1studio.runs.inputs import InputError, config_inputs_resolve
from r1studio.runs.models import Run, RunStatus
from r1studio.runs.selectors import run_log_tail
from r1studio.runs.sweep import runs_sweep_lost

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.5
EXIT_CANCELLED = (130, 143)
EXIT_INVALID = 2
TRAINING_KINDS = ("grpo", "sft")
REPEATS_STEPS_ON_RESUME = TRAINING_KINDS
# Errors that mean "the database is away for now" (restart, network): the supervisor waits.
DATABASE_AWAY = (OperationalError, InterfaceError)
# How long the end of a run waits for a database that went away (a restart) before failing.
DATABASE_WAIT_SECONDS = 600
# Consecutive failures of anything else before the run is failed instead of looping.
MAX_TICK_FAILURES = 3
PROJECT_ROOT = Path(settings.BASE_DIR)


def _same_host(worker: str) -> bool:
    return worker.rpartition("@")[2] == socket.gethostname()


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def process_group_alive(pgid: int) -> bool:
    """True while any process of group `pgid` is still alive (zombies do not count)."""
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return False


def stop_stale_process(run: Run, grace: float) -> None:
    """Stop a pipeline process an earlier supervisor of `run` left behind on this machine
    (after a worker crash) before another one writes into the same run dir."""
    if not run.pid or not run.worker or not _same_host(run.worker):
        return
    try:
        cmdline = " ".join(psutil.Process(run.pid).cmdline())
    except psutil.Error:
        return
    if "pipeline" not in cmdline or run.run_dir not in cmdline:
        return  # the pid was reused by something else
    logger.warning(
        "run %s: stopping the pipeline process %s left by a dead worker", run.pk, run.pid
    )
    _signal_group(run.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while process_group_alive(run.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    _signal_group(run.pid, signal.SIGKILL)


def claim(run_id: int, hostname: str) -> tuple[Run, bool] | None:
    """Queued → running, atomically; returns (run, resume) or None when not ours to run."""
    run = Run.objects.filter(pk=run_id).first()
    if run is None or run.status != RunStatus.QUEUED:
        return None
    resume = run.started_at is not None  # it ran in this run dir before
    now = timezone.now()
    claimed = Run.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING,
        worker=hostname,
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
        pid=None,
        error="",
        traceback="",
    )
    if not claimed:
        return None
    # `run` still holds the previous attempt's pid and worker (update() left it as read).
    stop_stale_process(run, float(settings.R1STUDIO_CANCEL_GRACE_SECONDS))
    run.refresh_from_db()
    return run, resume


def pipeline_command(kind: str, config_path: Path, run_dir: Path) -> list[str]:
    """`python -m pipeline run ...`, under `accelerate launch` for multi-GPU training stages."""
    stage = ["-m", "pipeline", "run", str(config_path), "--run-dir", str(run_dir)]
    processes = int(settings.R1STUDIO_TRAIN_PROCESSES)
    if kind in TRAINING_KINDS and processes > 1:
        launch = ["-m", "accelerate.commands.launch", "--num_processes", str(processes)]
        return [sys.executable, *launch, *stage]
    return [sys.executable, *stage]


OWNER_FILE = ".r1studio-run"


class RunDirError(RuntimeError):
    """The run folder holds files of something else; the run must not write into it."""


def run_dir_claim(run: Run) -> Path:
    """Create the run folder, or check that an existing one is this run's own.

    A folder is this run's when its `.r1studio-run` file holds the run's uid; an empty folder is
    taken. Anything else (another run's events and checkpoints, left by a database that was
    reset over the same data dir) is refused: writing there would mix the two runs' events and
    let `save_total_limit` delete the other run's checkpoints.
    """
    run_dir = Path(run.run_dir)
    owner = run_dir / OWNER_FILE
    if run_dir.is_dir():
        if owner.is_file():
            if owner.read_text().strip() != run.uid.hex:
                raise RunDirError(
                    f"{run_dir} belongs to another run (its {OWNER_FILE} names "
                    f"{owner.read_text().strip()[:40]!r}); retry this run to get a folder of its own"
                )
            return run_dir
        if any(run_dir.iterdir()):
            raise RunDirError(
                f"{run_dir} is not empty and was not created by this run; move it away or "
                "retry this run to get a folder of its own"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    owner.write_text(run.uid.hex + "\n")
    return run_dir


def spawn(run: Run, *, resume: bool) -> subprocess.Popen:
    """Write config.json and start the pipeline process in its own process group."""
    run_dir = run_dir_claim(run)
    config_path = run_dir / "config.json"
    # The stage reads files: a `dataset:NAME@N` becomes that version's Parquet file, and the
    # app that owns it records that this run used it (r1studio.runs.inputs).
    config = config_inputs_resolve(run.config, run=run)
    config_path.write_text(json.dumps(config, indent=2))
    command = pipeline_command(run.kind, config_path, run_dir)
    if resume:
        command.append("--resume")
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env[PARENT_PID_ENV] = str(os.getpid())  # the stage dies with this supervisor
    env.setdefault("R1STUDIO_RUNS_ROOT", str(run_dir.parent))
    # The folders the run may read, as the web process checked them (pipeline/access.py).
    env.update(
        roots_env(data_dir=settings.R1STUDIO_DATA_DIR, extra=settings.R1STUDIO_ALLOWED_ROOTS)
    )
    with open(run_dir / "stdout.log", "ab") as out, open(run_dir / "stderr.log", "ab") as err:
        banner = f"\n--- {timezone.now().isoformat()} {' '.join(command)}\n".encode()
        out.write(banner)
        out.flush()
        return subprocess.Popen(
            command,
            cwd=run_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # no preexec_fn: the stage sets its parent-death signal
            close_fds=True,
        )


class Supervision:
    """The loop around one spawned process: ingest, heartbeat, cancel, sweep."""

    def __init__(self, run: Run, proc: subprocess.Popen, *, skip_until_step: int | None):
        self.run = run
        self.proc = proc
        self.skip_until_step = skip_until_step
        self.heartbeat_every = float(settings.R1STUDIO_RUN_HEARTBEAT_SECONDS)
        self.grace = float(settings.R1STUDIO_CANCEL_GRACE_SECONDS)
        self.sweep_every = max(1.0, settings.R1STUDIO_LOST_AFTER_SECONDS / 2)
        self.term_sent_at: float | None = None
        self.killed = False
        self.cancelled = False
        self.lost = False

    def ingest(self) -> None:
        ingest.events_drain(run=self.run, skip_until_step=self.skip_until_step)

    def tick(self, now: float, last: dict[str, float]) -> None:
        if now - last["beat"] >= self.heartbeat_every:
            Run.objects.filter(pk=self.run.pk).update(heartbeat_at=timezone.now())
            last["beat"] = now
        if now - last["sweep"] >= self.sweep_every:
            runs_sweep_lost()
            last["sweep"] = now
        if not self.cancelled:
            state = Run.objects.filter(pk=self.run.pk).values("status", "cancel_requested").first()
            # Cancelled by a user, or marked lost (a sweep while the database was away): either
            # way no one supervises this process any more, so it must not keep training.
            self.lost = state is None or state["status"] != RunStatus.RUNNING
            self.cancelled = self.lost or state["cancel_requested"]
        if self.cancelled and self.term_sent_at is None:
            logger.info("run %s: stopping, SIGTERM to group %s", self.run.pk, self.proc.pid)
            _signal_group(self.proc.pid, signal.SIGTERM)
            self.term_sent_at = now
        elif (
            self.term_sent_at is not None
            and not self.killed
            and now - self.term_sent_at > self.grace
        ):
            logger.warning(
                "run %s: still alive %.0fs after SIGTERM, SIGKILL", self.run.pk, self.grace
            )
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.killed = True

    def loop(self) -> int:
        last = {"beat": time.monotonic(), "sweep": 0.0}
        failures = 0
        while True:
            code = self.proc.poll()
            try:
                self.ingest()
                self.tick(time.monotonic(), last)
                failures = 0
            except DATABASE_AWAY as error:
                # The database is restarting or unreachable: keep the process and retry; the
                # byte offset makes the next drain store exactly what this one did not.
                logger.warning("run %s: database unavailable (%s); retrying", self.run.pk, error)
                close_old_connections()
            except Exception:
                # Our own bookkeeping is broken (a bug, an event we cannot store): retrying
                # forever would leave a process training unsupervised, so give up and fail.
                failures += 1
                logger.exception("run %s: supervisor tick failed (%s)", self.run.pk, failures)
                close_old_connections()
                if failures >= MAX_TICK_FAILURES:
                    raise
            if code is not None:
                break
            time.sleep(TICK_SECONDS)
        # Children of the stage (data loaders, a vLLM server) die with it.
        _signal_group(self.proc.pid, signal.SIGKILL)
        when_database_back(self.ingest, self.run.pk)
        return code


def when_database_back(action: Any, run_id: int, wait: float = DATABASE_WAIT_SECONDS) -> Any:
    """`action()`, retried while the database is away (a restart) for up to `wait` seconds:
    a stage that ended during an outage still gets its last events and its outcome stored."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return action()
        except DATABASE_AWAY as error:
            if time.monotonic() > deadline:
                raise
            logger.warning("run %s: database unavailable (%s); retrying", run_id, error)
            close_old_connections()
            time.sleep(1.0)


def _failure(run: Run, code: int) -> tuple[str, str]:
    run.refresh_from_db(fields=["error", "traceback"])
    if run.error:
        return run.error, run.traceback
    stderr = run_log_tail(run=run, stream="stderr", max_bytes=8192).strip()
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else -code
        error = f"the pipeline process was killed by signal {name} (out of memory?)"
    elif code == EXIT_INVALID:
        error = "invalid config: " + (stderr.splitlines()[-1] if stderr else "see stderr")
    else:
        error = f"the pipeline process exited with code {code}"
        lines = [line for line in stderr.splitlines() if line.strip()]
        if lines:
            error = lines[-1]
    return error, stderr


def finish(run: Run, code: int, *, cancelled: bool, lost: bool = False) -> str:
    """Record the outcome of an exited process on the row; returns the final status.

    A run that was marked lost and stopped for it stays lost (resumable) unless its process
    finished anyway."""
    now = timezone.now()
    if lost and code != 0:
        run.refresh_from_db()
        return run.status
    fields: dict[str, Any] = {"finished_at": now, "eta_seconds": None, "heartbeat_at": now}
    if code == 0:
        fields["status"] = RunStatus.FINISHED
        fields["progress"] = 1.0
    elif cancelled or code in EXIT_CANCELLED:
        fields["status"] = RunStatus.CANCELLED
    else:
        fields["status"] = RunStatus.FAILED
        fields["error"], fields["traceback"] = _failure(run, code)
    Run.objects.filter(pk=run.pk, status__in=(RunStatus.RUNNING, RunStatus.LOST)).update(**fields)
    run.refresh_from_db()
    ingest.events_publish(run.pk, ingest.run_state_payload(run))
    runs_ended([run.pk])  # a recipe's next stages (r1studio.runs.hooks)
    return run.status


FAILURE_HINT = (
    "The worker could not supervise this run. Retry it; if it fails again, the worker's log "
    "(the `celery worker` output of `make run`) has the details."
)


def _fail_unsupervised(run_id: int, error: BaseException) -> None:
    """Put a supervisor failure on the row (queued or running → failed), whatever state the
    database connection is in; a few tries, since the failure may be the database itself."""
    fields = {
        "status": RunStatus.FAILED,
        "finished_at": timezone.now(),
        "error": str(error)
        if isinstance(error, RunDirError | InputError)
        else f"the run supervisor failed: {type(error).__name__}: {error}. {FAILURE_HINT}",
        "traceback": "".join(traceback.format_exception(error)),
        "eta_seconds": None,
    }
    for attempt in range(5):
        try:
            close_old_connections()
            ended = Run.objects.filter(
                pk=run_id, status__in=(RunStatus.QUEUED, RunStatus.RUNNING)
            ).update(**fields)
            if ended:
                runs_ended([run_id])
            return
        except Exception:
            logger.exception("run %s: could not record the supervisor failure", run_id)
            from django.db import connections

            connections.close_all()
            time.sleep(min(2**attempt, 10))


def supervise(run_id: int, *, hostname: str) -> str | None:
    """Run `run_id` to its end on this worker; returns its final status (None: not claimed).

    Never raises: any failure of its own bookkeeping (the claim included) ends the run
    `failed` with the error and a hint, and kills the pipeline process if it started.
    """
    proc = None
    try:
        claimed = claim(run_id, hostname)
        if claimed is None:
            logger.info("run %s: not queued any more, nothing to do", run_id)
            return None
        run, resume = claimed
        skip_until_step = None
        if resume:
            # Lines the last process wrote after its supervisor died; then a trainer resumed
            # from a checkpoint repeats the steps after it: keep the points already stored.
            ingest.events_drain(run=run, apply_status=False)
            run.refresh_from_db()
            if run.kind in REPEATS_STEPS_ON_RESUME:
                skip_until_step = run.step
        proc = spawn(run, resume=resume)
        Run.objects.filter(pk=run.pk).update(pid=proc.pid)
        run.refresh_from_db()
        ingest.events_publish(run.pk, ingest.run_state_payload(run))
        supervision = Supervision(run, proc, skip_until_step=skip_until_step)
        code = supervision.loop()
        return when_database_back(
            lambda: finish(run, code, cancelled=supervision.cancelled, lost=supervision.lost),
            run.pk,
        )
    except Exception as error:
        logger.exception("run %s: supervisor failed", run_id)
        if proc is not None and proc.poll() is None:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        _fail_unsupervised(run_id, error)
        return RunStatus.FAILED
