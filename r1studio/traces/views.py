"""Trace pages: the browser, one trace, a group at one step, a prompt over time."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from r1studio.core.roles import RESEARCHER, role_required
from r1studio.metrics.selectors import run_for_user
from r1studio.runs.models import Run
from r1studio.traces.forms import TraceFilterForm
from r1studio.traces.selectors import (
    prompt_over_time,
    trace_for_user,
    trace_group,
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
    }
    template = "traces/list.html"
    if _is_htmx(request):
        template += "#rows" if after else "#results"
    return render(request, template, context)


@require_GET
@role_required(RESEARCHER)
def trace_detail(request: HttpRequest, trace_id: int) -> HttpResponse:
    """One trace: its `<think>` and `<answer>`, reference, every reward and the advantage."""
    trace = trace_for_user(user=request.user, trace_id=trace_id)
    if trace is None:
        raise Http404("No such trace.")
    counts = {k: v for k, v in reflection_counts(trace.completion).items() if v}
    context = {
        "trace": trace,
        "run": trace.run,
        "segments": segments(trace.completion),
        "rewards": sorted((trace.rewards or {}).items()),
        "reflections": counts,
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
    """The same prompt across the run's steps: diff, length and reflection words."""
    run = _get_run_for_user(request, run_id)
    history = prompt_over_time(run=run, prompt_hash=prompt_hash)
    if not history["rows"]:
        raise Http404("No training traces for this prompt.")
    context = {"run": run, "prompt_hash": prompt_hash, **history}
    return render(request, "traces/over_time.html", context)
