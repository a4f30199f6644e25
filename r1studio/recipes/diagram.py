"""The recipe page's graph as an SVG laid out server-side (no JavaScript, CSP-safe).

Nodes are the stages, what they make (a checkpoint, a dataset version) and what they start from
outside the recipe (a base model, a fixed dataset version); an edge runs from an output to each
stage that reads it. Stages sit in rows by depth (a stage one row below the deepest stage it
reads), each with its output just right of it, sources in a column on the left. An edge to the
next row drops straight down; a longer one, or one from a source, runs down a gutter lane of its
own beside the nodes, so it never crosses a node. Colours come from the status classes in
static/css/recipes.css; the template (templates/recipes/_graph.html) only draws what is here
(whole pixels, so no locale formats a coordinate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from django.urls import reverse

from r1studio.recipes.graph import config_get, stage_inputs
from r1studio.recipes.models import RecipeStage, StageStatus
from r1studio.recipes.scheduler import stage_dict

STAGE_W, STAGE_H = 200, 44
OUT_W, OUT_H = 150, 30
SOURCE_W, SOURCE_H = 150, 30
ROW_H = 84  # a row's height: a node and the gap an edge turns in
UNIT_W = STAGE_W + 28 + OUT_W + 40  # a stage, the link to its output, its output, a gap
LANE = 10  # gutter lane spacing
PAD = 20
KIND_LABELS = {
    "grpo": "GRPO",
    "sft": "SFT",
    "generate": "generate",
    "evaluate": "evaluate",
    "gate": "human gate",
}


@dataclass
class Node:
    id: str
    type: str  # stage | checkpoint | dataset | model
    label: str
    status: str
    x: int = 0
    y: int = 0
    w: int = 0
    h: int = 0
    url: str = ""
    title: str = ""
    kind: str = ""
    key: str = ""
    detail: str = ""

    @property
    def text_x(self) -> int:
        return self.x + 10

    @property
    def cx(self) -> int:
        return self.x + self.w // 2

    @property
    def label_y(self) -> int:
        return self.y + (18 if self.type == "stage" else 19)

    @property
    def detail_y(self) -> int:
        return self.y + 35


@dataclass
class Diagram:
    width: int
    height: int
    nodes: list[Node] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stage_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.type == "stage"]


def _short(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _stage_url(stage: RecipeStage, results: dict[int, int]) -> str:
    if stage.kind == "gate":
        if stage.gate_queue_id:
            return reverse("curation:queue", args=[stage.gate_queue_id])
        return ""
    if stage.run_id is None:
        return ""
    if stage.kind == "evaluate" and stage.run_id in results:
        return reverse("evals:result", args=[results[stage.run_id]])
    return reverse("runs:detail", args=[stage.run_id])


def _stage_detail(stage: RecipeStage) -> str:
    if stage.kind == "gate":
        if not stage.gate_enabled:
            return "off: data passes on"
        return "waiting for annotation" if stage.status == StageStatus.WAITING else "gate on"
    if stage.run_id is None:
        return stage.get_status_display()
    progress = ""
    if stage.status == StageStatus.RUNNING and stage.run.progress:
        progress = f" · {round(stage.run.progress * 100)}%"
    return f"run #{stage.run_id} · {stage.status}{progress}"


def _output(stage: RecipeStage) -> Node | None:
    """What the stage makes: a checkpoint (grpo, sft) or a dataset version (generate, gate)."""
    if stage.kind in ("grpo", "sft"):
        made = stage.status == StageStatus.FINISHED
        return Node(
            id=f"out:{stage.key}",
            type="checkpoint",
            label="checkpoint",
            status=StageStatus.FINISHED if made else StageStatus.PENDING,
            url=reverse("runs:detail", args=[stage.run_id]) if made and stage.run_id else "",
            title=f"The checkpoint {stage.label} trains",
        )
    if stage.kind in ("generate", "gate"):
        version = stage.output_version
        made = version is not None and stage.status in (StageStatus.FINISHED, StageStatus.SKIPPED)
        url = reverse("curation:version", args=[version.dataset_id, version.number]) if made else ""
        return Node(
            id=f"out:{stage.key}",
            type="dataset",
            label=_short(version.ref.removeprefix("dataset:"), 22) if made else "dataset",
            status=StageStatus.FINISHED if made else StageStatus.PENDING,
            url=url,
            title=f"The dataset version {stage.label} makes",
        )
    return None


def _sources(stage: RecipeStage, inputs: list[dict[str, Any]]) -> list[tuple[str, Node]]:
    """(id, node) of what the stage reads from outside the recipe: a model path no input fills,
    a fixed dataset version."""
    found = []
    fed = {str(item.get("field")) for item in inputs}
    model = config_get(stage.config or {}, "model.path")
    if stage.kind != "gate" and "model.path" not in fed and isinstance(model, str) and model:
        name = PurePath(model).name or model
        node = Node(f"model:{model}", "model", _short(name, 22), StageStatus.FINISHED, title=model)
        found.append((node.id, node))
    for item in inputs:
        if item.get("ref"):
            ref = str(item["ref"])
            node = Node(f"ref:{ref}", "dataset", _short(ref.removeprefix("dataset:"), 22), "")
            node.title = ref
            found.append((node.id, node))
    return found


def recipe_diagram(
    *, stages: list[RecipeStage], results: dict[int, int] | None = None, versions: Any = None
) -> Diagram:
    """The graph of `stages` (in recipe order, run/queue/version selected). `results` maps an
    evaluate stage's run id to its eval result (its node links there); `versions` maps a fixed
    input's `dataset:NAME@N` to `(dataset id, number)` for its link."""
    results = results or {}
    versions = versions or {}
    by_key = {stage.key: stage for stage in stages}
    inputs = {stage.key: stage_inputs(stage_dict(stage)) for stage in stages}
    upstream = {
        key: [i["stage"] for i in items if i.get("stage") in by_key]
        for key, items in inputs.items()
    }
    # Depth: one below the deepest stage read (recipes are acyclic: validated before saving).
    depth: dict[str, int] = {}
    for _ in range(len(stages) + 1):
        for stage in stages:
            ups = [depth.get(u, 0) for u in upstream[stage.key]]
            depth[stage.key] = max(ups, default=-1) + 1
    rows: dict[int, list[RecipeStage]] = {}
    for stage in stages:
        rows.setdefault(depth[stage.key], []).append(stage)

    sources: dict[str, Node] = {}
    edges_in: list[tuple[str, str]] = []  # (from node id, to stage key)
    for stage in stages:
        for item in inputs[stage.key]:
            if item.get("stage") in by_key:
                edges_in.append((f"out:{item['stage']}", stage.key))
        for node_id, node in _sources(stage, inputs[stage.key]):
            sources.setdefault(node_id, node)
            edges_in.append((node_id, stage.key))

    # Columns: sources, the left gutter (a lane per source), the stage units, the right gutter.
    left_lanes = len(sources)
    unit_x0 = (PAD + SOURCE_W + 20 + left_lanes * LANE + 10) if sources else PAD
    widest = max((len(row) for row in rows.values()), default=1)
    nodes: dict[str, Node] = {}
    for row, members in rows.items():
        for col, stage in enumerate(members):
            x = unit_x0 + col * UNIT_W
            y = PAD + row * ROW_H
            nodes[stage.key] = Node(
                id=f"stage:{stage.key}",
                type="stage",
                label=_short(stage.label, 25),
                status=stage.status,
                x=x,
                y=y,
                w=STAGE_W,
                h=STAGE_H,
                url=_stage_url(stage, results),
                title=f"{stage.label} ({KIND_LABELS.get(stage.kind, stage.kind)}): {stage.status}",
                kind=KIND_LABELS.get(stage.kind, stage.kind),
                key=stage.key,
                detail=_short(_stage_detail(stage), 32),
            )
            out = _output(stage)
            if out is not None:
                out.x, out.y = x + STAGE_W + 28, y + (STAGE_H - OUT_H) // 2
                out.w, out.h = OUT_W, OUT_H
                nodes[out.id] = out
    for i, (node_id, node) in enumerate(sources.items()):
        node.x, node.y, node.w, node.h = PAD, PAD + i * (SOURCE_H + 12), SOURCE_W, SOURCE_H
        if node_id.startswith("ref:") and node.title in versions:
            dataset_id, number = versions[node.title]
            node.url = reverse("curation:version", args=[dataset_id, number])
            node.status = StageStatus.FINISHED
        nodes[node_id] = node

    right_x0 = unit_x0 + widest * UNIT_W - 30
    edges: list[dict[str, Any]] = []
    # A stage's own output: a short arrow right.
    for stage in stages:
        out = nodes.get(f"out:{stage.key}")
        if out is not None:
            s = nodes[stage.key]
            y = s.y + STAGE_H // 2
            edges.append(_edge(f"M{s.x + STAGE_W},{y} H{out.x}", out.status))
    # One gutter lane per source or output: the edges leaving it share a trunk.
    lanes: dict[str, int] = {}
    right_lane = left_lane = 0
    for from_id, key in edges_in:
        src, dst = nodes.get(from_id), nodes[key]
        if src is None:
            continue
        top = dst.y - 10  # the gap above the reader, where edges turn in
        x_in = dst.x + 24 + (len([e for e in edges if e.get("to") == key]) % 6) * 14
        if from_id.startswith("out:") and dst.y - src.y <= ROW_H:
            # The next row: drop into the gap above it (nothing is drawn there), then across.
            path = f"M{src.cx},{src.y + src.h} V{top} H{x_in} V{dst.y}"
        elif from_id.startswith("out:"):
            if from_id not in lanes:
                lanes[from_id] = right_x0 + 20 + right_lane * LANE
                right_lane += 1
            lane = lanes[from_id]
            y = src.y + src.h // 2
            path = f"M{src.x + src.w},{y} H{lane} V{top} H{x_in} V{dst.y}"
        else:
            if from_id not in lanes:
                lanes[from_id] = PAD + SOURCE_W + 20 + left_lane * LANE
                left_lane += 1
            lane = lanes[from_id]
            y = src.y + src.h // 2
            path = f"M{src.x + src.w},{y} H{lane} V{top} H{x_in} V{dst.y}"
        edge = _edge(path, src.status)
        edge["to"] = key
        edges.append(edge)

    height = PAD + (max(rows, default=0) + 1) * ROW_H
    height = max(height, PAD + len(sources) * (SOURCE_H + 12) + PAD)
    width = right_x0 + 20 + right_lane * LANE + PAD
    return Diagram(width=width, height=height, nodes=list(nodes.values()), edges=edges)


def _edge(path: str, status: str) -> dict[str, Any]:
    return {"d": path, "status": "finished" if status == StageStatus.FINISHED else "pending"}
