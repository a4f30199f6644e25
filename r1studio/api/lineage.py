"""The lineage API: a run or a dataset version walked back to the base model and the raw data.

`GET /lineage/run/{run_id}` and `GET /lineage/dataset/{version_id}` answer
`{root, nodes: [{id, type, label, url, ...}], edges: [[from, to]], truncated}`, an edge meaning
`to` was made from `from` (r1studio.recipes.lineage). Node types: `run`, `checkpoint`,
`dataset` (a version), `annotation` (a queue), `model` (a base model), `raw` (raw data),
`file` (a file a run wrote). Researchers only; a run the caller may not see is a 404, and
upstream such runs appear as a node without details.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest
from ninja import Path, Router, Schema
from pydantic import ConfigDict

from r1studio.api.auth import RESEARCHER_AUTH
from r1studio.api.schemas import ErrorOut
from r1studio.curation.models import DatasetVersion
from r1studio.recipes.lineage import run_lineage, version_lineage
from r1studio.runs.selectors import run_get_for_user

router = Router(auth=RESEARCHER_AUTH, tags=["lineage"])
ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut}
MAX_ID = 2**63 - 1  # past a bigint column, no row can match: 422, never a database error


class NodeOut(Schema):
    model_config = ConfigDict(extra="allow")  # status, kind, path, sha256 where they apply

    id: str
    type: str
    label: str
    url: str = ""


class LineageOut(Schema):
    root: str
    nodes: list[NodeOut]
    edges: list[list[str]]
    truncated: bool = False


@router.get("/lineage/run/{run_id}", response={200: LineageOut, **ERRORS})
def run_lineage_get(request: HttpRequest, run_id: int = Path(..., ge=1, le=MAX_ID)) -> Any:
    """A run (its checkpoint) back to the base model and the raw data."""
    run = run_get_for_user(user=request.auth, pk=run_id)
    return run_lineage(run=run, user=request.auth).as_dict()


@router.get("/lineage/dataset/{version_id}", response={200: LineageOut, **ERRORS})
def dataset_lineage_get(request: HttpRequest, version_id: int = Path(..., ge=1, le=MAX_ID)) -> Any:
    """A dataset version (by its id, as `/datasets/{id}/versions/{n}` gives it) back to the
    base model and the raw data."""
    version = DatasetVersion.objects.select_related("dataset").filter(pk=version_id).first()
    if version is None:
        raise Http404("No such dataset version")
    return version_lineage(version=version, user=request.auth).as_dict()
