"""Lineage: any run's checkpoint or dataset version, walked back to the base model and raw data.

The graph's nodes are runs, checkpoints, dataset versions, annotation queues, base models and
raw data (an imported file, a data file or hub dataset a stage read); an edge `[from, to]` says
`to` was made from `from`. Walking back from a run: the model it started from (a base model, or
another run's checkpoint → that run, walked in turn) and its data inputs (a dataset version, a
file another run wrote → that run). From a dataset version: its provenance, i.e. the run that
generated it, the import (the raw file), the curation job's source and mixed-in versions, the
runs whose traces it collects, the annotation queue (→ the queue's source version).

What a run used is read from what was recorded: the versions the worker resolved (curation's
`DatasetUse`), then the run's launch record (`Run.lineage`), else its config as it stands.
Only runs the user may see are walked (runs.selectors.runs_visible_to); another one shows as a
node without details. Dataset versions are shared by all researchers.
"""

from __future__ import annotations

import posixpath
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

from r1studio.curation.models import DatasetUse, DatasetVersion, ProvenanceType
from r1studio.curation.run_datasets import version_for_ref
from r1studio.runs.inputs import InputError
from r1studio.runs.models import Run
from r1studio.runs.provenance import input_values, model_describe, run_for_path
from r1studio.runs.selectors import runs_visible_to

MAX_NODES = 400  # a recipe of tens of stages stays far below; a runaway walk stops here


@dataclass
class Graph:
    """Nodes by id (insertion order: the start first) and edges `[from, to]`."""

    root: str = ""
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    truncated: bool = False

    def node(self, node_id: str, type_: str, label: str, url: str = "", **extra: Any) -> str:
        if node_id not in self.nodes:
            self.nodes[node_id] = {"id": node_id, "type": type_, "label": label, "url": url}
            self.nodes[node_id].update(extra)
        return node_id

    def edge(self, source: str, target: str) -> None:
        if (source, target) not in self.edges and source != target:
            self.edges.append((source, target))

    def as_dict(self) -> dict[str, Any]:
        """`{nodes: [{id, type, label, url}], edges: [[from, to]]}` (the API's answer)."""
        return {
            "root": self.root,
            "nodes": list(self.nodes.values()),
            "edges": [list(e) for e in self.edges],
            "truncated": self.truncated,
        }

    def layers(self) -> list[list[dict[str, Any]]]:
        """Nodes in columns from the sources (base models, raw data) to the start: each node one
        column after the furthest of its inputs, so every edge points rightwards."""
        inputs: dict[str, list[str]] = {n: [] for n in self.nodes}
        for source, target in self.edges:
            inputs[target].append(source)
        depth: dict[str, int] = {}

        def level(node_id: str, seen: frozenset[str] = frozenset()) -> int:
            if node_id in depth:
                return depth[node_id]
            if node_id in seen:  # a cycle cannot happen in provenance, but never loop
                return 0
            parents = [level(p, seen | {node_id}) for p in inputs[node_id]]
            depth[node_id] = 1 + max(parents) if parents else 0
            return depth[node_id]

        columns: dict[int, list[dict[str, Any]]] = {}
        for node_id in self.nodes:
            columns.setdefault(level(node_id), []).append(self.nodes[node_id])
        return [columns[i] for i in sorted(columns)]

    def inputs_of(self, node_id: str) -> list[dict[str, Any]]:
        return [self.nodes[s] for s, t in self.edges if t == node_id]


class _Walk:
    """One breadth-first walk back from a run or a version for one user."""

    def __init__(self, user: Any):
        self.user = user
        self.graph = Graph()
        self.todo: deque[tuple[str, Any]] = deque()
        self.seen: set[str] = set()
        self.visible = runs_visible_to(user=user)

    # --- nodes --------------------------------------------------------------------------------

    def run_node(self, run_id: int, *, walk: bool = True) -> str:
        node_id = f"run:{run_id}"
        if node_id in self.graph.nodes:
            return node_id
        run = self.visible.filter(pk=run_id).first()
        if run is None:
            return self.graph.node(node_id, "run", f"run #{run_id} (not visible to you)")
        label = f"#{run.pk} {run.name} ({run.kind})"
        url = reverse("runs:detail", args=[run.pk])
        self.graph.node(node_id, "run", label, url, status=run.status, kind=run.kind)
        if walk:
            self.todo.append(("run", run))
        return node_id

    def version_node(self, version: DatasetVersion) -> str:
        node_id = f"version:{version.pk}"
        if node_id not in self.graph.nodes:
            url = reverse("curation:version", args=[version.dataset_id, version.number])
            label = f"{version.dataset.name}@{version.number} ({version.rows} rows)"
            self.graph.node(node_id, "dataset", label, url, sha256=version.sha256)
            self.todo.append(("version", version))
        return node_id

    def raw_node(self, key: str, label: str, url: str = "") -> str:
        return self.graph.node(f"raw:{key}", "raw", label, url)

    # --- walking ------------------------------------------------------------------------------

    def run(self) -> Graph:
        while self.todo:
            if len(self.graph.nodes) >= MAX_NODES:
                self.graph.truncated = True
                break
            what, obj = self.todo.popleft()
            key = f"{what}:{obj.pk}"
            if key in self.seen:
                continue
            self.seen.add(key)
            if what == "run":
                self.walk_run(obj)
            else:
                self.walk_version(obj)
        return self.graph

    def walk_run(self, run: Run) -> None:
        here = f"run:{run.pk}"
        model = (run.lineage or {}).get("model") or model_describe(_model_path(run))
        if model.get("kind") == "checkpoint" and model.get("run"):
            parent = self.run_node(int(model["run"]))
            what = model.get("what") or "checkpoint"
            label = f"{posixpath.basename(what) or what} of #{model['run']}"
            ckpt = self.graph.node(f"checkpoint:{model['path']}", "checkpoint", label,
                                   self.graph.nodes[parent]["url"], path=model["path"])  # fmt: skip
            self.graph.edge(parent, ckpt)
            self.graph.edge(ckpt, here)
        elif model.get("path"):
            node = self.graph.node(f"model:{model['path']}", "model", model["path"],
                                   path=model["path"])  # fmt: skip
            self.graph.edge(node, here)
        used = {
            use.field: use.version
            for use in DatasetUse.objects.filter(run=run).select_related("version__dataset")
        }
        for version in used.values():
            self.graph.edge(self.version_node(version), here)
        for entry in _recorded_inputs(run):
            if entry["loc"] in used:
                continue
            self.walk_input(entry, here)

    def walk_input(self, entry: dict[str, Any], here: str) -> None:
        ref = str(entry.get("ref") or "")
        if entry.get("kind") == "dataset" or ref.startswith("dataset:"):
            version = None
            if entry.get("version_id"):
                version = DatasetVersion.objects.select_related("dataset").filter(
                    pk=entry["version_id"]
                )
                version = version.first()
            if version is None:
                version = _version_or_none(ref)
            if version is not None:
                self.graph.edge(self.version_node(version), here)
            else:
                self.graph.edge(self.raw_node(ref, f"{ref} (no such version now)"), here)
            return
        if entry.get("run"):  # a file or folder another run wrote (a generate run's dataset)
            source = self.run_node(int(entry["run"]))
            node = self.graph.node(f"file:{ref}", "file", _short(ref), path=ref)
            self.graph.edge(source, node)
            self.graph.edge(node, here)
            return
        label = entry.get("preset") or _short(ref)
        self.graph.edge(self.raw_node(ref, label), here)

    def walk_version(self, version: DatasetVersion) -> None:
        here = f"version:{version.pk}"
        prov = version.provenance or {}
        kind = version.provenance_type
        if version.parent_id:
            parent = DatasetVersion.objects.select_related("dataset").get(pk=version.parent_id)
            self.graph.edge(self.version_node(parent), here)
        if version.source_run_id:
            self.graph.edge(self.run_node(version.source_run_id), here)
        elif kind == ProvenanceType.RUN and isinstance(prov.get("run"), int):
            self.graph.edge(self.run_node(prov["run"]), here)
        if kind == ProvenanceType.IMPORT:
            name = prov.get("server_path") or prov.get("file") or "an imported file"
            key = f"import:{prov.get('job', version.pk)}"
            self.graph.edge(self.raw_node(key, f"imported {_short(str(name))}"), here)
        elif kind == ProvenanceType.CURATION:
            for ref in [prov.get("source"), *(prov.get("mixed") or [])]:
                source = _version_or_none(str(ref or ""))
                if source is not None:
                    self.graph.edge(self.version_node(source), here)
        elif kind == ProvenanceType.TRACES:
            for run_id in prov.get("run_ids") or []:
                if isinstance(run_id, int):
                    self.graph.edge(self.run_node(run_id), here)
        elif kind == ProvenanceType.ANNOTATION and prov.get("queue"):
            url = reverse("curation:queue", args=[prov["queue"]])
            label = f"annotation queue {prov.get('queue_name') or prov['queue']}"
            queue = self.graph.node(f"queue:{prov['queue']}", "annotation", label, url)
            self.graph.edge(queue, here)
            source = _version_or_none(str(prov.get("source_version") or ""))
            if source is not None:
                self.graph.edge(self.version_node(source), queue)


def _model_path(run: Run) -> str:
    model = (run.config or {}).get("model") or {}
    return str(model.get("path") or "") if isinstance(model, dict) else ""


def _recorded_inputs(run: Run) -> list[dict[str, Any]]:
    """The run's data inputs as launched (`Run.lineage`), else read from its config now
    (a draft, or a run from before lineage was recorded), without hashing anything."""
    recorded = (run.lineage or {}).get("inputs")
    if isinstance(recorded, list):
        return [entry for entry in recorded if isinstance(entry, dict) and entry.get("ref")]
    entries = []
    for loc, value in input_values(run.config or {}):
        entry: dict[str, Any] = {"loc": loc, "ref": value}
        source, _ = run_for_path(value)
        if source is not None:
            entry["run"] = source.pk
        entries.append(entry)
    return entries


def _version_or_none(ref: str) -> DatasetVersion | None:
    if not ref.startswith("dataset:"):
        return None
    try:
        return version_for_ref(ref)
    except InputError:
        return None


def _short(path: str) -> str:
    """The last two parts of a path (`dataset/data.parquet`), a hub id or preset as is."""
    parts = [p for p in path.rstrip("/").split("/") if p]
    return "/".join(parts[-2:]) if len(parts) > 2 else path


def run_lineage(*, run: Run, user: Any) -> Graph:
    """The graph back from `run` (which the caller checked `user` may see)."""
    walk = _Walk(user)
    walk.graph.root = walk.run_node(run.pk)
    return walk.run()


def version_lineage(*, version: DatasetVersion, user: Any) -> Graph:
    """The graph back from a dataset version."""
    walk = _Walk(user)
    walk.graph.root = walk.version_node(version)
    return walk.run()


def dataset_ref_describe(*, value: str) -> dict[str, Any]:
    """What `dataset:NAME@N` is now, for a run's launch record (r1studio.runs.provenance):
    the version pinned (`dataset:NAME` means the latest at launch) with its content hash."""
    version = version_for_ref(value)
    return {
        "version_id": version.pk,
        "version": version.ref,
        "sha256": version.sha256,
        "rows": version.rows,
    }
