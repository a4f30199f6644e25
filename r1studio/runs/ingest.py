"""From `<run_dir>/events.jsonl` into the database, batch by batch, exactly once.

`events_read` returns the complete lines after a byte offset; `events_ingest` stores one batch
in ONE transaction that also advances `Run.events_offset` (guarded by the offset it started
from), so a supervisor that dies mid-batch leaves nothing half-stored and the next one re-reads
from the same byte: no point is stored twice. Metric points, traces and eval results are
stored by the apps that registered for those events (r1studio.runs.events); checkpoints,
progress and the error of a failed stage land on the Run row here. After the commit the batch is published on Redis channel `run:<id>` for the live
charts (`events_publish`).

On resume the pipeline repeats the steps between its last checkpoint and the point where it
stopped; `skip_until_step` drops the step-bearing events (metrics, samples, eval) up to the last
step already stored, so the charts keep the first trajectory and continue after it.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from pipeline.data import benchmark_label
from r1studio.core.gcpause import gc_paused
from r1studio.runs.events import events_dispatch
from r1studio.runs.live import publish, run_state
from r1studio.runs.models import Checkpoint, Run, RunExecutor, RunStatus
from r1studio.runs.provenance import environment_clean

logger = logging.getLogger(__name__)

STEP_EVENTS = ("metrics", "samples", "eval")
MAX_BATCH_BYTES = 4 * 2**20


def events_read(
    path: str | Path, offset: int, *, max_bytes: int = MAX_BATCH_BYTES
) -> tuple[list[dict], int]:
    """Parse the complete lines of `path` after byte `offset`; returns (events, new offset).

    A line still being written (no newline yet) is left for the next read. A line that is not
    a JSON object is skipped with a warning (its bytes still count as read).
    """
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, read in pieces
    except FileNotFoundError:
        return [], offset
    with fh:
        fh.seek(offset)
        data = fh.read(max_bytes)
        while data and b"\n" not in data:  # one line longer than max_bytes: read on
            more = fh.read(max_bytes)
            if not more:
                break
            data += more
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    events = []
    for raw in data[: end + 1].splitlines():
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except ValueError:
            logger.warning("skipping a line of %s that is not JSON: %.200r", path, raw)
            continue
        if isinstance(event, dict) and isinstance(event.get("type"), str):
            events.append(event)
    return events, offset + end + 1


def _event_time(event: dict) -> datetime | None:
    value = event.get("time")
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return min(datetime.fromtimestamp(value, tz=UTC), timezone.now())


# Steps and step counts are 32-bit integer columns on PostgreSQL.
MAX_STEP = 2**31 - 1


def _int(value: Any) -> int | None:
    """A finite number that fits a step column, as an int; anything else is unknown (None)."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value) if abs(value) <= MAX_STEP else None


def split_traceback(message: str) -> tuple[str, str]:
    """(error, traceback) of a failed status message: a Python traceback is kept whole and its
    last line becomes the error; any other message is the error itself."""
    text = (message or "").strip()
    if text.startswith("Traceback (most recent call last)"):
        lines = [line for line in text.splitlines() if line.strip()]
        return (lines[-1] if lines else text), text
    return text, ""


def _short_benchmark(event: dict) -> dict:
    """An `eval` event named by its benchmark's short name (`heldout`, not the file's path):
    older pipelines and outside scripts send paths, which charts and the Benchmarks page would
    otherwise show as a second benchmark."""
    if event["type"] != "eval":
        return event
    return {**event, "benchmark": benchmark_label(str(event.get("benchmark") or ""))}


def _run_fields(run: Run, events: list[dict], apply_status: bool) -> dict[str, Any]:
    """The Run row's new values from status, progress, metrics and checkpoint events."""
    fields: dict[str, Any] = {}
    step = run.step
    total = run.total_steps
    eta = run.eta_seconds
    for event in events:
        kind = event["type"]
        event_step = _int(event.get("step"))
        if event_step is not None and kind in ("progress", "metrics", "samples"):
            step = max(step, event_step)
        if kind == "progress":
            total = _int(event.get("total_steps")) or total
            eta = (
                event.get("eta_seconds")
                if isinstance(event.get("eta_seconds"), int | float)
                else None
            )
        elif kind == "status" and apply_status:
            total = _int(event.get("total_steps")) or total
            if event.get("state") == "started" and event.get("environment"):
                # what the worker really ran with (pipeline.environment), for reproducibility
                fields["environment"] = environment_clean(event["environment"])
            if event.get("state") == "failed":
                fields["error"], fields["traceback"] = split_traceback(
                    str(event.get("message", ""))
                )
        elif kind == "checkpoint" and event_step is not None and event.get("path"):
            Checkpoint.objects.update_or_create(
                run_id=run.pk,
                step=event_step,
                defaults={
                    "path": str(event["path"]),
                    "created_at": _event_time(event) or timezone.now(),
                },
            )
    # The newest time as a number first: one datetime a batch, not one an event.
    numbers = (e.get("time") for e in events)
    latest = max(
        (t for t in numbers if isinstance(t, int | float) and math.isfinite(t)), default=None
    )
    if latest is not None:
        fields["last_event_at"] = _event_time({"time": latest})
    fields["step"] = step
    fields["total_steps"] = total
    fields["eta_seconds"] = eta
    if total:
        fields["progress"] = max(0.0, min(1.0, step / total))
    return fields


class RunEndedError(Exception):
    """Events sent over HTTP for a run that finished, failed or was cancelled."""


# An external run's status comes from its own `status` events (it has no supervisor).
_EXTERNAL_STATES = {
    "started": RunStatus.RUNNING,
    "running": RunStatus.RUNNING,
    "finished": RunStatus.FINISHED,
    "failed": RunStatus.FAILED,
    "cancelled": RunStatus.CANCELLED,
}


def _remote_fields(run: Run, events: list[dict]) -> dict[str, Any]:
    """What a batch received over HTTP changes beyond the points: the heartbeat, and for an
    external run its status. Raises RunEndedError for a run that ended (a lost external run
    that reports again was cut off, not dead: it is running again)."""
    now = timezone.now()
    external = run.executor == RunExecutor.EXTERNAL
    revivable = (RunStatus.LOST,) if external else ()
    if run.is_ended and run.status not in revivable:
        raise RunEndedError(f"The run is {run.status}; it takes no more events.")
    fields: dict[str, Any] = {"heartbeat_at": now}
    if not external:
        return fields
    status = run.status
    if status in (RunStatus.QUEUED, RunStatus.LOST):
        status = RunStatus.RUNNING  # a batch, even an empty one, says the script is alive
    for event in events:
        if event["type"] == "status" and event.get("state") in _EXTERNAL_STATES:
            status = _EXTERNAL_STATES[event["state"]]
    if status != run.status:
        fields["status"] = status
        if status == RunStatus.RUNNING:
            fields.update(finished_at=None, error="", traceback="")
            if run.started_at is None:
                fields["started_at"] = now
        else:
            fields.update(finished_at=now, eta_seconds=None)
            if status == RunStatus.FINISHED:
                fields["progress"] = 1.0
    return fields


def events_ingest(
    *,
    run_id: int,
    events: list[dict],
    start_offset: int,
    end_offset: int,
    skip_until_step: int | None = None,
    apply_status: bool = True,
    remote: bool = False,
) -> dict[str, Any] | None:
    """Store one batch and advance `events_offset` from `start_offset` to `end_offset`, in one
    transaction. Returns the live payload to publish, or None when another supervisor already
    moved the offset (nothing is stored then).

    The one ingestion path: the supervisor's file tail passes byte offsets; HTTP ingest
    (r1studio.runs.remote) passes event sequence numbers and `remote=True`, which stamps the
    heartbeat, refuses an ended run (RunEndedError) and, for an external run, takes its status
    from its `status` events."""
    if skip_until_step is not None:
        events = [
            e
            for e in events
            if e["type"] not in STEP_EVENTS or (_int(e.get("step")) or 0) > skip_until_step
        ]
    events = [_short_benchmark(e) for e in events]
    with gc_paused(), transaction.atomic():  # r1studio.core.gcpause
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.events_offset != start_offset:
            return None
        extra = _remote_fields(run, events) if remote else {}
        # Metric points, traces, eval results...: stored by the apps that own them.
        stored = events_dispatch(run=run, events=events)
        fields = _run_fields(run, events, apply_status)
        fields.update(extra)
        fields["events_offset"] = end_offset
        if not Run.objects.filter(pk=run_id, events_offset=start_offset).update(**fields):
            transaction.set_rollback(True)
            return None
    return {
        "run": run_id,
        "status": fields.get("status", run.status),
        "status_changed": fields.get("status", run.status) != run.status,
        "step": fields["step"],
        "total_steps": fields["total_steps"],
        "progress": fields.get("progress", run.progress),
        "eta_seconds": fields["eta_seconds"],
        "metrics": stored.get("metrics") or {},
        "traces": stored.get("traces") or 0,
    }


def run_state_payload(run: Run) -> dict[str, Any]:
    """The live message for a change of state alone (no new points)."""
    return {**run_state(run), "metrics": {}, "traces": 0}


def events_publish(run_id: int, payload: dict[str, Any]) -> None:
    """Send a batch (or a status change) to the browsers watching the run; never raises (a
    Redis outage loses the live update only: the points are stored)."""
    publish(run_id, payload)


def events_drain(
    *,
    run: Run,
    skip_until_step: int | None = None,
    apply_status: bool = True,
    max_batches: int | None = None,
) -> int:
    """Ingest and publish every complete line not yet stored; returns the number of batches."""
    path = Path(run.run_dir) / "events.jsonl"
    batches = 0
    while max_batches is None or batches < max_batches:
        offset = Run.objects.values_list("events_offset", flat=True).get(pk=run.pk)
        events, end = events_read(path, offset)
        if end == offset:
            break
        payload = events_ingest(
            run_id=run.pk,
            events=events,
            start_offset=offset,
            end_offset=end,
            skip_until_step=skip_until_step,
            apply_status=apply_status,
        )
        batches += 1
        if payload is not None and events:
            events_publish(run.pk, payload)
        if any(event["type"] == "checkpoint" for event in events):
            checkpoints_prune(run=run)
    return batches


def checkpoints_prune(*, run: Run) -> int:
    """Forget the checkpoints of `run` whose folders are gone (rotated away by the trainer's
    `save_total_limit`), so that no picker or resume offers them; returns how many.

    Called by the supervisor, on the machine that holds the run folder; only folders inside it
    are checked (a checkpoint reported from elsewhere cannot be seen from here)."""
    inside = Path(run.run_dir)
    gone = [
        checkpoint.pk
        for checkpoint in Checkpoint.objects.filter(run_id=run.pk)
        if Path(checkpoint.path).is_relative_to(inside) and not Path(checkpoint.path).exists()
    ]
    if gone:
        Checkpoint.objects.filter(pk__in=gone).delete()
    return len(gone)
