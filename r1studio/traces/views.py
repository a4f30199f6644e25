"""Trace pages: the browser (and its export), one trace, a group at one step, a prompt over
time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from r1studio.core.roles import RESEARCHER, role_required
from r1studio.metrics.selectors import run_for_user
from r1studio.runs.models import Run
from r1studio.traces.export import FORMATS, export_lines
from r1studio.traces.forms import TraceFilterForm
from r1studio.traces.selectors import (
    prompt_over_time,
    run_probe_prompts,
    trace_for_user,
    trace_group,
    trace_neighbours,
    trace_reward_breakdown,
    traces_export_chunks,
    traces_page,
    traces_runs_for_filter,
)
from r1studio.traces.text import reflection_counts, segments


def _get_run_for_user(request: HttpRequest, run_id: int) -> Run:
    run = run_for_user(user=request.user, run_id=run_id)
    if run is None:
        raise Http404("No such run.")
    return run


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _filter_suffix(request: HttpRequest) -> str:
    """`?<the list's filters>` (no page cursor) for links that keep them, or ``""``."""
    kept = [(k, v) for k, v in request.GET.items() if v != "" and k != "after"]
    return f"?{urlencode(kept)}" if kept else ""


@require_GET
@role_required(RESEARCHER)
def trace_list(request: HttpRequest) -> HttpResponse:
    """Every trace the user may read, newest first, filtered; "Load more" via HTMX."""
    form = TraceFilterForm(request.GET or None, runs=traces_runs_for_filter(user=request.user))
    filters = form.filters()
    run_id = filters.pop("run_id", None)
    run = _get_run_for_user(request, run_id) if run_id is not None else None
    after = request.GET.get("after")
    traces, next_cursor = traces_page(user=request.user, run=run, after=after, **filters)
    next_query = None
    if next_cursor:
        query = request.GET.copy()
        query["after"] = next_cursor
        next_query = query.urlencode()
    context = {
        "form": form,
        "traces": traces,
        "next_query": next_query,
        "filtered": bool(filters) or run is not None,
        "run": run,
        "filter_suffix": _filter_suffix(request),
    }
    template = "traces/list.html"
    if _is_htmx(request):
        template += "#rows" if after else "#results"
    return render(request, template, context)


async def _async_pieces(pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    # Under ASGI a plain iterator would be read whole into memory before the first byte goes
    # out (Django's fallback); pull it one piece (one database chunk) at a time instead.
    step = sync_to_async(next, thread_sensitive=True)
    while (piece := await step(pieces, None)) is not None:
        yield piece


@require_GET
@role_required(RESEARCHER)
def trace_export(request: HttpRequest, fmt: str) -> StreamingHttpResponse:
    """The browser's traces under its current filters, whole, as CSV or JSON Lines; streamed
    (a keyset query per chunk), never built in memory."""
    if fmt not in FORMATS:
        raise Http404("Unknown export format.")
    filters = TraceFilterForm(request.GET or None, runs=[]).filters()
    run_id = filters.pop("run_id", None)
    run = _get_run_for_user(request, run_id) if run_id is not None else None
    pieces = export_lines(traces_export_chunks(user=request.user, run=run, **filters), fmt)
    content = _async_pieces(pieces) if isinstance(request, ASGIRequest) else pieces
    response = StreamingHttpResponse(content, content_type=FORMATS[fmt])
    name = f"traces-run{run.pk}" if run is not None else "traces"
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{fmt}"'
    return response


@require_GET
@role_required(RESEARCHER)
def trace_detail(request: HttpRequest, trace_id: int) -> HttpResponse:
    """One trace: its `<think>` and `<answer>`, reference, every reward with its weight and the
    advantage; previous / next within the list's filters (the query string the list passed)."""
    trace = trace_for_user(user=request.user, trace_id=trace_id)
    if trace is None:
        raise Http404("No such trace.")
    filters = TraceFilterForm(request.GET or None, runs=[]).filters()
    run_id = filters.pop("run_id", None)
    filter_run = run_for_user(user=request.user, run_id=run_id) if run_id is not None else None
    if run_id is not None and filter_run is None:
        neighbours = {"newer": None, "older": None}
    else:
        neighbours = trace_neighbours(user=request.user, trace=trace, run=filter_run, **filters)
    counts = {k: v for k, v in reflection_counts(trace.completion).items() if v}
    context = {
        "trace": trace,
        "run": trace.run,
        "segments": segments(trace.completion),
        "breakdown": trace_reward_breakdown(trace=trace),
        "reflections": counts,
        "neighbours": neighbours,
        "filter_suffix": _filter_suffix(request),
    }
    return render(request, "traces/detail.html", context)


@require_GET
@role_required(RESEARCHER)
def group_detail(request: HttpRequest, run_id: int, step: int, prompt_hash: str) -> HttpResponse:
    """All completions of one prompt at one step, with their rewards and advantages."""
    run = _get_run_for_user(request, run_id)
    group = trace_group(run=run, step=step, prompt_hash=prompt_hash)
    if not group["traces"]:
        raise Http404("No traces for this prompt at this step.")
    context = {"run": run, "step": step, "prompt_hash": prompt_hash, **group}
    return render(request, "traces/group.html", context)


@require_GET
@role_required(RESEARCHER)
def prompt_history(request: HttpRequest, run_id: int, prompt_hash: str) -> HttpResponse:
    """The same prompt across the run's steps, one source at a time (`?source=train|probe|eval`):
    diff, length and reflection words. When it has one step only, the run's probe prompts (which
    come back at every samples step) are offered instead."""
    run = _get_run_for_user(request, run_id)
    history = prompt_over_time(
        run=run, prompt_hash=prompt_hash, source=request.GET.get("source") or None
    )
    if not history["rows"]:
        raise Http404("No traces for this prompt.")
    probes = run_probe_prompts(run=run) if len(history["rows"]) < 2 else []
    probes = [p for p in probes if p["prompt_hash"] != prompt_hash]
    context = {"run": run, "prompt_hash": prompt_hash, "probes": probes, **history}
    return render(request, "traces/over_time.html", context)
