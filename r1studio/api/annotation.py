"""The annotation API: queues, the next item for an annotator, labels, promotion.

Researchers make queues (`POST /api/queues`) from a dataset version or a trace selection, read a
queue's dashboard (`GET /api/queues/{id}`: progress, per-annotator figures, agreement) and
promote its accepted items to a cold-start dataset version (`POST /api/queues/{id}/promote`);
an annotator is refused those (403) before the body is read. Annotators may only ask for the
next item of a queue they are assigned to (`POST /api/queues/{id}/next`) and save their own
labels (`PUT /api/labels/{id}`): any other queue, and anyone else's label, is a 404 to them.
Researchers may label too.

A label carries a `version`; a save sends the version it read and answers 409 with the stored
label (`current`) when it changed since, never overwriting it. Saving an edited think or answer,
or submitting, re-runs the R1 checks and the verifier on the label's text: an edit that broke
one is stored with `flagged` and the checks' `broken` names (and may still be submitted).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest
from ninja import Path, Router, Schema, Status
from pydantic import AfterValidator, Field

from r1studio.api.auth import RESEARCHER_AUTH
from r1studio.api.parsing import no_nul
from r1studio.api.schemas import ErrorOut
from r1studio.curation.annotation import agreement, queues, services
from r1studio.curation.annotation.labelling import label_checks, queue_questions
from r1studio.curation.annotation.models import AnnotationItem, AnnotationQueue, Label
from r1studio.curation.annotation.promote import queue_promote
from r1studio.curation.models import Dataset, DatasetVersion

MAX_ID = 2**31 - 1  # ids and versions are 32-bit integer columns on PostgreSQL
MAX_TEXT = 500_000  # characters of an edited think or answer (a 32k-token trace is ~130k)
MAX_NOTE = 20_000
MAX_GUIDELINES = 200_000
MAX_LIST = 1000  # annotators named, gold items marked
MAX_TAGS = 100
MAX_TAG = 100


Text = Annotated[str, AfterValidator(no_nul)]
Tag = Annotated[str, Field(min_length=1, max_length=MAX_TAG), AfterValidator(no_nul)]
Username = Annotated[str, Field(min_length=1, max_length=150), AfterValidator(no_nul)]
Verdict = Literal["accept", "reject"]


# --- who may call what (researcher endpoints take auth=RESEARCHER_AUTH) ---------------------

router = Router(tags=["annotation"])


def _queue(queue_id: int) -> AnnotationQueue:
    queue = AnnotationQueue.objects.filter(pk=queue_id).first()
    if queue is None:
        raise Http404("No such queue")
    return queue


def _own_label(request: HttpRequest, label_id: int) -> Label:
    label = (
        Label.objects.select_related("item__queue")
        .filter(pk=label_id, annotator_id=request.auth.pk)
        .first()
    )
    if label is None or not services.queue_can_annotate(queue=label.item.queue, user=request.auth):
        raise Http404("No such label")
    return label


def _unprocessable(errors: dict[str, str] | ValidationError) -> Any:
    if isinstance(errors, ValidationError):
        if hasattr(errors, "error_dict"):
            errors = {field: " ".join(msgs) for field, msgs in errors.message_dict.items()}
        else:
            errors = {"": " ".join(errors.messages)}
    listed = [{"loc": field, "msg": msg} for field, msg in errors.items()]
    return Status(422, {"detail": " ".join(e["msg"] for e in listed), "errors": listed})


# --- bodies -----------------------------------------------------------------------------------


class TraceFilterIn(Schema):
    """The trace browser's filters (all optional): the traces a queue is made of."""

    run_id: int | None = Field(None, ge=1, le=MAX_ID, description="One run (else every run)")
    step_min: int | None = Field(None, ge=0, le=MAX_ID)
    step_max: int | None = Field(None, ge=0, le=MAX_ID)
    reward_min: float | None = Field(None, allow_inf_nan=False)
    reward_max: float | None = Field(None, allow_inf_nan=False)
    correct: bool | None = Field(None, description="Verifier said correct (true) or not")
    source: Literal["train", "probe", "eval"] | None = None
    q: Text | None = Field(None, max_length=200, description="Word search, as in the browser")


class QuestionsIn(Schema):
    verdict: bool = True
    edit: bool = Field(True, description="Think and answer may be edited")
    rating: bool = Field(True, description="A rating from 1 to 5")
    note: bool = True
    tags: list[Tag] = Field([], max_length=MAX_TAGS, description="The tags annotators pick from")


class QueueCreateIn(Schema):
    name: Text = Field(min_length=1, max_length=200)
    dataset: Text | None = Field(None, max_length=100, description="A dataset's name")
    version: int | None = Field(
        None, ge=1, le=MAX_ID, description="Its version number (default: the latest)"
    )
    traces: TraceFilterIn | None = Field(None, description="A trace selection instead")
    overlap: int = Field(1, ge=1, le=queues.MAX_OVERLAP, description="Annotators per item")
    annotators: list[Username] = Field([], max_length=MAX_LIST, description="Their usernames")
    guidelines: Text = Field("", max_length=MAX_GUIDELINES, description="Markdown; version 1")
    questions: QuestionsIn | None = None
    lease_seconds: int = Field(
        1800, ge=queues.LEASE_SECONDS[0], le=queues.LEASE_SECONDS[1], description="Lease length"
    )
    gold: dict[int, Verdict] = Field(
        {}, max_length=MAX_LIST, description="Item position (from 1) -> its known verdict"
    )
    limit: int | None = Field(None, ge=1, le=queues.MAX_ITEMS, description="At most this many")
    language: Text = Field("en", max_length=20, description="Of the reasoning, for the checks")


class LabelIn(Schema):
    version: int = Field(ge=1, le=MAX_ID, description="The label's version as you read it")
    verdict: Literal["accept", "reject", ""] | None = None
    rating: int | None = Field(None, ge=1, le=5)
    think: Text | None = Field(None, max_length=MAX_TEXT, description="The edited reasoning")
    answer: Text | None = Field(None, max_length=MAX_TEXT, description="The edited answer")
    tags: list[Tag] | None = Field(None, max_length=MAX_TAGS)
    note: Text | None = Field(None, max_length=MAX_NOTE)
    submit: bool = Field(False, description="Submit the label (else it is saved as a draft)")
    seconds: float = Field(0.0, ge=0.0, le=3600.0, description="Time spent since the last save")


class PromoteIn(Schema):
    dataset_name: Text = Field(min_length=1, max_length=100)
    readable: bool = Field(
        False, description="The paper's |special_token|reasoning|special_token|summary format"
    )


# --- answers ----------------------------------------------------------------------------------


class LabelOut(Schema):
    id: int
    version: int
    status: str
    verdict: str
    rating: int | None
    think: str
    answer: str
    tags: list[str]
    note: str
    edited: bool
    checks: dict[str, Any]
    flagged: bool
    guideline: int


class ConflictOut(Schema):
    detail: str
    current: LabelOut = Field(description="The label as it is stored now")


class GuidelineOut(Schema):
    number: int
    text: str


class ItemOut(Schema):
    id: int
    queue_id: int
    position: int
    fields: dict[str, Any] = Field(
        description="problem, reference, think, answer, completion, source, checks, group"
    )
    label: LabelOut = Field(description="Your label of the item (a draft until submitted)")
    guideline: GuidelineOut | None
    questions: dict[str, Any]


class QueueOut(Schema):
    id: int
    name: str
    overlap: int
    lease_seconds: int
    questions: dict[str, Any]
    source_version: str | None = Field(description="dataset:NAME@N it was made from")
    source_filters: dict[str, Any]
    annotators: list[str]
    guideline: int
    created_by: str
    created_at: datetime
    closed_at: datetime | None


class QueueDetailOut(QueueOut):
    progress: dict[str, int]
    annotator_stats: list[dict[str, Any]] = Field(
        description="Per annotator: submitted, seconds per item, per hour, gold accuracy"
    )
    gold_accuracy: float | None
    agreement: list[dict[str, Any]] = Field(
        description="Per guideline version: Krippendorff's alpha (verdicts, ratings), kappas"
    )
    agreement_limit: int = Field(description="Items compared at most")


class VersionOut(Schema):
    dataset: str
    number: int
    ref: str = Field(description="How a stage config names it: dataset:NAME@N")
    rows: int
    sha256: str
    size_bytes: int
    provenance: dict[str, Any]
    created_at: datetime


ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


def _label_out(label: Label) -> dict[str, Any]:
    return {
        "id": label.pk,
        "version": label.version,
        "status": label.status,
        "verdict": label.verdict,
        "rating": label.rating,
        "think": label.think,
        "answer": label.answer,
        "tags": label.tags if isinstance(label.tags, list) else [],
        "note": label.note,
        "edited": label.edited,
        "checks": label.checks if isinstance(label.checks, dict) else {},
        "flagged": label.flagged,
        "guideline": label.guideline,
    }


def _item_out(item: AnnotationItem, label: Label) -> dict[str, Any]:
    guideline = services.guideline_current(queue=item.queue)
    return {
        "id": item.pk,
        "queue_id": item.queue_id,
        "position": item.position,
        "fields": item.data if isinstance(item.data, dict) else {},
        "label": _label_out(label),
        "guideline": {"number": guideline.number, "text": guideline.text} if guideline else None,
        "questions": queue_questions(item.queue),
    }


def _queue_out(queue: AnnotationQueue) -> dict[str, Any]:
    guideline = services.guideline_current(queue=queue)
    return {
        "id": queue.pk,
        "name": queue.name,
        "overlap": queue.overlap,
        "lease_seconds": queue.lease_seconds,
        "questions": queue_questions(queue),
        "source_version": queue.source_version.ref if queue.source_version_id else None,
        "source_filters": queue.source_filters or {},
        "annotators": sorted(u.get_username() for u in queue.annotators.all()),
        "guideline": guideline.number if guideline else 0,
        "created_by": queue.created_by.get_username(),
        "created_at": queue.created_at,
        "closed_at": queue.closed_at,
    }


# --- queues (researchers) ---------------------------------------------------------------------


def _source_version(body: QueueCreateIn) -> DatasetVersion | None:
    if body.dataset is None:
        return None
    dataset = Dataset.objects.filter(name=body.dataset).first()
    if dataset is None:
        raise ValidationError({"dataset": f"no dataset named {body.dataset!r}"})
    versions = dataset.versions.select_related("dataset")
    version = (
        versions.filter(number=body.version).first()
        if body.version is not None
        else versions.order_by("-number").first()
    )
    if version is None:
        raise ValidationError({"version": f"{body.dataset} has no version {body.version or ''}"})
    return version


def _users(usernames: list[str]) -> list[Any]:
    User = get_user_model()
    users = list(User.objects.filter(**{f"{User.USERNAME_FIELD}__in": usernames}))
    missing = set(usernames) - {u.get_username() for u in users}
    if missing:
        raise ValidationError({"annotators": f"no such users: {', '.join(sorted(missing))}"})
    return users


@router.post("/queues", auth=RESEARCHER_AUTH, response={201: QueueOut, **ERRORS})
def create_queue(request: HttpRequest, body: QueueCreateIn) -> Any:
    """Make a queue of the rows of a dataset version (`dataset`, `version`) or of the traces
    passing a filter (`traces`), with its questions, overlap, annotators and guidelines."""
    if (body.dataset is None) == (body.traces is None):
        return _unprocessable({"dataset": "name a dataset (and version) or a trace filter"})
    if body.version is not None and body.dataset is None:
        return _unprocessable({"version": "a version of which dataset?"})
    try:
        queue = queues.queue_create(
            user=request.auth,
            name=body.name,
            version=_source_version(body),
            trace_filters=body.traces.model_dump(exclude_none=True) if body.traces else None,
            guidelines=body.guidelines,
            questions=body.questions.model_dump() if body.questions else None,
            overlap=body.overlap,
            lease_seconds=body.lease_seconds,
            annotators=_users(body.annotators),
            gold=body.gold,
            limit=body.limit,
            language=body.language,
        )
    except ValidationError as exc:
        return _unprocessable(exc)
    return Status(201, _queue_out(queue))


@router.get("/queues/{queue_id}", auth=RESEARCHER_AUTH, response={200: QueueDetailOut, **ERRORS})
def get_queue(request: HttpRequest, queue_id: int = Path(..., ge=1, le=MAX_ID)) -> Any:
    """A queue with its dashboard: progress, per-annotator throughput, time per item and gold
    accuracy, and agreement per guideline version (on at most `agreement_limit` items)."""
    queue = _queue(queue_id)
    dashboard = agreement.queue_dashboard(queue=queue)
    return {
        **_queue_out(queue),
        "progress": dashboard["progress"],
        "annotator_stats": dashboard["annotators"],
        "gold_accuracy": dashboard["gold_accuracy"],
        "agreement": dashboard["agreement"],
        "agreement_limit": dashboard["agreement_limit"],
    }


@router.post(
    "/queues/{queue_id}/promote", auth=RESEARCHER_AUTH, response={201: VersionOut, **ERRORS}
)
def promote_queue(
    request: HttpRequest, body: PromoteIn, queue_id: int = Path(..., ge=1, le=MAX_ID)
) -> Any:
    """Write the queue's accepted (and resolved) items as a new cold-start version of
    `dataset_name` (made when it does not exist); answers the version with its `rows`."""
    queue = _queue(queue_id)
    try:
        version = queue_promote(
            queue=queue, user=request.auth, dataset_name=body.dataset_name, readable=body.readable
        )
    except ValidationError as exc:
        return _unprocessable(exc)
    return Status(
        201,
        {
            "dataset": version.dataset.name,
            "number": version.number,
            "ref": version.ref,
            "rows": version.rows,
            "sha256": version.sha256,
            "size_bytes": version.size_bytes,
            "provenance": version.provenance,
            "created_at": version.created_at,
        },
    )


# --- labelling (annotators and researchers) ---------------------------------------------------


@router.post("/queues/{queue_id}/next", response={200: ItemOut, 204: None, **ERRORS})
def next_item(request: HttpRequest, queue_id: int = Path(..., ge=1, le=MAX_ID)) -> Any:
    """Lease the next item of the queue for you (the one you already hold comes first) with
    your label of it as `label: {id, version, ...}`; 204 when nothing is left for you."""
    queue = _queue(queue_id)
    try:
        got = services.lease_next(queue=queue, user=request.auth)
    except PermissionDenied:
        raise Http404("No such queue") from None  # not theirs: they do not learn it exists
    if got is None:
        return Status(204, None)
    item, label = got
    return _item_out(item, label)


def _values(body: LabelIn, label: Label) -> dict[str, Any]:
    """The answers the body carries; one to a question the queue does not ask is refused."""
    asked = queue_questions(label.item.queue)
    values = body.model_dump(exclude_unset=True, include=set(services.LABEL_FIELDS))
    for name in ("verdict", "rating", "note", "tags"):
        if name in values and not asked[name]:
            raise ValidationError({name: f"this queue does not ask for {name}"})
    if ("think" in values or "answer" in values) and not asked["edit"]:
        raise ValidationError({"think": "this queue does not take edits"})
    unknown = sorted(set(values.get("tags") or ()) - set(asked["tags"]))
    if unknown:
        raise ValidationError({"tags": f"not among the queue's tags: {', '.join(unknown)}"})
    if body.submit and asked["verdict"] and not values.get("verdict", label.verdict):
        raise ValidationError({"verdict": "a verdict (accept or reject) comes before submitting"})
    return values


@router.put("/labels/{label_id}", response={200: LabelOut, 409: ConflictOut, **ERRORS})
def save_label(
    request: HttpRequest, body: LabelIn, label_id: int = Path(..., ge=1, le=MAX_ID)
) -> Any:
    """Save your label as a draft, or submit it (`submit: true`). `version` is the version you
    read: when the label changed since, 409 with the stored label as `current`. An edit or a
    submit re-runs the R1 checks and the verifier; an edit that broke one is `flagged`."""
    label = _own_label(request, label_id)
    try:
        values = _values(body, label)
    except ValidationError as exc:
        return _unprocessable(exc)
    checks = None
    if body.submit or "think" in values or "answer" in values:
        checks = label_checks(
            item=label.item,
            think=values.get("think", label.think),
            answer=values.get("answer", label.answer),
        )
    try:
        label = services.label_save(
            label=label,
            user=request.auth,
            values=values,
            version=body.version,
            submit=body.submit,
            checks=checks,
            flagged=bool(checks and checks.get("broken")),
            seconds=body.seconds,
        )
    except services.LabelConflict as conflict:
        detail = f"The label changed since you read it (now version {conflict.current.version})."
        return Status(409, {"detail": detail, "current": _label_out(conflict.current)})
    except ValidationError as exc:
        return _unprocessable(exc)
    return _label_out(label)
