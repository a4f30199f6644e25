"""Metric pages and endpoints: chart JSON, the live SSE stream, exports, the compare page."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.exception import response_for_exception
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import get_conditional_response
from django.views.decorators.http import require_GET

from r1studio.core.roles import RESEARCHER, role_required, user_has_role
from r1studio.metrics import live
from r1studio.metrics.panels import PANELS, PANELS_BY_KEY, panel_names
from r1studio.metrics.selectors import (
    run_for_user,
    run_metric_names,
    run_metric_points,
    run_series_json,
    run_series_version,
    runs_visible_to,
)
from r1studio.runs.models import Run

COMPARE_PICKER_RUNS = 50


def _get_run_for_user(request: HttpRequest, run_id: int) -> Run:
    run = run_for_user(user=request.user, run_id=run_id)
    if run is None:
        raise Http404("No such run.")
    return run


def _int(value: str | None, default: int | None = None) -> int | None:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


@require_GET
@role_required(RESEARCHER)
def series_json(request: HttpRequest, run_id: int) -> HttpResponse:
    """`?names=a,b&max_points=800`: the run's series downsampled for a chart of that width.

    Without `names`, every series of the run. Values are raw (not smoothed): charts.js smooths
    in the browser so that the slider needs no round trip. The ETag changes with the points,
    so a browser asking again with If-None-Match gets a 304 while the run is idle.
    """
    run = _get_run_for_user(request, run_id)
    raw_names = request.GET.get("names", "").strip()
    names = [n for n in raw_names.split(",") if n] if raw_names else None
    max_points = _int(request.GET.get("max_points"), 1000) or 1000
    version = run_series_version(run=run, names=names, max_points=max_points)
    response = get_conditional_response(request, etag=version)
    if response is None:
        body = run_series_json(run=run, names=names, max_points=max_points, version=version)
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = version
    response["Cache-Control"] = "private, no-cache"  # always revalidate: a live run grows
    return response


EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def _csv_parts(run: Run) -> Iterator[str]:
    yield "name,step,value\r\n"
    for name, steps, values in run_metric_points(run=run):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerows(
            (name, step, value if math.isfinite(value) else "")
            for step, value in zip(steps.tolist(), values.tolist(), strict=True)
        )
        yield buffer.getvalue()


def _jsonl_parts(run: Run) -> Iterator[str]:
    for name, steps, values in run_metric_points(run=run):
        head = '{"name": ' + json.dumps(name) + ', "step": '
        yield "".join(
            f'{head}{step}, "value": {repr(value) if math.isfinite(value) else "null"}}}\n'
            for step, value in zip(steps.tolist(), values.tolist(), strict=True)
        )


async def _as_async(parts: Iterator[str]) -> AsyncIterator[str]:
    """Pull each part in the sync thread (the ORM's): under ASGI, Django reads a synchronous
    iterator to its end into memory before sending a byte, which an export must not do."""
    done = object()
    while (part := await sync_to_async(next)(parts, done)) is not done:
        yield part


@require_GET
@role_required(RESEARCHER)
def export(request: HttpRequest, run_id: int, fmt: str) -> StreamingHttpResponse:
    """Every raw point of the run as CSV (`name,step,value`) or JSONL (one point a line),
    streamed one stored chunk at a time. NaN is an empty CSV field and a JSONL null."""
    run = _get_run_for_user(request, run_id)
    if fmt not in EXPORT_TYPES:
        raise Http404("Export as csv or jsonl.")
    parts = _csv_parts(run) if fmt == "csv" else _jsonl_parts(run)
    content = _as_async(parts) if isinstance(request, ASGIRequest) else parts
    response = StreamingHttpResponse(content, content_type=EXPORT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-metrics.{fmt}"'
    return response


def _stream_refusal(request: HttpRequest, run_id: int) -> HttpResponse | None:
    """The 403/404 response when the user may not stream this run, else None.

    Rendered here, in the request's own worker thread, rather than raised from the async view:
    Django would render an exception raised there in a thread of the default executor, whose
    database connection (the error page's navigation reads the user's role) nobody closes.
    """
    try:
        if not user_has_role(request.user, RESEARCHER):
            raise PermissionDenied("This page needs the researcher role.")
        if run_for_user(user=request.user, run_id=run_id) is None:
            raise Http404("No such run.")
    except (PermissionDenied, Http404) as exc:
        return response_for_exception(request, exc)
    return None


@require_GET
async def run_stream(request: HttpRequest, run_id: int) -> HttpResponseBase:
    """Server-Sent Events of one run: stored points after `after`, then live updates.

    `?after=<step>` or the `Last-Event-ID` header EventSource sends on reconnect (the larger
    wins) says which points the browser already has. Login comes from the middleware; the
    role and run checks run in a thread because the ORM is synchronous.
    """
    refusal = await sync_to_async(_stream_refusal)(request, run_id)
    if refusal is not None:
        return refusal
    candidates = [
        _int(request.GET.get("after")),
        _int(request.headers.get("Last-Event-ID")),
    ]
    known = [c for c in candidates if c is not None]
    after = max(known) if known else None
    response = StreamingHttpResponse(
        live.sse_stream(run_id, after), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


def _compare_runs(request: HttpRequest) -> list[Run]:
    ids = [i for i in (_int(x) for x in request.GET.get("runs", "").split(",")) if i]
    if not ids:
        return []
    found = {r.pk: r for r in runs_visible_to(user=request.user).filter(pk__in=ids[:12])}
    return [found[i] for i in ids if i in found]


@require_GET
@role_required(RESEARCHER)
def compare(request: HttpRequest) -> HttpResponse:
    """`?runs=1,2&panel=reward`: the same panel of several runs overlaid on one chart."""
    panel_key = request.GET.get("panel", "reward")
    if panel_key not in PANELS_BY_KEY:
        panel_key = "reward"
    selected = _compare_runs(request)
    series = []
    for run in selected:
        names = panel_names(panel_key, run_metric_names(run=run))
        if names:
            series.append(
                {
                    "run": run.pk,
                    "label": f"#{run.pk} {run.name}",
                    "names": names,
                    "url": reverse("metrics:series", args=[run.pk]),
                }
            )
    picker = list(
        runs_visible_to(user=request.user).order_by("-created_at", "-id")[:COMPARE_PICKER_RUNS]
    )
    picker_ids = {r.pk for r in picker}
    picker += [r for r in selected if r.pk not in picker_ids]
    context = {
        "panels": PANELS,
        "panel": PANELS_BY_KEY[panel_key],
        "picker": picker,
        "selected_ids": {r.pk for r in selected},
        "selected": selected,
        "compare_spec": {
            "panel": panel_key,
            "series": series,
            "chart": PANELS_BY_KEY[panel_key].chart,
            "y_title": PANELS_BY_KEY[panel_key].y_title,
            "rate": PANELS_BY_KEY[panel_key].rate,
        },
    }
    return render(request, "metrics/compare.html", context)
