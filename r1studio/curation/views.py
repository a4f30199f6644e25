"""Dataset and annotation pages."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from r1studio.core.roles import ANNOTATOR, RESEARCHER, role_required
from r1studio.curation import browse
from r1studio.curation.annotation.queues import queues_progress, queues_to_annotate
from r1studio.curation.forms import DatasetForm, DiffForm, RowFilterForm, TracesToDatasetForm
from r1studio.curation.from_traces import version_from_traces
from r1studio.curation.models import Dataset, DatasetVersion
from r1studio.curation.selectors import (
    MAX_LIMIT,
    RowsError,
    dataset_for_user,
    dataset_jobs,
    datasets_for_user,
    version_columns,
    version_diff,
    version_for_user,
    version_jobs,
    version_overview,
    version_row,
    version_row_neighbours,
    version_rows,
    version_uses,
)
from r1studio.curation.services import DatasetError, dataset_create, version_delete
from r1studio.metrics.selectors import run_for_user
from r1studio.traces.forms import TraceFilterForm

PAGE_ROWS = 50


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _get_dataset_for_user(request: HttpRequest, dataset_id: int) -> Dataset:
    dataset = dataset_for_user(user=request.user, dataset_id=dataset_id)
    if dataset is None:
        raise Http404("No such dataset.")
    return dataset


def _get_version_for_user(request: HttpRequest, dataset_id: int, number: int) -> DatasetVersion:
    version = version_for_user(user=request.user, dataset_id=dataset_id, number=number)
    if version is None:
        raise Http404("No such dataset version.")
    return version


@require_GET
@role_required(RESEARCHER)
def dataset_list(request: HttpRequest) -> HttpResponse:
    """Datasets with their kind, owner and versions, and a form for a new one."""
    datasets = datasets_for_user(user=request.user)
    return render(request, "curation/datasets.html", {"datasets": datasets, "form": DatasetForm()})


@require_POST
@role_required(RESEARCHER)
def dataset_new(request: HttpRequest) -> HttpResponse:
    """Create an empty dataset; its versions come from imports, runs, traces and curations."""
    form = DatasetForm(request.POST)
    if form.is_valid():
        try:
            dataset = dataset_create(user=request.user, **form.cleaned_data)
        except DatasetError as error:
            form.add_error("name", error.messages[0])
        else:
            messages.success(request, f"Dataset {dataset.name} created.")
            return redirect("curation:dataset", dataset_id=dataset.pk)
    datasets = datasets_for_user(user=request.user)
    context = {"datasets": datasets, "form": form, "form_open": True}
    return render(request, "curation/datasets.html", context, status=400)


@require_GET
@role_required(RESEARCHER)
def dataset_detail(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """A dataset: its versions with their provenance, its jobs, a diff between two versions."""
    dataset = _get_dataset_for_user(request, dataset_id)
    versions = list(dataset.versions.all())
    numbers = [v.number for v in versions]
    initial = {"old": numbers[1], "new": numbers[0]} if len(numbers) > 1 else {}
    context = {
        "dataset": dataset,
        "versions": versions,
        "jobs": dataset_jobs(dataset=dataset),
        "diff_form": DiffForm(initial=initial, numbers=numbers),
    }
    return render(request, "curation/dataset.html", context)


def _template_exists(name: str) -> bool:
    try:
        get_template(name)
    except TemplateDoesNotExist:
        return False
    return True


# Provenance keys each type shows in its own way; the others are listed as they are.
PROVENANCE_SHOWN = {
    "run": {"run", "run_name"},
    "import": {"file", "mapping"},
    "curation": {"operations"},
    "traces": {"filters", "run_ids", "count"},
    "annotation": {"queue", "queue_name"},
}


def _provenance_rest(version: DatasetVersion) -> list[tuple[str, str]]:
    shown = PROVENANCE_SHOWN.get(version.provenance_type, set())
    rest = []
    for key, value in (version.provenance or {}).items():
        if key in shown or value in (None, "", [], {}):
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        rest.append((key, text))
    return rest


@require_GET
@role_required(RESEARCHER)
def version_detail(request: HttpRequest, dataset_id: int, number: int) -> HttpResponse:
    """A version: its facts, provenance, statistics, funnel, first rows, the runs that used it,
    the jobs running on it and what can be done with it (export, curate, delete)."""
    version = _get_version_for_user(request, dataset_id, number)
    overview, first_rows, problem = None, [], ""
    try:
        overview = version_overview(version=version)
        first_rows, _ = version_rows(version=version, offset=0, limit=5)
        columns = version_columns(version=version)
    except browse.BrowseError as error:
        problem, columns = str(error), {"kinds": {}}
    provenance = version.provenance or {}
    operations, mapping = provenance.get("operations"), provenance.get("mapping")
    context = {
        "dataset": version.dataset,
        "version": version,
        "overview": overview,
        "histograms": overview["histograms"] if overview else [],
        "first_rows_cells": _cells(first_rows, _table_columns(columns["kinds"])),
        "table_columns": _table_columns(columns["kinds"]),
        "problem": problem,
        "provenance": provenance,
        "provenance_rest": _provenance_rest(version),
        "operations": operations if isinstance(operations, list) else None,
        "mapping": mapping if isinstance(mapping, dict) else None,
        "uses": version_uses(version=version, user=request.user),
        "jobs": version_jobs(version=version),
        "funnel_template": bool(version.funnel) and _template_exists("curation/_funnel.html"),
        "versions": list(version.dataset.versions.values_list("number", flat=True)),
    }
    return render(request, "curation/version.html", context)


@require_GET
@role_required(RESEARCHER)
def version_jobs_part(request: HttpRequest, dataset_id: int, number: int) -> HttpResponse:
    """The version page's jobs, polled by HTMX while one is queued or running."""
    version = _get_version_for_user(request, dataset_id, number)
    context = {
        "jobs": version_jobs(version=version),
        "poll_url": reverse("curation:version_jobs", args=[dataset_id, number]),
    }
    return render(request, "curation/_jobs.html", context)


@require_POST
@role_required(RESEARCHER)
def version_remove(request: HttpRequest, dataset_id: int, number: int) -> HttpResponse:
    """Delete a version that no run used and nothing derives from (else say why not)."""
    version = _get_version_for_user(request, dataset_id, number)
    paths = [version.path, version.dropped_path]
    try:
        version_delete(version=version, user=request.user)
    except DatasetError as error:
        messages.error(request, error.messages[0])
        return redirect("curation:version", dataset_id=dataset_id, number=number)
    for path in filter(None, paths):
        browse.browse_files_remove(path)
    messages.success(request, f"Version {number} of {version.dataset.name} deleted.")
    return redirect("curation:dataset", dataset_id=dataset_id)


# --- rows -----------------------------------------------------------------------------------

# The table shows these first (in this order), then the version's other columns.
TABLE_FIRST = ("problem", "think", "answer", "reference", "completion", "source", "correct")


def _table_columns(kinds: dict[str, Any]) -> list[dict[str, Any]]:
    names = [c for c in TABLE_FIRST if kinds.get(c)] + [
        c for c, k in kinds.items() if k and c not in TABLE_FIRST
    ]
    return [{"name": c, "text": kinds[c] == "text"} for c in names]


def _cells(rows: list[dict[str, Any]], columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as the table shows them: a cell per column, long text cut (the row view has it all)."""
    out = []
    for row in rows:
        cells = []
        for column in columns:
            value = row["values"].get(column["name"])
            length = row["lengths"].get(column["name"]) if column["text"] else None
            cells.append({"value": value, "length": length, "text": column["text"]})
        out.append({"index": row["index"], "cells": cells})
    return out


def _rows_request(request: HttpRequest, version: DatasetVersion) -> dict[str, Any]:
    """What a rows table or row view reads from the query string: dropped or kept rows, the
    filter form, its filters and search, and the query to carry to the next link."""
    dropped = request.GET.get("dropped") == "1"
    if dropped and not version.dropped_path:
        raise Http404("This version has no dropped rows.")
    try:
        columns = version_columns(version=version, dropped=dropped)
    except browse.BrowseError as error:
        raise Http404(str(error)) from None
    form = RowFilterForm(
        request.GET or None, choices=columns["choices"], length_column=columns["length_column"]
    )
    filters = form.filters()
    kept = [(k, v) for k, v in request.GET.items() if v != "" and k != "offset"]
    return {
        "dropped": dropped,
        "columns": columns,
        "form": form,
        "filters": filters,
        "q": form.search(),
        "query": urlencode(kept),
        "row_suffix": f"?{urlencode(kept)}" if kept else "",
    }


@require_GET
@role_required(RESEARCHER)
def version_rows_page(request: HttpRequest, dataset_id: int, number: int) -> HttpResponse:
    """A version's rows (or its dropped rows, `?dropped=1`), paged, filtered and searched."""
    version = _get_version_for_user(request, dataset_id, number)
    state = _rows_request(request, version)
    try:
        offset = max(0, int(request.GET.get("offset") or 0))
    except ValueError:
        offset = 0
    rows, total, problem = [], 0, ""
    try:
        rows, total = version_rows(
            version=version,
            offset=offset,
            limit=PAGE_ROWS,
            q=state["q"],
            filters=state["filters"],
            dropped=state["dropped"],
        )
    except RowsError as error:
        problem = str(error)
    columns = _table_columns(state["columns"]["kinds"])
    shown_total = min(total, browse.SEARCH_CAP)
    context = {
        "dataset": version.dataset,
        "version": version,
        **state,
        "table_columns": columns,
        "rows": _cells(rows, columns),
        "total": total,
        "capped": total > browse.SEARCH_CAP,
        "problem": problem,
        "first": offset + 1 if rows else 0,
        "last": offset + len(rows),
        "previous_offset": max(0, offset - PAGE_ROWS) if offset > 0 else None,
        "next_offset": offset + PAGE_ROWS if offset + PAGE_ROWS < shown_total else None,
        "limit": PAGE_ROWS,
        "max_limit": MAX_LIMIT,
    }
    template = "curation/rows.html#table" if _is_htmx(request) else "curation/rows.html"
    return render(request, template, context)


@require_GET
@role_required(RESEARCHER)
def version_row_detail(
    request: HttpRequest, dataset_id: int, number: int, index: int
) -> HttpResponse:
    """One row whole: the problem, `<think>` and `<answer>` rendered as on the trace pages,
    every other column; previous / next within the table's filters and search."""
    version = _get_version_for_user(request, dataset_id, number)
    state = _rows_request(request, version)
    row = version_row(version=version, index=index, dropped=state["dropped"])
    if row is None:
        raise Http404("No such row.")
    try:
        previous, following = version_row_neighbours(
            version=version,
            index=index,
            q=state["q"],
            filters=state["filters"],
            dropped=state["dropped"],
        )
    except RowsError:
        previous, following = None, None
    main = ("problem", "prompt", "think", "answer", "completion", "reference")
    others = []
    for name, value in row.items():
        if name in main:
            continue
        if not isinstance(value, str | int | float | bool) and value is not None:
            value = json.dumps(value, ensure_ascii=False, indent=1, default=str)
        others.append((name, value))
    context = {
        "dataset": version.dataset,
        "version": version,
        **state,
        "index": index,
        "row": row,
        "others": others,
        "previous": previous,
        "following": following,
    }
    return render(request, "curation/row.html", context)


@require_GET
@role_required(RESEARCHER)
def dataset_diff(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """Rows added, removed and changed between two versions (`?old=1&new=2`)."""
    dataset = _get_dataset_for_user(request, dataset_id)
    numbers = list(dataset.versions.values_list("number", flat=True))
    form = DiffForm(request.GET or None, numbers=numbers)
    result, old, new, problem = None, None, None, ""
    if form.is_valid():
        old = _get_version_for_user(request, dataset_id, form.cleaned_data["old"])
        new = _get_version_for_user(request, dataset_id, form.cleaned_data["new"])
        try:
            result = version_diff(old=old, new=new)
        except browse.BrowseError as error:
            problem = str(error)
    context = {
        "dataset": dataset,
        "form": form,
        "old": old,
        "new": new,
        "result": result,
        "problem": problem,
        "table_columns": [{"name": "problem", "text": True}],
    }
    return render(request, "curation/diff.html", context)


@require_POST
@role_required(RESEARCHER)
def traces_to_dataset(request: HttpRequest) -> HttpResponse:
    """The trace browser's "Add these traces to a dataset": the traces passing the filters in
    the query string become a new version (at most MAX_TRACES at a time)."""
    back = reverse("traces:list") + (f"?{request.GET.urlencode()}" if request.GET else "")
    form = TracesToDatasetForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        messages.error(request, f"Not added: {errors}")
        return redirect(back)
    filters = TraceFilterForm(request.GET or None, runs=[]).filters()
    run = None
    if (run_id := filters.pop("run_id", None)) is not None:
        run = run_for_user(user=request.user, run_id=run_id)
        if run is None:
            raise Http404("No such run.")
    try:
        version = version_from_traces(
            user=request.user,
            dataset_name=form.cleaned_data["dataset"],
            kind=form.cleaned_data["kind"] or "other",
            append=form.cleaned_data["append"],
            run=run,
            filters=filters,
        )
    except DatasetError as error:
        messages.error(request, f"Not added: {error.messages[0]}")
        return redirect(back)
    added = version.provenance.get("count", version.rows)
    messages.success(request, f"{added:,} traces written as {version}.")
    return redirect("curation:version", dataset_id=version.dataset_id, number=version.number)


@require_GET
@role_required(ANNOTATOR)
def annotate(request: HttpRequest) -> HttpResponse:
    """The annotator's home: the queues they are assigned to, with progress and their own part
    (researchers, who may label any queue, see every open one)."""
    mine = queues_to_annotate(user=request.user)[:100]
    rows = queues_progress(mine, user=request.user)
    return render(request, "curation/annotate.html", {"rows": rows})
