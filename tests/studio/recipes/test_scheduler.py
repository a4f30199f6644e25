"""Recipes launched for real: stages go through the Celery worker, Redis and the database.

A tiny chain (GRPO → generate → human gate → SFT) runs end to end with the gate switched on and
promoted by the test through the annotation API, and the SFT's lineage walks back through the
gate's queue and the GRPO checkpoint to the base model and the raw prompts; a failed stage blocks what follows and a retry
carries on; cancel stops every run; a worker killed mid-stage is replaced and the recipe goes on.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from pipeline.environment import package_version
from r1studio.api.services import api_token_create
from r1studio.curation.models import DatasetVersion
from r1studio.recipes.lineage import run_lineage
from r1studio.recipes.models import Recipe, RecipeStage
from r1studio.recipes.services import recipe_cancel, recipe_create, recipe_launch, recipe_retry
from r1studio.runs.models import Checkpoint, Run
from tests.conftest import wait_for
from tests.studio.runs.test_lost_and_resume import worker_process  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


class Api:
    """The JSON API with a user's bearer token."""

    def __init__(self, user: Any) -> None:
        _, token = api_token_create(user=user, name="recipes")
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def post(self, url: str, body: Any = None) -> Any:
        data = json.dumps(body) if body is not None else ""
        return self.client.post(f"/api{url}", data=data, content_type="application/json")

    def put(self, url: str, body: Any) -> Any:
        return self.client.put(f"/api{url}", data=json.dumps(body), content_type="application/json")

    def get(self, url: str) -> Any:
        return self.client.get(f"/api{url}")


def _recipe_in(pk: int, *statuses: str, timeout: float = 300) -> Recipe:
    def check() -> Recipe | None:
        recipe = Recipe.objects.get(pk=pk)
        return recipe if recipe.status in statuses else None

    return wait_for(check, timeout=timeout, interval=0.5)


def _stage(recipe: Recipe | int, key: str) -> RecipeStage:
    return RecipeStage.objects.select_related("run", "output_version").get(recipe=recipe, key=key)


def _candidates(stage_config: Any, **data: Any) -> dict:
    # Every sample kept, so that the tiny model's accuracy cannot leave the set empty.
    return stage_config("generate", data={"limit": 16, **data}, filters={"keep_correct": False})


def test_it_runs_a_chain_through_the_worker_and_a_person_promotes_its_gate(
    celery_worker: Any, researcher: Any, stage_config: Any, data_dir: Path
) -> None:
    api = Api(researcher)
    definition = {
        "name": "tiny R1",
        "stages": [
            {"key": "zero", "kind": "grpo", "config": stage_config("grpo")},
            {
                "key": "candidates",
                "kind": "generate",
                "config": _candidates(stage_config),
                "inputs": [{"field": "model.path", "stage": "zero"}],
            },
            {
                "key": "review",
                "kind": "gate",
                "gate_enabled": True,
                "config": {"limit": 6, "guidelines": "Accept the correct ones."},
                "inputs": [{"field": "data.source", "stage": "candidates"}],
            },
            {
                "key": "cold-start-sft",
                "kind": "sft",
                "config": stage_config("sft"),
                "inputs": [{"field": "data.source", "stage": "review"}],
            },
        ],
    }
    created = api.post("/recipes", definition)
    assert created.status_code == 201, created.content
    recipe_id = created.json()["id"]
    launched = api.post(f"/recipes/{recipe_id}/launch")
    assert launched.status_code == 200, launched.content
    assert [s["status"] for s in launched.json()["stages"]] == [
        "running", "pending", "pending", "pending",
    ]  # fmt: skip

    _recipe_in(recipe_id, "waiting", "failed")
    waiting = api.get(f"/recipes/{recipe_id}").json()
    assert waiting["status"] == "waiting", waiting
    gate = next(s for s in waiting["stages"] if s["key"] == "review")
    assert gate["status"] == "waiting" and gate["queue_url"]
    candidates = _stage(recipe_id, "candidates")
    assert candidates.run.config["model"]["path"] == str(
        Path(_stage(recipe_id, "zero").run.run_dir) / "final"
    )
    assert candidates.output_version.source_run_id == candidates.run_id

    queue = gate["queue"]
    for _ in range(3):  # the test's annotator accepts three candidates
        item = api.post(f"/queues/{queue}/next").json()
        label = item["label"]
        saved = api.put(
            f"/labels/{label['id']}",
            {"version": label["version"], "verdict": "accept", "submit": True},
        )
        assert saved.status_code == 200, saved.content
    promoted = api.post(f"/queues/{queue}/promote", {"dataset_name": "tiny-cold-start"})
    assert promoted.status_code == 201, promoted.content

    done = _recipe_in(recipe_id, "finished", "failed")
    assert done.status == "finished", done.error
    body = api.get(f"/recipes/{recipe_id}").json()
    assert [s["status"] for s in body["stages"]] == ["finished"] * 4
    assert body["progress"]["fraction"] == 1.0
    sft = _stage(recipe_id, "cold-start-sft")
    assert sft.run.config["data"]["source"] == promoted.json()["ref"]
    assert (Path(sft.run.run_dir) / "final").is_dir()

    # Lineage: what each worker ran with, and the SFT walks back to the base model and raw data.
    zero = _stage(recipe_id, "zero").run
    for run in (zero, candidates.run, sft.run):
        run.refresh_from_db()
        assert run.environment["packages"]["trl"] == package_version("trl")
        assert run.environment["packages"]["torch"] == package_version("torch")
        assert run.environment["python"] and run.config_hash
    (data,) = sft.run.lineage["inputs"]
    cold_start = DatasetVersion.objects.get(pk=data["version_id"])
    assert data["sha256"] == cold_start.sha256 and sft.run.lineage["model"]["kind"] == "base"
    edges = {tuple(e) for e in run_lineage(run=sft.run, user=researcher).as_dict()["edges"]}
    zero_final = str(Path(zero.run_dir) / "final")
    candidates_version = f"version:{candidates.output_version_id}"
    assert {
        (f"model:{zero.config['model']['path']}", f"run:{zero.pk}"),
        (f"raw:{zero.config['data']['source']}", f"run:{zero.pk}"),
        (f"run:{zero.pk}", f"checkpoint:{zero_final}"),
        (f"checkpoint:{zero_final}", f"run:{candidates.run_id}"),
        (f"run:{candidates.run_id}", candidates_version),
        (candidates_version, f"queue:{queue}"),
        (f"queue:{queue}", f"version:{cold_start.pk}"),
        (f"version:{cold_start.pk}", f"run:{sft.run_id}"),
    } <= edges


def test_a_failed_stage_blocks_what_follows_and_a_retry_carries_on(
    celery_worker: Any, researcher: Any, stage_config: Any, toy_dir: Path, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.jsonl"  # not there yet: the first attempt fails
    recipe = recipe_create(
        user=researcher,
        definition={
            "name": "retry",
            "stages": [
                {
                    "key": "candidates",
                    "kind": "generate",
                    "config": _candidates(stage_config, source=str(prompts)),
                },
                {
                    "key": "sft",
                    "kind": "sft",
                    "config": stage_config("sft"),
                    "inputs": [{"field": "data.source", "stage": "candidates"}],
                },
            ],
        },
    )
    recipe_launch(recipe=recipe, user=researcher)
    failed = _recipe_in(recipe.pk, "failed", "finished")
    assert failed.status == "failed"
    first = _stage(recipe, "candidates")
    assert first.status == "failed" and "candidates" in failed.error
    assert _stage(recipe, "sft").status == "blocked"

    shutil.copy(toy_dir / "data" / "train.jsonl", prompts)
    recipe_retry(recipe=recipe, user=researcher)
    done = _recipe_in(recipe.pk, "finished", "failed")
    assert done.status == "finished", done.error
    again = _stage(recipe, "candidates")
    assert again.run.parent_id == first.run_id and again.attempts == 2
    assert _stage(recipe, "sft").run.status == "finished"


def test_cancel_stops_every_run_of_the_recipe(
    celery_worker: Any, researcher: Any, stage_config: Any
) -> None:
    long = stage_config("grpo", trainer={"max_steps": 500})
    recipe = recipe_create(
        user=researcher,
        definition={
            "name": "cancel",
            "stages": [
                {"key": "a", "kind": "grpo", "config": long},
                {"key": "b", "kind": "grpo", "config": long},
                {
                    "key": "eval",
                    "kind": "evaluate",
                    "config": stage_config("evaluate"),
                    "inputs": [{"field": "model.path", "stage": "a"}],
                },
            ],
        },
    )
    recipe_launch(recipe=recipe, user=researcher)
    runs = [_stage(recipe, key).run_id for key in ("a", "b")]
    wait_for(
        lambda: Run.objects.filter(pk__in=runs, status="running", step__gte=1).exists(), timeout=120
    )

    recipe_cancel(recipe=recipe, user=researcher)
    wait_for(
        lambda: (
            set(Run.objects.filter(pk__in=runs).values_list("status", flat=True)) == {"cancelled"}
        ),
        timeout=120,
    )
    recipe.refresh_from_db()
    assert recipe.status == "cancelled"
    assert {s.status for s in recipe.stages.all()} == {"cancelled"}
    assert _stage(recipe, "eval").run is None


@pytest.mark.slow
def test_a_worker_killed_mid_stage_is_replaced_and_the_recipe_goes_on(
    worker_process: Any,  # noqa: F811
    researcher: Any,
    stage_config: Any,
    data_dir: Path,  # noqa: F811
) -> None:
    victim = worker_process("recipes")
    recipe = recipe_create(
        user=researcher,
        definition={
            "name": "restart",
            "stages": [
                {
                    "key": "zero",
                    "kind": "grpo",
                    "config": stage_config(
                        "grpo", trainer={"max_steps": 40}, output={"save_steps": 4}
                    ),
                },
                {
                    "key": "eval",
                    "kind": "evaluate",
                    "config": stage_config("evaluate"),
                    "inputs": [{"field": "model.path", "stage": "zero"}],
                },
            ],
        },
    )
    recipe_launch(recipe=recipe, user=researcher)
    run = _stage(recipe, "zero").run
    wait_for(
        lambda: (
            Run.objects.filter(pk=run.pk, step__gte=5).exists()
            and Checkpoint.objects.filter(run=run).exists()
        ),
        timeout=180,
    )
    victim.send_signal(signal.SIGKILL)
    victim.wait()

    worker_process("recipes")  # the same node name: it marks its old run lost as it starts
    done = _recipe_in(recipe.pk, "finished", "failed", "cancelled")
    assert done.status == "finished", done.error
    zero = _stage(recipe, "zero")
    assert zero.run_id == run.pk and zero.attempts == 2  # resumed in place, not started over
    assert zero.run.resume_from
    assert _stage(recipe, "eval").run.status == "finished"
