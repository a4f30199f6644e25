"""The researcher's annotation pages: queues, a new queue, the dashboard, review, promotion.

Annotators reach none of these (403): their pages are the list of their queues
(`curation:annotate`) and the labelling view (`label_views.py`).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from r1studio.core.roles import RESEARCHER, role_required
from r1studio.curation.annotation import agreement, queues, review
from r1studio.curation.annotation.forms import (
    GoldForm,
    GuidelinesForm,
    PromoteForm,
    QueueForm,
    SettingsForm,
)
from r1studio.curation.annotation.models import AnnotationItem, AnnotationQueue
from r1studio.curation.annotation.promote import queue_promote
from r1studio.curation.annotation.services import guideline_current, guideline_publish
from r1studio.curation.models import DatasetVersion
from r1studio.traces.forms import TraceFilterForm
from r1studio.traces.selectors import traces_runs_for_filter

VERSION_CHOICES = 500  # newest versions offered in the new-queue form
TRACE_PREFIX = "t"  # the trace filters' fields in the new-queue form: t-run, t-correct, ...


def _get_queue(queue_id: int) -> AnnotationQueue:
    return get_object_or_404(AnnotationQueue.objects.select_related("source_version"), pk=queue_id)


def _error_text(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


@require_GET
@role_required(RESEARCHER)
def queue_list(request: HttpRequest) -> HttpResponse:
    """Every annotation queue with its progress."""
    rows = queues.queues_progress(AnnotationQueue.objects.select_related("created_by")[:200])
    return render(request, "curation/annotation/queues.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
@role_required(RESEARCHER)
def queue_new(request: HttpRequest) -> HttpResponse:
    """Make a queue from a dataset version or from the traces passing the trace filters (the
    trace browser links here with its filters in the query string)."""
    newest = DatasetVersion.objects.order_by("-created_at").values("pk")[:VERSION_CHOICES]
    versions = (
        DatasetVersion.objects.filter(pk__in=newest)
        .select_related("dataset")
        .order_by("dataset__name", "-number")
    )
    runs = traces_runs_for_filter(user=request.user)
    data = request.POST if request.method == "POST" else None
    initial = {"source": "traces"} if request.GET.get("source") == "traces" else None
    form = QueueForm(
        data,
        initial=initial,
        annotators=queues.annotator_candidates(),
        versions=versions,
    )
    trace_data = request.POST if data is not None else (request.GET or None)
    # Prefixed: the trace filters have a `source` of their own (train, probe, eval).
    trace_form = TraceFilterForm(trace_data, runs=runs, prefix=TRACE_PREFIX)
    if data is not None and form.is_valid():
        cleaned = form.cleaned_data
        from_traces = cleaned["source"] == "traces"
        try:
            queue = queues.queue_create(
                user=request.user,
                name=cleaned["name"],
                version=None if from_traces else cleaned["version"],
                trace_filters=trace_form.filters() if from_traces else None,
                guidelines=cleaned["guidelines"],
                questions=form.questions(),
                overlap=cleaned["overlap"],
                lease_seconds=cleaned["lease_minutes"] * 60,
                annotators=cleaned["annotators"],
                gold=cleaned["gold"],
                limit=cleaned["limit"],
                language=cleaned["language"],
            )
        except ValidationError as exc:
            form.add_error(None, _error_text(exc))
        else:
            messages.success(request, f"Queue {queue.name!r} made.")
            return redirect("curation:queue", queue_id=queue.pk)
    context = {"form": form, "trace_form": trace_form}
    return render(request, "curation/annotation/queue_new.html", context)


def _dashboard_context(request: HttpRequest, queue: AnnotationQueue) -> dict:
    guideline = guideline_current(queue=queue)
    annotators = queues.annotator_candidates()
    return {
        "queue": queue,
        "dashboard": agreement.queue_dashboard(queue=queue),
        "guideline": guideline,
        "guidelines_form": GuidelinesForm(initial={"text": guideline.text if guideline else ""}),
        "settings_form": SettingsForm(
            initial={
                "annotators": list(queue.annotators.all()),
                "lease_minutes": queue.lease_seconds // 60,
            },
            annotators=annotators,
        ),
        "gold_form": GoldForm(),
        "promote_form": PromoteForm(initial={"dataset_name": f"cold-start-q{queue.pk}"}),
    }


@require_GET
@role_required(RESEARCHER)
def queue_dashboard(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Progress, annotators' throughput and gold accuracy, agreement per guideline version."""
    queue = _get_queue(queue_id)
    return render(request, "curation/annotation/dashboard.html", _dashboard_context(request, queue))


@require_POST
@role_required(RESEARCHER)
def queue_guidelines(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Publish a new guideline version (labels made from now on record it)."""
    queue = _get_queue(queue_id)
    form = GuidelinesForm(request.POST)
    if form.is_valid():
        current = guideline_current(queue=queue)
        if current is not None and current.text == form.cleaned_data["text"]:
            messages.info(request, "The guidelines did not change.")
        else:
            published = guideline_publish(
                queue=queue, user=request.user, text=form.cleaned_data["text"]
            )
            messages.success(request, f"Guidelines version {published.number} published.")
    return redirect("curation:queue", queue_id=queue.pk)


@require_POST
@role_required(RESEARCHER)
def queue_settings(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Change the annotators assigned and the lease time."""
    queue = _get_queue(queue_id)
    form = SettingsForm(request.POST, annotators=queues.annotator_candidates())
    if not form.is_valid():
        messages.error(
            request,
            "Settings not saved: "
            + " ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
        )
        return redirect("curation:queue", queue_id=queue.pk)
    try:
        queues.queue_settings_save(
            queue=queue,
            user=request.user,
            annotators=form.cleaned_data["annotators"],
            lease_seconds=form.cleaned_data["lease_minutes"] * 60,
        )
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, "Settings saved.")
    return redirect("curation:queue", queue_id=queue.pk)


@require_POST
@role_required(RESEARCHER)
def queue_gold(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Mark items as gold with their known verdict."""
    queue = _get_queue(queue_id)
    form = GoldForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(" ".join(e for errs in form.errors.values() for e in errs))
        n = queues.queue_gold_set(queue=queue, user=request.user, gold=form.cleaned_data["gold"])
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, f"{n} gold item{'s' if n != 1 else ''} set.")
    return redirect("curation:queue", queue_id=queue.pk)


@require_POST
@role_required(RESEARCHER)
def queue_promote_view(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Write the accepted items as a new version of a cold-start dataset."""
    queue = _get_queue(queue_id)
    form = PromoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Name the dataset to promote into.")
        return redirect("curation:queue", queue_id=queue.pk)
    try:
        version = queue_promote(
            queue=queue,
            user=request.user,
            dataset_name=form.cleaned_data["dataset_name"],
            readable=form.cleaned_data["readable"],
        )
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(
            request, f"{version.rows} items promoted to {version.ref}: pick it as SFT data."
        )
    return redirect("curation:queue", queue_id=queue.pk)


@require_GET
@role_required(RESEARCHER)
def review_list(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Items whose labels disagree, a page at a time in queue order."""
    queue = _get_queue(queue_id)
    after = request.GET.get("after", "")
    found, next_after = review.review_page(queue=queue, after=int(after) if after.isdigit() else 0)
    context = {"queue": queue, "found": found, "next_after": next_after}
    return render(request, "curation/annotation/review.html", context)


@require_POST
@role_required(RESEARCHER)
def review_agreeing(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Resolve every item whose labels all agree, from its first label."""
    queue = _get_queue(queue_id)
    n = review.items_resolve_agreeing(queue=queue, user=request.user)
    messages.success(request, f"{n} agreeing item{'s' if n != 1 else ''} resolved.")
    return redirect("curation:review", queue_id=queue.pk)


RESOLVE_FIELDS = ("label", "verdict", "rating", "think", "answer")


@require_http_methods(["GET", "POST"])
@role_required(RESEARCHER)
def review_item(request: HttpRequest, queue_id: int, item_id: int) -> HttpResponse:
    """All labels of an item side by side with their diffs; pick one or merge them."""
    queue = _get_queue(queue_id)
    item = get_object_or_404(AnnotationItem, pk=item_id, queue=queue)
    error = ""
    if request.method == "POST":
        choices = {
            name: request.POST[name]
            for name in RESOLVE_FIELDS
            if request.POST.get(name, "").isdigit()
        }
        try:
            review.item_resolve(item=item, user=request.user, choices=choices)
        except ValidationError as exc:
            error = _error_text(exc)
        else:
            messages.success(request, f"Item {item.position} resolved.")
            return redirect("curation:review", queue_id=queue.pk)
    context = {"queue": queue, **review.item_review(item=item), "error": error}
    return render(
        request, "curation/annotation/review_item.html", context, status=400 if error else 200
    )
