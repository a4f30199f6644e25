"""The annotation view: one leased item at a time, read and judged with the keyboard.

`label` leases the next item of a queue (or gives back the one the annotator holds, with their
draft) and shows it; the page's script (static/js/annotate.js) saves drafts to `label_draft`
as the annotator types, submits to `label_submit` (which re-runs the R1 checks and the verifier
on the edited text and asks once more before storing an edit that broke them) and skips with
`label_skip`. The POST views answer JSON to the script (`Accept: application/json`) and HTML to
a plain form post. A save carrying an older version than the stored label answers 409 with both.
Annotators reach only the queues they are assigned to: any other queue is a 404.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from pipeline.checks_text import compose_completion
from r1studio.core.roles import ANNOTATOR, role_required
from r1studio.curation.annotation.labelling import (
    broken_text,
    check_rows,
    guideline_html,
    label_checks,
    label_group,
    label_progress,
    original_checks,
    paragraphs,
    queue_questions,
)
from r1studio.curation.annotation.models import AnnotationQueue, Label, LabelStatus
from r1studio.curation.annotation.services import (
    AnnotationError,
    LabelConflict,
    guideline_current,
    label_save,
    lease_next,
    lease_release,
    queue_can_annotate,
)
from r1studio.traces.text import diff_stats, word_diff

TEMPLATE = "curation/annotation/label.html"
MAX_SECONDS_PER_SAVE = 3600.0  # time reported by one save; more is a clock gone wrong


def _get_queue_for_user(request: HttpRequest, queue_id: int) -> AnnotationQueue:
    queue = get_object_or_404(AnnotationQueue, pk=queue_id)
    if not queue_can_annotate(queue=queue, user=request.user):
        raise Http404("No such queue.")
    return queue


def _get_label_for_user(request: HttpRequest, queue: AnnotationQueue, label_id: int) -> Label:
    return get_object_or_404(
        Label.objects.select_related("item"),
        pk=label_id,
        annotator=request.user,
        item__queue=queue,
    )


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _values(request: HttpRequest, queue: AnnotationQueue) -> dict[str, Any]:
    """The answers a POST carries, limited to the questions the queue asks."""
    asked = queue_questions(queue)
    post = request.POST
    values: dict[str, Any] = {}
    for name in ("verdict", "rating", "note"):
        if asked[name] and name in post:
            values[name] = post[name]
    if asked["edit"]:
        for name in ("think", "answer"):
            if name in post:  # browsers send a textarea's line breaks as CRLF
                values[name] = post[name].replace("\r\n", "\n")
    if asked["tags"] and "tags_sent" in post:  # unchecked boxes send nothing: the marker does
        values["tags"] = [t for t in post.getlist("tags") if t in asked["tags"]]
    return values


def _version_and_seconds(request: HttpRequest) -> tuple[int, float]:
    """The label version the page read, and the seconds spent since its last save."""
    version = int(request.POST["version"])
    seconds = float(request.POST.get("seconds") or 0)
    if seconds != seconds:  # NaN
        seconds = 0.0
    return version, min(max(seconds, 0.0), MAX_SECONDS_PER_SAVE)


def _label_json(label: Label) -> dict[str, Any]:
    return {
        "id": label.pk,
        "version": label.version,
        "status": label.status,
        "verdict": label.verdict,
        "rating": label.rating,
        "think": label.think,
        "answer": label.answer,
        "tags": label.tags,
        "note": label.note,
        "updated_at": label.updated_at.isoformat(),
    }


def _same(current: Label, values: dict[str, Any]) -> bool:
    """Whether the stored label already holds `values` (a retried save whose answer was lost)."""
    for name, value in values.items():
        stored = getattr(current, name)
        if name == "rating":
            value = int(value) if value not in (None, "") else None
        if stored != value:
            return False
    return True


def _bad_request(request: HttpRequest, errors: dict[str, Any]) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"ok": False, "errors": errors}, status=400)
    return HttpResponse("; ".join(f"{k}: {v}" for k, v in errors.items()), status=400)


def _conflict(
    request: HttpRequest, queue: AnnotationQueue, current: Label, values: dict[str, Any], read: int
) -> HttpResponse:
    """409: the label changed since the page read it; both versions go back, nothing is saved."""
    sent = {**values, "version": read}
    if _wants_json(request):
        return JsonResponse(
            {"ok": False, "conflict": True, "current": _label_json(current), "sent": sent},
            status=409,
        )
    diffs = []
    for name in ("think", "answer"):
        if name in values and values[name] != getattr(current, name):
            parts = word_diff(getattr(current, name), values[name])
            diffs.append({"name": name, "parts": parts, "stats": diff_stats(parts)})
    context = {
        "queue": queue,
        "current": current,
        "sent": sent,
        "diffs": diffs,
        "fields": [
            (name, getattr(current, name), values.get(name, "—"))
            for name in ("verdict", "rating", "tags", "note")
        ],
    }
    return render(request, "curation/annotation/conflict.html", context, status=409)


def _render_label(
    request: HttpRequest, queue: AnnotationQueue, item: Any, label: Label, *, status: int = 200
) -> HttpResponse:
    data = item.data or {}
    guideline = guideline_current(queue=queue)
    group = [
        {
            "item": other,
            "completion": other.data.get("completion")
            or compose_completion(other.data.get("think"), other.data.get("answer")),
        }
        for other in label_group(item=item)
    ]
    urls = {
        "draft": reverse("curation:label_draft", args=[queue.pk, label.pk]),
        "submit": reverse("curation:label_submit", args=[queue.pk, label.pk]),
        "skip": reverse("curation:label_skip", args=[queue.pk, label.pk]),
        "next": reverse("curation:label", args=[queue.pk]),
    }
    context = {
        "queue": queue,
        "item": item,
        "label": label,
        "questions": queue_questions(queue),
        "progress": label_progress(queue=queue, user=request.user),
        "guideline": guideline,
        "guideline_html": guideline_html(guideline.text) if guideline else "",
        "problem": paragraphs(data.get("problem")),
        "reference": data.get("reference") or "",
        "think": paragraphs(label.think),
        "answer": paragraphs(label.answer),
        "original_checks": check_rows(original_checks(item)),
        "saved_checks": check_rows(label.checks) if label.checks else [],
        "broken": broken_text(label.checks),
        "reward": data.get("reward"),
        "advantage": data.get("advantage"),
        "rewards": data.get("rewards") if isinstance(data.get("rewards"), dict) else {},
        "group": group,
        "page_data": {
            "urls": urls,
            "original": {"think": data.get("think") or "", "answer": data.get("answer") or ""},
            "label": label.pk,
        },
    }
    return render(request, TEMPLATE, context, status=status)


@require_GET
@role_required(ANNOTATOR)
def label(request: HttpRequest, queue_id: int) -> HttpResponse:
    """The next item of the queue for this annotator (the one they hold first), or the end."""
    queue = _get_queue_for_user(request, queue_id)
    leased = None if queue.closed_at else lease_next(queue=queue, user=request.user)
    if leased is None:
        context = {
            "queue": queue,
            "item": None,
            "progress": label_progress(queue=queue, user=request.user),
        }
        return render(request, TEMPLATE, context)
    item, draft = leased
    return _render_label(request, queue, item, draft)


@require_POST
@role_required(ANNOTATOR)
def label_draft(request: HttpRequest, queue_id: int, label_id: int) -> HttpResponse:
    """Save the form as a draft; answers the label's new version (the page keeps it)."""
    queue = _get_queue_for_user(request, queue_id)
    draft = _get_label_for_user(request, queue, label_id)
    try:
        version, seconds = _version_and_seconds(request)
    except (KeyError, ValueError):
        return _bad_request(request, {"version": "the label version the page read"})
    values = _values(request, queue)
    try:
        draft = label_save(
            label=draft, user=request.user, values=values, version=version, seconds=seconds
        )
    except LabelConflict as conflict:
        if not _same(conflict.current, values):
            return _conflict(request, queue, conflict.current, values, version)
        draft = conflict.current  # a retry of a save that went through
    except AnnotationError as error:
        return _bad_request(request, error.message_dict)
    if not _wants_json(request):
        return redirect("curation:label", queue.pk)
    return JsonResponse(
        {"ok": True, "version": draft.version, "edited": draft.edited, "status": draft.status}
    )


@require_POST
@role_required(ANNOTATOR)
def label_submit(request: HttpRequest, queue_id: int, label_id: int) -> HttpResponse:
    """Check the (edited) text and submit. An edit that broke a check is stored as a draft
    with its checks and the flag; sent again with `confirm=1` it is submitted, flag and all."""
    queue = _get_queue_for_user(request, queue_id)
    label = _get_label_for_user(request, queue, label_id)
    try:
        version, seconds = _version_and_seconds(request)
    except (KeyError, ValueError):
        return _bad_request(request, {"version": "the label version the page read"})
    values = _values(request, queue)
    if queue_questions(queue)["verdict"] and not values.get("verdict", label.verdict):
        return _bad_request(request, {"verdict": "Choose accept (a) or reject (r) first."})
    checks = label_checks(
        item=label.item,
        think=values.get("think", label.think),
        answer=values.get("answer", label.answer),
    )
    flagged = bool(checks["broken"])
    submit = not flagged or request.POST.get("confirm") == "1"
    try:
        label = label_save(
            label=label,
            user=request.user,
            values=values,
            version=version,
            submit=submit,
            checks=checks,
            flagged=flagged,
            seconds=seconds,
        )
    except LabelConflict as conflict:
        current = conflict.current
        done = current.status == LabelStatus.SUBMITTED or not submit
        if not (done and _same(current, values)):
            return _conflict(request, queue, current, values, version)
        label = current  # a retry of a submit that went through
    except AnnotationError as error:
        return _bad_request(request, error.message_dict)
    submitted = label.status == LabelStatus.SUBMITTED
    next_url = reverse("curation:label", args=[queue.pk])
    if not _wants_json(request):
        if submitted:
            return redirect(next_url)
        return _render_label(request, queue, label.item, label)
    return JsonResponse(
        {
            "ok": submitted,
            "submitted": submitted,
            "flagged": label.flagged,
            "broken": broken_text(checks),
            "checks": check_rows(checks),
            "version": label.version,
            "next": next_url,
        }
    )


@require_POST
@role_required(ANNOTATOR)
def label_skip(request: HttpRequest, queue_id: int, label_id: int) -> HttpResponse:
    """Give the item back (another annotator may take it) and go on to the next one."""
    queue = _get_queue_for_user(request, queue_id)
    label = _get_label_for_user(request, queue, label_id)
    if label.status == LabelStatus.DRAFT:
        lease_release(item=label.item, user=request.user)
    next_url = reverse("curation:label", args=[queue.pk])
    if _wants_json(request):
        return JsonResponse({"ok": True, "next": next_url})
    return redirect(next_url)
