"""Lineage: a run's checkpoint or a dataset version walked back to the base model and the raw
data, through the selector, the pages and the API (`{nodes: [{id, type, label}], edges}`).

The chain is the R1 recipe's shape, made of rows: raw prompts imported (v1) → a generate run
samples from the base model → its dataset version → an SFT run of the base model on it → a
GRPO run from the SFT run's final checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from django.urls import reverse

from r1studio.api.services import api_token_create
from r1studio.curation.annotation.models import AnnotationQueue
from r1studio.curation.models import DatasetUse
from r1studio.curation.services import dataset_create, version_write
from r1studio.recipes.lineage import run_lineage, version_lineage
from r1studio.runs.models import Run
from r1studio.runs.provenance import launch_record

pytestmark = pytest.mark.django_db

BASE = "/models/toy-base"
ROWS = pa.Table.from_pylist([{"problem": "1+1?", "answer": "2"}] * 3)


def _run(owner: Any, name: str, kind: str, config: dict, data_dir: Path, **fields: Any) -> Run:
    run = Run.objects.create(
        owner=owner, name=name, kind=kind, status="finished", config=config, **fields
    )
    run.run_dir = str(data_dir / "runs" / f"{run.pk}-{run.uid.hex}")
    (Path(run.run_dir) / "final").mkdir(parents=True)
    run.lineage = launch_record(config)["lineage"]
    run.save()
    return run


@pytest.fixture
def chain(researcher: Any, data_dir: Path) -> dict[str, Any]:
    prompts = dataset_create(user=researcher, name="prompts")
    raw = version_write(
        dataset=prompts,
        table=ROWS,
        user=researcher,
        provenance_type="import",
        provenance={"job": 1, "file": "math_prompts.jsonl"},
    )
    generate = _run(
        researcher,
        "rejection sampling",
        "generate",
        {"kind": "generate", "model": {"path": BASE}, "data": {"source": "dataset:prompts@1"}},
        data_dir,
    )
    DatasetUse.objects.create(version=raw, run=generate, sha256=raw.sha256)
    made = version_write(
        dataset=dataset_create(user=researcher, name="reasoning"),
        table=ROWS,
        user=researcher,
        provenance_type="run",
        provenance={"run": generate.pk},
        source_run=generate,
    )
    sft = _run(
        researcher,
        "sft",
        "sft",
        {"kind": "sft", "model": {"path": BASE}, "data": {"source": "dataset:reasoning@1"}},
        data_dir,
    )
    final = str(Path(sft.run_dir) / "final")
    grpo = _run(
        researcher,
        "grpo",
        "grpo",
        {"kind": "grpo", "model": {"path": final}, "data": {"source": "gsm8k-train"}},
        data_dir,
    )
    return {
        "raw": raw,
        "generate": generate,
        "made": made,
        "sft": sft,
        "grpo": grpo,
        "final": final,
    }


def _ids(graph: dict) -> set[str]:
    return {node["id"] for node in graph["nodes"]}


def _edges(graph: dict) -> set[tuple[str, str]]:
    return {tuple(edge) for edge in graph["edges"]}


def _assert_reaches_the_sources(graph: dict, chain: dict) -> None:
    raw, made = chain["raw"], chain["made"]
    generate, sft = chain["generate"], chain["sft"]
    edges = _edges(graph)
    assert (f"model:{BASE}", f"run:{generate.pk}") in edges  # the base model, sampled from
    assert (f"model:{BASE}", f"run:{sft.pk}") in edges  # SFT starts again from the base model
    assert ("raw:import:1", f"version:{raw.pk}") in edges  # the raw file, imported
    assert (f"version:{raw.pk}", f"run:{generate.pk}") in edges
    assert (f"run:{generate.pk}", f"version:{made.pk}") in edges
    assert (f"version:{made.pk}", f"run:{sft.pk}") in edges
    types = {node["id"]: node["type"] for node in graph["nodes"]}
    assert types[f"model:{BASE}"] == "model" and types["raw:import:1"] == "raw"
    labels = {node["id"]: node["label"] for node in graph["nodes"]}
    assert labels["raw:import:1"] == "imported math_prompts.jsonl"


def test_a_grpo_checkpoint_walks_back_to_the_base_model_and_the_raw_data(chain, researcher):
    graph = run_lineage(run=chain["grpo"], user=researcher).as_dict()

    sft, grpo = chain["sft"], chain["grpo"]
    checkpoint = f"checkpoint:{chain['final']}"
    assert graph["root"] == f"run:{grpo.pk}"
    assert (f"run:{sft.pk}", checkpoint) in _edges(graph)
    assert (checkpoint, f"run:{grpo.pk}") in _edges(graph)
    assert ("raw:gsm8k-train", f"run:{grpo.pk}") in _edges(graph)  # its prompts: a hub set
    _assert_reaches_the_sources(graph, chain)


def test_a_dataset_version_walks_back_to_the_base_model_and_the_raw_data(chain, researcher):
    graph = version_lineage(version=chain["made"], user=researcher).as_dict()

    assert graph["root"] == f"version:{chain['made'].pk}"
    assert f"run:{chain['grpo'].pk}" not in _ids(graph)  # downstream is not lineage
    edges = _edges(graph)
    assert (f"model:{BASE}", f"run:{chain['generate'].pk}") in edges
    assert ("raw:import:1", f"version:{chain['raw'].pk}") in edges


def test_layers_put_every_input_left_of_what_it_made(chain, researcher):
    graph = run_lineage(run=chain["grpo"], user=researcher)
    column = {node["id"]: i for i, nodes in enumerate(graph.layers()) for node in nodes}

    assert all(column[a] < column[b] for a, b in graph.edges)
    assert column[graph.root] == len(graph.layers()) - 1


def test_a_run_the_user_may_not_see_is_a_node_without_details(chain, make_user, data_dir):
    other = make_user("researcher")
    Run.objects.filter(pk=chain["sft"].pk).update(status="draft")  # a draft: its owner's only

    graph = run_lineage(run=chain["grpo"], user=other).as_dict()

    node = next(n for n in graph["nodes"] if n["id"] == f"run:{chain['sft'].pk}")
    assert node["label"] == f"run #{chain['sft'].pk} (not visible to you)" and node["url"] == ""
    assert f"version:{chain['made'].pk}" not in _ids(graph)  # not walked past it


def test_an_annotated_version_walks_through_its_queue_to_the_source(researcher, data_dir):
    source = version_write(
        dataset=dataset_create(user=researcher, name="candidates"),
        table=ROWS,
        user=researcher,
        provenance_type="import",
        provenance={"job": 7, "file": "candidates.jsonl"},
    )
    queue = AnnotationQueue.objects.create(
        name="cold start", created_by=researcher, source_version=source
    )
    promoted = version_write(
        dataset=dataset_create(user=researcher, name="cold-start"),
        table=ROWS,
        user=researcher,
        provenance_type="annotation",
        provenance={"queue": queue.pk, "queue_name": queue.name, "source_version": source.ref},
    )

    graph = version_lineage(version=promoted, user=researcher).as_dict()

    edges = _edges(graph)
    assert (f"queue:{queue.pk}", f"version:{promoted.pk}") in edges
    assert (f"version:{source.pk}", f"queue:{queue.pk}") in edges
    assert ("raw:import:7", f"version:{source.pk}") in edges


def test_the_api_answers_the_same_graph_for_a_run_and_a_version(chain, researcher, client):
    _, token = api_token_create(user=researcher, name="t")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    by_run = client.get(f"/api/lineage/run/{chain['grpo'].pk}", **auth)
    by_version = client.get(f"/api/lineage/dataset/{chain['made'].pk}", **auth)

    assert by_run.status_code == 200 and by_version.status_code == 200
    graph = by_run.json()
    assert all({"id", "type", "label"} <= set(node) for node in graph["nodes"])
    assert all(len(edge) == 2 for edge in graph["edges"])
    _assert_reaches_the_sources(graph, chain)
    assert (f"model:{BASE}", f"run:{chain['generate'].pk}") in _edges(by_version.json())
    assert client.get("/api/lineage/run/999999", **auth).status_code == 404
    assert client.get("/api/lineage/dataset/999999", **auth).status_code == 404


def test_the_api_hides_another_researchers_draft_and_refuses_annotators(chain, make_user, client):
    Run.objects.filter(pk=chain["grpo"].pk).update(status="draft")
    url = f"/api/lineage/run/{chain['grpo'].pk}"
    _, token = api_token_create(user=make_user("researcher"), name="t")

    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 404
    client.force_login(make_user("annotator"))
    assert client.get(url).status_code == 403


def test_the_pages_draw_each_node_with_its_link(chain, researcher_client):
    page = researcher_client.get(reverse("recipes:lineage_run", args=[chain["grpo"].pk]))
    version_page = researcher_client.get(
        reverse("recipes:lineage_dataset", args=[chain["made"].pk])
    )

    assert page.status_code == 200 and version_page.status_code == 200
    html = page.content.decode()
    assert f'data-node-id="model:{BASE}"' in html and 'data-node-id="raw:import:1"' in html
    assert reverse("runs:detail", args=[chain["sft"].pk]) in html
    assert reverse("curation:version", args=[chain["made"].dataset_id, 1]) in html
    assert "imported math_prompts.jsonl" in html
    assert "style=" not in html and "<script>" not in html


def test_the_run_and_version_pages_link_to_their_lineage(chain, researcher_client):
    run_page = researcher_client.get(reverse("runs:detail", args=[chain["grpo"].pk]))
    made = chain["made"]
    version_page = researcher_client.get(
        reverse("curation:version", args=[made.dataset_id, made.number])
    )

    assert reverse("recipes:lineage_run", args=[chain["grpo"].pk]) in run_page.content.decode()
    assert reverse("recipes:lineage_dataset", args=[made.pk]) in version_page.content.decode()
