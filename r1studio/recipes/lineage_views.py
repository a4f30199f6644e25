"""Lineage pages: a run or a dataset version walked back to the base model and the raw data.

The graph (r1studio.recipes.lineage) is drawn server-side as columns, from the sources (base
models, raw files) on the left to the page's subject on the right; each node links to its run,
version or queue, and lists what it was made from.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from r1studio.core.roles import RESEARCHER, role_required
from r1studio.curation.models import DatasetVersion
from r1studio.recipes.lineage import Graph, run_lineage, version_lineage
from r1studio.runs.selectors import run_get_for_user

TYPE_LABELS = {
    "model": "base model",
    "raw": "raw data",
    "file": "file",
    "run": "run",
    "checkpoint": "checkpoint",
    "dataset": "dataset version",
    "annotation": "annotation",
}


def _columns(graph: Graph) -> list[list[dict[str, Any]]]:
    """The graph's layers with an HTML anchor per node and the anchors of its inputs."""
    anchors = {node_id: f"node-{i}" for i, node_id in enumerate(graph.nodes)}
    return [
        [
            {
                **node,
                "anchor": anchors[node["id"]],
                "type_label": TYPE_LABELS.get(node["type"], node["type"]),
                "is_root": node["id"] == graph.root,
                "inputs": [
                    {"anchor": anchors[i["id"]], "label": i["label"]}
                    for i in graph.inputs_of(node["id"])
                ],
            }
            for node in column
        ]
        for column in graph.layers()
    ]


def _page(request: HttpRequest, graph: Graph, title: str, back: str) -> HttpResponse:
    sources = [n for n in graph.nodes.values() if n["type"] in ("model", "raw")]
    context = {
        "title": title,
        "back": back,
        "graph": graph,
        "columns": _columns(graph),
        "sources": sources,
    }
    return render(request, "recipes/lineage.html", context)


@require_GET
@role_required(RESEARCHER)
def lineage_run(request: HttpRequest, run_id: int) -> HttpResponse:
    """What a run (its checkpoint) was made from, back to the base model and the raw data."""
    run = run_get_for_user(user=request.user, pk=run_id)
    graph = run_lineage(run=run, user=request.user)
    return _page(request, graph, f"#{run.pk} {run.name}", graph.nodes[graph.root]["url"])


@require_GET
@role_required(RESEARCHER)
def lineage_dataset(request: HttpRequest, version_id: int) -> HttpResponse:
    """What a dataset version was made from, back to the base model and the raw data."""
    version = get_object_or_404(DatasetVersion.objects.select_related("dataset"), pk=version_id)
    graph = version_lineage(version=version, user=request.user)
    title = f"{version.dataset.name}@{version.number}"
    return _page(request, graph, title, graph.nodes[graph.root]["url"])
