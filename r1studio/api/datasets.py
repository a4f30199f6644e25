"""The datasets API: datasets, their immutable versions, imports, exports and curation jobs.

Mounted on the main API (`api.add_router`), with its authentication: the same bearer tokens
or session, for researchers and admins only: an annotator is refused (403) before the request
is even read, an upload included. Datasets are shared between researchers, like finished runs.

`POST /datasets/{id}/versions` takes a multipart `file` (JSONL, Parquet or CSV) or a
`server_path` (a file or an HF save_to_disk folder inside the allowed folders), a `mapping`
(JSON: `{"problem": "question", ...}`) and `keep_other`; it answers 202 with the import job to
poll at `/dataset-jobs/{id}`. A file up to 20 MB is read through first: a malformed one answers
422 naming the line and the column, and nothing is created. Curations are jobs too.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db.models import Count, Max
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import File, Form, Query, Router, Schema, Status, UploadedFile
from ninja.errors import HttpError
from pydantic import Field, field_validator

from r1studio.api.auth import RESEARCHER_AUTH
from r1studio.api.parsing import no_nul
from r1studio.api.schemas import ErrorOut
from r1studio.curation import exports, selectors
from r1studio.curation.browse import SEARCH_CAP
from r1studio.curation.curate import curation_start
from r1studio.curation.imports import ImportProblem, import_start
from r1studio.curation.models import Dataset, DatasetJob, DatasetKind, DatasetVersion
from r1studio.curation.services import DatasetError, dataset_create

router = Router(auth=RESEARCHER_AUTH, tags=["datasets"])
ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


# --- bodies ----------------------------------------------------------------------------------


class DatasetIn(Schema):
    name: str = Field(description="Letters, digits, '-', '_' or '.'; configs name it.")
    kind: str = Field(DatasetKind.OTHER, description=f"One of {', '.join(DatasetKind.values)}.")
    description: str = ""

    _checked = field_validator("name", "kind", "description")(no_nul)


class VersionOut(Schema):
    number: int
    ref: str = Field(description="How a stage config names it: dataset:NAME@N")
    rows: int
    size_bytes: int
    sha256: str
    parent: int | None
    provenance_type: str
    created_by: str
    created_at: datetime


class VersionDetailOut(VersionOut):
    status: str = Field(description="ready: written, immutable")
    columns: list[dict[str, str]]
    stats: dict[str, Any]
    provenance: dict[str, Any]
    funnel: list[dict[str, Any]]
    used_by_runs: list[int]


class DatasetOut(Schema):
    id: int
    name: str
    kind: str
    description: str
    owner: str
    created_at: datetime
    versions: int
    latest: int | None


class DatasetDetailOut(DatasetOut):
    version_list: list[VersionOut]


class JobOut(Schema):
    id: int
    kind: str
    dataset_id: int
    status: str = Field(description="queued, running, finished or failed")
    progress: float
    eta_seconds: float | None
    message: str
    error: str = Field(description="Why it failed, naming the line and column of a bad file")
    source: int | None = Field(description="The version a curation reads")
    result: VersionOut | None
    params: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RowsOut(Schema):
    offset: int
    limit: int
    total: int = Field(description="Rows that match (a search counts up to 10,001)")
    next_offset: int | None
    items: list[dict[str, Any]]


class CurateIn(Schema):
    operations: list[dict[str, Any]] = Field(
        description="The curation steps in order, e.g. "
        '[{"op": "near_dedup", "threshold": 0.9}, {"op": "decontaminate"}]'
    )

    _checked = field_validator("operations")(no_nul)


# --- helpers ---------------------------------------------------------------------------------


def _dataset(dataset_id: int) -> Dataset:
    return get_object_or_404(Dataset.objects.select_related("owner"), pk=dataset_id)


def _version(dataset_id: int, number: int) -> DatasetVersion:
    return get_object_or_404(
        DatasetVersion.objects.select_related("dataset", "parent", "created_by"),
        dataset_id=dataset_id,
        number=number,
    )


def _version_out(version: DatasetVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "ref": version.ref,
        "rows": version.rows,
        "size_bytes": version.size_bytes,
        "sha256": version.sha256,
        "parent": version.parent.number if version.parent_id else None,
        "provenance_type": version.provenance_type,
        "created_by": version.created_by.get_username(),
        "created_at": version.created_at,
    }


def _dataset_out(dataset: Dataset) -> dict[str, Any]:
    counts = getattr(dataset, "n_versions", None)
    latest = getattr(dataset, "latest", None)
    if counts is None:
        summary = dataset.versions.aggregate(n=Count("pk"), latest=Max("number"))
        counts, latest = summary["n"], summary["latest"]
    return {
        "id": dataset.pk,
        "name": dataset.name,
        "kind": dataset.kind,
        "description": dataset.description,
        "owner": dataset.owner.get_username(),
        "created_at": dataset.created_at,
        "versions": counts,
        "latest": latest,
    }


def _job_out(job: DatasetJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "kind": job.kind,
        "dataset_id": job.dataset_id,
        "status": job.status,
        "progress": job.progress,
        "eta_seconds": job.eta_seconds,
        "message": job.message,
        "error": job.error,
        "source": job.source.number if job.source_id else None,
        "result": _version_out(job.result) if job.result_id else None,
        "params": job.params,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def _unprocessable(exc: Exception) -> HttpError:
    messages = getattr(exc, "messages", None)
    return HttpError(422, " ".join(messages) if messages else str(exc))


def _json_safe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return json.loads(json.dumps(rows, ensure_ascii=False, default=str))


def _rows_page(
    version: DatasetVersion, *, offset: int, limit: int, q: str
) -> tuple[list[dict], int]:
    """One page of a version's whole rows in file order (the browse pages' reader), each with
    its position as `row`, and how many rows match."""
    try:
        rows, total = selectors.version_rows(
            version=version, offset=offset, limit=limit, q=q, full=True
        )
    except selectors.RowsError as exc:
        raise HttpError(422, str(exc)) from None
    return _json_safe([{"row": row["index"], **row["values"]} for row in rows]), total


# --- endpoints -------------------------------------------------------------------------------


@router.post("/datasets", response={201: DatasetOut, **ERRORS})
def create_dataset(request: HttpRequest, body: DatasetIn) -> Any:
    """A new, empty dataset (422 when the name is taken or not a name)."""
    try:
        dataset = dataset_create(
            user=request.auth, name=body.name, kind=body.kind, description=body.description
        )
    except DatasetError as exc:
        raise _unprocessable(exc) from None
    return Status(201, _dataset_out(dataset))


@router.get("/datasets", response={200: list[DatasetOut], **ERRORS})
def list_datasets(
    request: HttpRequest,
    kind: str | None = None,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10**9),
) -> Any:
    """Datasets by name, with their number of versions and the latest one."""
    datasets = Dataset.objects.select_related("owner").annotate(
        n_versions=Count("versions"), latest=Max("versions__number")
    )
    if kind:
        datasets = datasets.filter(kind=kind)
    return [_dataset_out(d) for d in datasets.order_by("name")[offset : offset + limit]]


@router.get("/datasets/{dataset_id}", response={200: DatasetDetailOut, **ERRORS})
def get_dataset(request: HttpRequest, dataset_id: int) -> Any:
    """One dataset and its versions, newest first."""
    dataset = _dataset(dataset_id)
    versions = dataset.versions.select_related("parent", "created_by", "dataset")
    return {**_dataset_out(dataset), "version_list": [_version_out(v) for v in versions]}


@router.post("/datasets/{dataset_id}/versions", response={202: JobOut, **ERRORS})
def import_version(
    request: HttpRequest,
    dataset_id: int,
    file: UploadedFile | None = File(None, description="A .jsonl, .parquet or .csv file"),
    server_path: str = Form("", description="Or: a file or HF save_to_disk folder on the server"),
    mapping: str = Form("", description='JSON {common column: file column}; "" maps same names'),
    keep_other: bool = Form(True, description="Keep the file's other columns too"),
    format: str = Form("", description="jsonl, parquet, csv or hf (default: from the name)"),
) -> Any:
    """Import a file as the dataset's next version: 202 with the job to poll. A malformed file
    up to 20 MB answers 422 naming the line (or row) and the column; nothing is created."""
    dataset = _dataset(dataset_id)
    try:
        job = import_start(
            user=request.auth,
            dataset=dataset,
            uploaded_file=file,
            server_path=server_path if file is None else "",
            mapping=mapping,
            keep_other=keep_other,
            fmt=format,
        )
    except ImportProblem as exc:
        raise _unprocessable(exc) from None
    return Status(202, _job_out(job))


@router.get("/dataset-jobs/{job_id}", response={200: JobOut, **ERRORS})
def get_dataset_job(request: HttpRequest, job_id: int) -> Any:
    """An import or curation job: status, progress, ETA, error, and the version it made."""
    job = get_object_or_404(
        DatasetJob.objects.select_related("result__created_by", "result__parent", "source"),
        pk=job_id,
    )
    return _job_out(job)


@router.get("/datasets/{dataset_id}/versions/{number}", response={200: VersionDetailOut, **ERRORS})
def get_version(request: HttpRequest, dataset_id: int, number: int) -> Any:
    """One version: rows, sha256, provenance, columns, statistics, funnel, runs that used it."""
    version = _version(dataset_id, number)
    return {
        **_version_out(version),
        "status": "ready",
        "columns": version.columns,
        "stats": version.stats,
        "provenance": version.provenance,
        "funnel": version.funnel,
        "used_by_runs": sorted(version.uses.values_list("run_id", flat=True)),
    }


@router.get("/datasets/{dataset_id}/versions/{number}/rows", response={200: RowsOut, **ERRORS})
def version_rows(
    request: HttpRequest,
    dataset_id: int,
    number: int,
    offset: int = Query(0, ge=0, le=10**9),
    limit: int = Query(50, ge=1, le=200),
    q: str = Query("", max_length=200, description="Text in the problem, think or answer"),
) -> Any:
    """A page of the version's rows, in file order."""
    version = _version(dataset_id, number)
    if "\x00" in q:
        raise HttpError(422, "NUL characters are not allowed in q")
    items, total = _rows_page(version, offset=offset, limit=limit, q=q.strip())
    more = offset + len(items) < min(total, SEARCH_CAP if q.strip() else total)
    return {
        "offset": offset,
        "limit": limit,
        "total": total,
        "next_offset": offset + limit if more else None,
        "items": items,
    }


@router.get("/datasets/{dataset_id}/versions/{number}/export", response={200: None, **ERRORS})
def export_version(
    request: HttpRequest,
    dataset_id: int,
    number: int,
    format: str = Query("jsonl", pattern="^(jsonl|parquet|hf)$"),
) -> Any:
    """Download the version, streamed: `jsonl` (with TRL `messages`), `parquet` (the version's
    own file) or `hf` (a tar of an HF save_to_disk folder)."""
    return exports.export_response(request, _version(dataset_id, number), format)


@router.post("/datasets/{dataset_id}/versions/{number}/curate", response={202: JobOut, **ERRORS})
def curate_version(request: HttpRequest, dataset_id: int, number: int, body: CurateIn) -> Any:
    """Queue a curation of the version (filters, dedup, decontamination, mixing, sampling,
    split); the job's result is a new version whose parent is this one."""
    version = _version(dataset_id, number)
    if not body.operations:
        raise HttpError(422, "name at least one operation")
    try:  # bad operations answer 422 here, before anything is queued
        job = curation_start(user=request.auth, version=version, operations=body.operations)
    except DatasetError as exc:
        raise _unprocessable(exc) from None
    return Status(202, _job_out(job))
