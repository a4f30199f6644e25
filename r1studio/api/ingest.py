"""HTTP ingest: `POST /api/runs/{run_id}/events`, a run's events from outside the studio.

Authenticated by the run's own token (`Authorization: Bearer r1r_...`, returned once by
`POST /api/runs` with `"external": true` or by `POST /api/runs/{run_id}/token`), never a user's.
The body, the sequence numbers and what each answer means: r1studio.runs.remote.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.errors import HttpError
from ninja.security import HttpBearer
from pydantic import Field

from r1studio.api.parsing import is_json
from r1studio.core.gcpause import gc_paused
from r1studio.runs import remote


class RunTokenAuth(HttpBearer):
    """A run token: it may send events to its own run, nothing else."""

    openapi_description = "The run's token (r1r_...), returned when the run was created."

    def authenticate(self, request: HttpRequest, token: str) -> int | None:
        return remote.run_token_run_id(token=token)


class EventsIn(Schema):
    seq: int = Field(ge=0, description="Sequence number of the batch's first event (0, 1, ...)")
    events: list[dict[str, Any]] = Field(
        description="Events in the events.jsonl schema (DESIGN.md §4), oldest first"
    )


class EventsOut(Schema):
    stored: int = Field(description="Events of this batch stored now (0 for a retry)")
    next_seq: int = Field(description="The `seq` of the next batch to send")
    status: str = Field(description="The run's status after the batch")
    cancel_requested: bool = Field(description="A user asked the run to stop")


class ConflictOut(Schema):
    detail: str
    expected_seq: int = Field(description="Resend from this sequence number")
    status: str = Field("", description="The run's status (finished, failed, cancelled: ended)")


class DetailOut(Schema):
    detail: str


router = Router(tags=["ingest"])


@router.post(
    "/runs/{run_id}/events",
    auth=RunTokenAuth(),
    response={200: EventsOut, 400: DetailOut, 403: DetailOut, 409: ConflictOut, 415: DetailOut},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EventsIn.model_json_schema()}},
        }
    },
)
def post_events(request: HttpRequest, run_id: int) -> Any:
    """Store a batch of a run's events, numbered from `seq`; a retried batch is stored once.

    409 with `expected_seq` when events before `seq` are missing (resend from there) or the run
    has ended. An empty `events` list is a heartbeat. The body is read without a schema model
    (a batch of 1,000 events is parsed once, with the standard json module)."""
    if request.auth != run_id:
        raise PermissionDenied("This token belongs to another run.")
    if not is_json(request.META.get("CONTENT_TYPE", "")):
        raise HttpError(415, "Send the body as JSON (Content-Type: application/json).")
    try:
        with gc_paused():
            seq, events = remote.batch_parse(request.body)
            received = remote.events_receive(run_id=run_id, seq=seq, events=events)
    except remote.IngestError as exc:
        return Status(400, {"detail": str(exc)})
    except remote.IngestConflict as exc:
        body = {"detail": str(exc), "expected_seq": exc.expected_seq, "status": exc.status}
        return Status(409, body)
    return Status(200, received.__dict__)
