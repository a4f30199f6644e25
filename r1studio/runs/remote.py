"""Runs off the worker's disk: external scripts (and Ray jobs) that send their events over HTTP.

`POST /api/runs/<id>/events` (r1studio.api.ingest) calls `events_receive` with the JSON body

    {"seq": 0, "events": [{"type": "metrics", "time": 1733130000.0, "step": 1, "values": {...}}]}

`seq` is the sequence number of the batch's first event: a run's events are numbered 0, 1, 2, ...
in the order the client produced them, and `Run.events_offset` holds how many are stored (the
next `seq` expected). A batch goes through `ingest.events_ingest`, the supervisor's own path
(one transaction that also advances the offset), so charts, alerts, traces and the live stream
work the same. A batch is stored exactly once:

- `seq` == offset: stored; the answer's `next_seq` is `seq + len(events)`.
- the batch ends at or before the offset (a retry of a batch that was stored but whose answer
  was lost): nothing stored, 200 with the same `next_seq`. A batch that overlaps the offset
  stores only its events after it.
- `seq` > offset (a gap: a batch was lost): 409 with `expected_seq`; the client resends from it.

An empty batch (`"events": []`) is a heartbeat. Every batch stamps `heartbeat_at`; the lost-run
sweep (r1studio.runs.sweep) marks an `external` run `lost` after R1STUDIO_EXTERNAL_LOST_AFTER_SECONDS
without one. An external run's status comes from its `status` events (started/running →
running, finished, failed with its message as the error, cancelled); a lost external run that
reports again was only cut off, and is running again. Events for a run that finished, failed or
was cancelled get 409. `dataset` events are not taken over HTTP: they name a file on the
sender's disk, which the studio cannot read (and must not, for a file of its own).

Authentication is a run token (`RunToken`): made with the run (`run_create_external`) or by
`run_token_create`, which revokes the run's older ones. Only its hash is stored.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from r1studio.runs.hooks import runs_ended
from r1studio.runs.ingest import MAX_STEP, RunEndedError, events_ingest, events_publish
from r1studio.runs.models import ENDED_STATUSES, Run, RunExecutor, RunStatus, RunToken
from r1studio.runs.services import QUEUE_FOR_KIND, RunConfigError, run_create

RUN_TOKEN_PREFIX = "r1r_"
EVENT_TYPES = ("status", "metrics", "samples", "checkpoint", "eval", "dataset", "log", "progress")
STATES = ("started", "running", "finished", "failed", "cancelled")
NOT_OVER_HTTP = ("dataset",)
MAX_EVENTS = 10_000


class IngestError(ValueError):
    """A body that cannot be ingested (400); the message names the field."""


class IngestConflict(Exception):
    """The batch does not fit the run (409): a gap in the sequence, or the run has ended."""

    def __init__(self, message: str, expected_seq: int, status: str = ""):
        super().__init__(message)
        self.expected_seq = expected_seq
        self.status = status


@dataclass
class Received:
    stored: int
    next_seq: int
    status: str
    cancel_requested: bool


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def run_token_create(*, run: Run) -> str:
    """A new token for `run` (its older ones revoked); returns the token, which is not stored."""
    token = RUN_TOKEN_PREFIX + secrets.token_urlsafe(32)
    RunToken.objects.filter(run=run, revoked_at__isnull=True).update(revoked_at=timezone.now())
    RunToken.objects.create(run=run, key_hash=_hash(token), prefix=token[:10])
    return token


def run_token_run_id(*, token: str) -> int | None:
    """The id of the run an active run token belongs to, or None."""
    if not token or not token.startswith(RUN_TOKEN_PREFIX):
        return None
    row = RunToken.objects.filter(key_hash=_hash(token.strip()), revoked_at__isnull=True)
    return row.values_list("run_id", flat=True).first()


def run_create_external(
    *,
    user: Any,
    name: str,
    kind: str = "grpo",
    config: dict | None = None,
    tags: str = "",
    client_key: str = "",
) -> tuple[Run, str, bool]:
    """A run that a script outside the studio reports to; returns it, its token and whether it
    was made now.

    It waits `queued` for its first event (no worker is asked to run it); `config` is kept as the
    script's record of what it ran (not a pipeline config: not validated, never launched).
    `client_key` makes the call safe to retry: when this user already made an external run with
    that key (the first answer was lost on the way back), that run is returned with a new token
    (the old one, never received, is revoked) instead of a second run."""
    if kind not in QUEUE_FOR_KIND:
        raise RunConfigError(
            [{"loc": "kind", "msg": f"must be one of {', '.join(QUEUE_FOR_KIND)}"}]
        )
    if client_key:
        earlier = Run.objects.filter(
            owner=user, executor=RunExecutor.EXTERNAL, job_state__client_key=client_key
        ).first()
        if earlier is not None:
            return earlier, run_token_create(run=earlier), False
    record = {"kind": kind, **(config or {})}
    record["kind"] = kind
    run = run_create(
        user=user, name=name or f"{kind} (external)", config=record, validate=False, tags=tags
    )
    now = timezone.now()
    Run.objects.filter(pk=run.pk).update(
        executor=RunExecutor.EXTERNAL,
        status=RunStatus.QUEUED,
        queued_at=now,
        job_state={"client_key": client_key} if client_key else {},
    )
    run.refresh_from_db()
    return run, run_token_create(run=run), True


def run_token_rotate(*, run: Run, user: Any) -> str:
    """A new token for a run that is not worker-run, by its owner or an admin."""
    if run.owner_id != user.pk and not user.is_superuser:
        raise PermissionDenied("Only the run's owner or an admin can make its tokens.")
    if run.executor == RunExecutor.WORKER:
        raise PermissionDenied("A run on a worker reports through its supervisor, not a token.")
    return run_token_create(run=run)


# --- the body --------------------------------------------------------------------------------


def batch_parse(body: bytes) -> tuple[int, list[dict]]:
    """`(seq, events)` of a request body, checked; IngestError names what is wrong.

    orjson parses a batch of 1,000 events several times faster than the json module, and
    refuses NaN and infinities, which JSON does not have (send null for an unknown value)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise IngestError(f"body: not JSON, or a NaN/Infinity where null belongs ({exc})") from None
    if not isinstance(data, dict):
        raise IngestError('body: expected an object {"seq": int, "events": [...]}')
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= 2**62:
        raise IngestError("seq: expected the sequence number (an integer >= 0) of the first event")
    events = data.get("events")
    if not isinstance(events, list):
        raise IngestError("events: expected a list of events")
    if len(events) > MAX_EVENTS:
        raise IngestError(f"events: at most {MAX_EVENTS} events a batch")
    if b"\\u0000" in body:
        raise IngestError("events: NUL characters (\\u0000) are not allowed")
    for index, event in enumerate(events):
        problem = _event_problem(event)
        if problem:
            raise IngestError(f"events[{index}]{problem}")
    return seq, events


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _plain_metrics(event: dict) -> bool:
    """The bulk of a batch, checked in a few C-level calls: a `metrics` event with an integer
    step, a float time and float (or null) values under names of 1 to 255 characters."""
    step, values, when = event.get("step"), event.get("values"), event.get("time", 0.0)
    return (
        type(step) is int
        and 0 <= step <= MAX_STEP
        and type(when) is float
        and math.isfinite(when)
        and type(values) is dict
        and all(type(v) is float or v is None for v in values.values())
        and (not values or max(map(len, values)) <= 255)
        and "" not in values
    )


def _event_problem(event: Any) -> str:
    """'' when `event` has the shape of its type (DESIGN.md §4), else '.field: what is wrong'."""
    if type(event) is dict and event.get("type") == "metrics" and _plain_metrics(event):
        return ""
    if not isinstance(event, dict):
        return ": expected an object"
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        return f".type: expected one of {', '.join(EVENT_TYPES)}"
    if "time" in event and not _is_number(event["time"]):
        return ".time: expected unix seconds"
    if "step" in event and event["step"] is not None:
        step = event["step"]
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
            return f".step: expected an integer from 0 to {MAX_STEP}"
    if kind in ("metrics", "samples", "checkpoint", "eval") and event.get("step") is None:
        return ".step: required"
    if kind == "metrics":
        values = event.get("values")
        if not isinstance(values, dict):
            return ".values: expected an object {name: number}"
        if values and not 1 <= min(map(len, values)) <= max(map(len, values)) <= 255:
            return ".values: a metric name has 1 to 255 characters"
        # The common case in one pass; the slow loop only names the culprit.
        if not all(type(v) is float or v is None for v in values.values()):
            for name, value in values.items():
                if value is not None and not _is_number(value):
                    return f".values.{name[:80]}: expected a number or null"
    elif kind in ("samples", "eval"):
        items = event.get("items", [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            return ".items: expected a list of objects"
        if kind == "eval" and not isinstance(event.get("metrics", {}), dict):
            return ".metrics: expected an object"
    elif kind == "checkpoint":
        if not isinstance(event.get("path"), str) or not event["path"]:
            return ".path: expected the checkpoint's path"
    elif kind == "status":
        if event.get("state") not in STATES:
            return f".state: expected one of {', '.join(STATES)}"
        if not isinstance(event.get("message", ""), str | None):
            return ".message: expected a string"
    elif kind == "log" and not isinstance(event.get("message", ""), str):
        return ".message: expected a string"
    return ""


# --- ingest ----------------------------------------------------------------------------------


def events_receive(*, run_id: int, seq: int, events: list[dict]) -> Received:
    """Store the batch `events` numbered from `seq` for run `run_id` (see the module doc)."""
    for _attempt in range(3):  # a concurrent batch moved the offset: look again
        run = (
            Run.objects.filter(pk=run_id)
            .only("events_offset", "status", "executor", "job_state")
            .first()
        )
        if run is None:
            raise IngestConflict("The run was deleted.", 0)
        offset = run.events_offset
        end = seq + len(events)
        if seq > offset:
            raise IngestConflict(
                f"Events {offset} to {seq - 1} are missing: send from seq {offset}.",
                offset,
                run.status,
            )
        if end <= offset and events:
            return _received(run_id, stored=0)  # a retry of a batch already stored
        fresh = [e for e in events[offset - seq :] if e.get("type") not in NOT_OVER_HTTP]
        try:
            payload = events_ingest(
                run_id=run_id,
                events=fresh,
                start_offset=offset,
                end_offset=max(end, offset),
                remote=True,
                # A resumed Ray attempt repeats the steps after its checkpoint (ray_executor).
                skip_until_step=(run.job_state or {}).get("skip_until_step"),
            )
        except RunEndedError as exc:
            raise IngestConflict(str(exc), offset, run.status) from None
        if payload is not None:
            if fresh or payload.get("status_changed"):
                events_publish(run_id, payload)
            if payload.get("status_changed") and payload["status"] in ENDED_STATUSES:
                # An external run's own `status` event ended it: a recipe hears it like any other.
                runs_ended([run_id])
            return _received(run_id, stored=len(fresh))
    raise IngestConflict("Other batches of this run are arriving at once; retry.", offset)


def _received(run_id: int, *, stored: int) -> Received:
    row = Run.objects.filter(pk=run_id).values("events_offset", "status", "cancel_requested")[0]
    return Received(
        stored=stored,
        next_seq=row["events_offset"],
        status=row["status"],
        cancel_requested=row["cancel_requested"],
    )
