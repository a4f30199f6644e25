"""The recipe page and the editor, through Django's test client: the graph, the chart's empty
state and the gate banner on the page; adding, removing, reordering and editing stages, Validate
naming the stage and field, a launched recipe cloned rather than edited; text escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from r1studio.recipes.models import Recipe, RecipeStage, RecipeStatus, StageStatus
from r1studio.recipes.services import recipe_create
from r1studio.runs.forms import ConfigForm

pytestmark = pytest.mark.django_db
EVIL = '<script>alert("x")</script>'


def _stage(key: str, config: dict, *inputs: tuple[str, str], name: str = "") -> dict[str, Any]:
    return {
        "key": key,
        "name": name,
        "kind": config["kind"],
        "config": config,
        "inputs": [{"field": field, "stage": stage} for field, stage in inputs],
    }


@pytest.fixture
def recipe(researcher: Any, allowed_roots: list[Path]) -> Recipe:
    """A draft: R1-Zero GRPO → generate from its checkpoint → SFT of the base on that data."""
    root = allowed_roots[0]
    grpo = {
        "kind": "grpo",
        "model": {"path": f"{root}/base"},
        "data": {"source": f"{root}/t.jsonl"},
    }
    definition = {
        "name": "My recipe",
        "stages": [
            _stage("01-zero", grpo, name="R1-Zero"),
            _stage(
                "02-data",
                {"kind": "generate", "data": {"source": f"{root}/t.jsonl"}},
                ("model.path", "01-zero"),
                name="Candidates",
            ),
            _stage(
                "03-sft",
                {"kind": "sft", "model": {"path": f"{root}/base"}},
                ("data.source", "02-data"),
                name="SFT",
            ),
        ],
    }
    return recipe_create(user=researcher, definition=definition)


def _keys(recipe: Recipe) -> list[str]:
    return list(recipe.stages.order_by("order", "pk").values_list("key", flat=True))


def _form_post(client: Client, stage: RecipeStage, **changes: str) -> dict[str, str]:
    """What the stage page's form posts as the page shows it, with `changes`."""
    page = client.get(reverse("recipes:stage_edit", args=[stage.recipe_id, stage.key]))
    form: ConfigForm = page.context["form"]
    data = {"name": stage.name, "source": "form"}
    for name, field in form.fields_by_name().items():
        if field.widget == "checkbox":
            if field.value:
                data[name] = "on"
        else:
            data[name] = field.display
    for i, item in enumerate(stage.inputs):
        data[f"in-{i}-field"] = item["field"]
        data[f"in-{i}-source"] = item.get("stage") or "ref"
        data[f"in-{i}-ref"] = item.get("ref") or ""
    data.update(changes)
    return data


def test_it_adds_a_stage_at_the_end_and_opens_it(researcher_client: Client, recipe: Recipe) -> None:
    response = researcher_client.post(
        reverse("recipes:stage_add", args=[recipe.pk]), {"start": "kind:evaluate", "name": "Eval"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("recipes:stage_edit", args=[recipe.pk, "04-evaluate"])
    assert _keys(recipe) == ["01-zero", "02-data", "03-sft", "04-evaluate"]
    stage = recipe.stages.get(key="04-evaluate")
    assert stage.kind == "evaluate" and stage.name == "Eval"
    assert stage.config["kind"] == "evaluate" and "sampling" in stage.config  # its defaults
    page = researcher_client.get(response["Location"])
    assert page.status_code == 200
    assert b"Candidates" in page.content  # upstream stages offered as inputs


def test_it_removes_a_stage_and_validate_names_what_read_it(
    researcher_client: Client, recipe: Recipe
) -> None:
    response = researcher_client.post(reverse("recipes:stage_remove", args=[recipe.pk, "02-data"]))
    assert response.status_code == 302
    assert _keys(recipe) == ["01-zero", "03-sft"]

    page = researcher_client.get(reverse("recipes:edit", args=[recipe.pk]) + "?validate=1")
    assert page.status_code == 200
    errors = page.context["errors"]
    assert {(e["stage"], e["field"]) for e in errors} == {("03-sft", "data.source")}
    html = page.content.decode()
    assert 'data-error-stage="03-sft" data-error-field="data.source"' in html
    assert "no stage &#x27;02-data&#x27; in this recipe makes it" in html


def test_it_reorders_stages_up_and_down(researcher_client: Client, recipe: Recipe) -> None:
    move = reverse("recipes:stage_move", args=[recipe.pk, "03-sft"])
    researcher_client.post(move, {"direction": "up"})
    assert _keys(recipe) == ["01-zero", "03-sft", "02-data"]
    researcher_client.post(move, {"direction": "up"})
    researcher_client.post(move, {"direction": "up"})  # already first: stays
    assert _keys(recipe) == ["03-sft", "01-zero", "02-data"]
    researcher_client.post(reverse("recipes:stage_move", args=[recipe.pk, "01-zero"]),
                           {"direction": "down"})  # fmt: skip
    assert _keys(recipe) == ["03-sft", "02-data", "01-zero"]
    page = researcher_client.get(reverse("recipes:edit", args=[recipe.pk]))
    html = page.content.decode()
    assert html.index('id="stage-03-sft"') < html.index('id="stage-02-data"')


def test_it_saves_a_stage_config_and_its_inputs(researcher_client: Client, recipe: Recipe) -> None:
    stage = recipe.stages.get(key="03-sft")
    url = reverse("recipes:stage_edit", args=[recipe.pk, "03-sft"])
    data = _form_post(
        researcher_client, stage, **{"trainer.max_steps": "7", "name": "Cold-start SFT"}
    )
    data |= {"in-1-field": "model.path", "in-1-source": "01-zero"}  # an added input row
    response = researcher_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    stage.refresh_from_db()
    assert stage.name == "Cold-start SFT"
    assert stage.config["trainer"]["max_steps"] == 7
    assert {(i["field"], i["stage"], i["output"]) for i in stage.inputs} == {
        ("data.source", "02-data", "dataset"),
        ("model.path", "01-zero", "checkpoint"),
    }
    assert stage.config["model"]["path"] == ""  # the input fills it at launch


def test_a_stage_error_names_the_field_and_nothing_is_saved(
    researcher_client: Client, recipe: Recipe
) -> None:
    stage = recipe.stages.get(key="01-zero")
    before = dict(stage.config)
    url = reverse("recipes:stage_edit", args=[recipe.pk, "01-zero"])
    # GRPO's batch counts completions: 3 is not divisible by the 8 generations.
    data = _form_post(researcher_client, stage, **{"trainer.per_device_train_batch_size": "3"})
    response = researcher_client.post(url, data)
    assert response.status_code == 422
    locs = [e["loc"] for e in response.context["errors"]]
    assert any(loc.startswith("trainer.") for loc in locs), locs
    assert b"Not saved" in response.content
    stage.refresh_from_db()
    assert stage.config == before

    # A wrong kind of input is named at its field: an sft stage cannot train on a checkpoint.
    sft = recipe.stages.get(key="03-sft")
    data = _form_post(researcher_client, sft, **{"in-0-source": "01-zero"})
    response = researcher_client.post(
        reverse("recipes:stage_edit", args=[recipe.pk, "03-sft"]), data
    )
    assert response.status_code == 422
    assert [e["loc"] for e in response.context["errors"]] == ["data.source"]
    assert "makes a checkpoint, not a dataset" in response.content.decode()


def test_a_gate_is_switched_on_and_off(researcher_client: Client, recipe: Recipe) -> None:
    researcher_client.post(reverse("recipes:stage_add", args=[recipe.pk]),
                           {"start": "kind:gate", "key": "02b-gate"})  # fmt: skip
    url = reverse("recipes:stage_edit", args=[recipe.pk, "02b-gate"])
    post = {"name": "Review", "guidelines": "Be strict.", "limit": "50", "overlap": "2",
            "in-0-field": "data.source", "in-0-source": "02-data"}  # fmt: skip
    assert researcher_client.post(url, post).status_code == 302
    gate = recipe.stages.get(key="02b-gate")
    assert gate.gate_enabled is False  # the box was not ticked
    assert gate.config == {"guidelines": "Be strict.", "limit": 50, "overlap": 2}
    assert researcher_client.post(url, {**post, "gate_enabled": "1"}).status_code == 302
    gate.refresh_from_db()
    assert gate.gate_enabled is True
    page = researcher_client.get(reverse("recipes:edit", args=[recipe.pk]))
    assert b"gate on: people review" in page.content


def test_validate_says_when_the_recipe_is_valid(researcher_client: Client, recipe: Recipe) -> None:
    page = researcher_client.get(reverse("recipes:edit", args=[recipe.pk]) + "?validate=1")
    assert page.context["errors"] == []
    assert b"data-validation-ok" in page.content


def test_a_launched_recipe_is_cloned_not_edited(
    researcher_client: Client, recipe: Recipe, researcher: Any
) -> None:
    Recipe.objects.filter(pk=recipe.pk).update(status=RecipeStatus.FINISHED)
    response = researcher_client.get(reverse("recipes:edit", args=[recipe.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("recipes:detail", args=[recipe.pk])
    response = researcher_client.post(reverse("recipes:stage_remove", args=[recipe.pk, "02-data"]))
    assert recipe.stages.count() == 3  # refused

    response = researcher_client.post(reverse("recipes:clone", args=[recipe.pk]))
    copy = Recipe.objects.exclude(pk=recipe.pk).get()
    assert response["Location"] == reverse("recipes:edit", args=[copy.pk])
    assert copy.status == RecipeStatus.DRAFT and copy.owner == researcher
    assert copy.name == "Copy of My recipe"
    assert _keys(copy) == _keys(recipe)
    assert all(s.status == StageStatus.PENDING and s.run is None for s in copy.stages.all())


def test_another_researcher_cannot_edit(client: Client, recipe: Recipe, make_user: Any) -> None:
    client.force_login(make_user("researcher"))
    assert client.get(reverse("recipes:edit", args=[recipe.pk])).status_code == 404  # a draft
    Recipe.objects.filter(pk=recipe.pk).update(status=RecipeStatus.FAILED)
    assert client.get(reverse("recipes:edit", args=[recipe.pk])).status_code == 403
    url = reverse("recipes:stage_remove", args=[recipe.pk, "02-data"])
    assert client.post(url).status_code == 403
    assert recipe.stages.count() == 3


def test_model_and_user_text_is_escaped(researcher_client: Client, recipe: Recipe) -> None:
    Recipe.objects.filter(pk=recipe.pk).update(name=EVIL, description=EVIL)
    RecipeStage.objects.filter(recipe=recipe, key="02-data").update(name=EVIL, error=EVIL)
    for url in (
        reverse("recipes:edit", args=[recipe.pk]),
        reverse("recipes:stage_edit", args=[recipe.pk, "02-data"]),
        reverse("recipes:detail", args=[recipe.pk]),
    ):
        html = researcher_client.get(url).content.decode()
        assert EVIL not in html, url
        assert "&lt;script&gt;" in html, url


def test_the_page_draws_the_graph_with_an_empty_chart(
    researcher_client: Client, recipe: Recipe
) -> None:
    page = researcher_client.get(reverse("recipes:detail", args=[recipe.pk]))
    assert page.status_code == 200
    diagram = page.context["diagram"]
    assert [n.key for n in diagram.stage_nodes] == ["01-zero", "02-data", "03-sft"]
    types = sorted(n.type for n in diagram.nodes)
    # Three stages, two checkpoints (grpo, sft), one dataset (generate), one base model.
    assert types == ["checkpoint", "checkpoint", "dataset", "model", "stage", "stage", "stage"]
    # Each stage's own output, the two reads between stages, the base model read twice.
    assert len(diagram.edges) == 3 + 2 + 2
    html = page.content.decode()
    assert html.count('data-node-type="stage"') == 3
    assert 'data-node-status="pending" data-stage-key="02-data"' in html
    assert "data-chart-empty" in html and "No benchmark numbers yet" in html
    assert "hx-trigger" not in html  # a draft is not polled


def test_a_waiting_gate_links_its_queue_and_the_page_polls(
    researcher_client: Client, recipe: Recipe, researcher: Any
) -> None:
    from r1studio.curation.annotation.models import AnnotationQueue

    queue = AnnotationQueue.objects.create(name="Cold-start review", created_by=researcher)
    RecipeStage.objects.create(
        recipe=recipe, key="02b-gate", order=9, kind="gate", status=StageStatus.WAITING,
        gate_queue=queue, inputs=[{"field": "data.source", "stage": "02-data"}],
    )  # fmt: skip
    RecipeStage.objects.filter(recipe=recipe, key__in=["01-zero", "02-data"]).update(
        status=StageStatus.FINISHED
    )
    Recipe.objects.filter(pk=recipe.pk).update(status=RecipeStatus.WAITING)
    page = researcher_client.get(reverse("recipes:detail", args=[recipe.pk]))
    html = page.content.decode()
    queue_url = reverse("curation:queue", args=[queue.pk])
    assert "Waiting for annotation:" in html
    assert f'<a href="{queue_url}" data-gate-link>open the queue</a>' in html
    assert 'data-node-status="waiting" data-stage-key="02b-gate"' in html
    assert f'href="{queue_url}" class="rg-link"' in html  # the gate's node links the queue too
    assert 'hx-trigger="every 2s"' in html
    partial = researcher_client.get(
        reverse("recipes:detail", args=[recipe.pk]), headers={"HX-Request": "true"}
    )
    assert b'id="recipe-stages"' in partial.content and b"<html" not in partial.content


def test_the_chart_puts_pass_at_1_on_each_stage_along_the_recipe(
    researcher_client: Client, recipe: Recipe, researcher: Any, tmp_path: Path
) -> None:
    from r1studio.evals.models import EvalResult
    from r1studio.runs.models import Run

    runs = {}
    for key, kind in (("01-zero", "grpo"), ("02-data", "generate"), ("03-sft", "sft")):
        run_dir = tmp_path / key
        runs[key] = Run.objects.create(
            owner=researcher, name=key, kind=kind, status="finished", run_dir=str(run_dir)
        )
        RecipeStage.objects.filter(recipe=recipe, key=key).update(
            run=runs[key], status=StageStatus.FINISHED
        )
    EvalResult.objects.create(
        run=runs["01-zero"], step=10, benchmark="toy-heldout", pass_at_1=0.5, n_samples=4
    )
    evaluate = Run.objects.create(
        owner=researcher, name="eval", kind="evaluate", status="finished",
        config={"kind": "evaluate", "model": {"path": str(tmp_path / "03-sft" / "final")}},
    )  # fmt: skip
    RecipeStage.objects.create(
        recipe=recipe, key="04-eval", order=9, kind="evaluate", status=StageStatus.FINISHED,
        run=evaluate, inputs=[{"field": "model.path", "stage": "03-sft"}],
    )  # fmt: skip
    result = EvalResult.objects.create(
        run=evaluate, step=0, benchmark="toy-heldout", pass_at_1=0.9, n_samples=4
    )
    Recipe.objects.filter(pk=recipe.pk).update(status=RecipeStatus.FINISHED)
    page = researcher_client.get(reverse("recipes:detail", args=[recipe.pk]))
    chart = page.context["chart_data"]
    # The evaluate stage's number is the SFT checkpoint's: the x axis is the trained stages.
    assert chart == {
        "x": ["R1-Zero", "SFT"],
        "lines": [{"label": "toy-heldout", "values": [0.5, 0.9], "se": [None, None]}],
    }
    html = page.content.decode()
    assert 'id="recipe-pass-data"' in html and "data-chart-empty" not in html
    assert f'href="{reverse("evals:result", args=[result.pk])}">90.0</a>' in html
    # The evaluate stage's node links its result.
    assert f'<a href="{reverse("evals:result", args=[result.pk])}" class="rg-link">' in html
    # The chart's own partial, which HTMX polls (slower than the graph) while the recipe runs.
    part = researcher_client.get(
        reverse("recipes:detail", args=[recipe.pk]) + "?part=chart", headers={"HX-Request": "true"}
    ).content.decode()
    assert 'id="recipe-chart"' in part and 'id="recipe-pass-data"' in part
    assert "<html" not in part and "recipe-stages" not in part


def test_new_from_preset_opens_the_editor(researcher_client: Client, researcher: Any) -> None:
    page = researcher_client.get(reverse("recipes:list"))
    html = page.content.decode()
    for key in ("toy", "deepseek-r1", "r1-zero", "distillation"):
        assert f'data-new-preset="{key}"' in html
    response = researcher_client.post(
        reverse("recipes:new"), {"preset": "deepseek-r1", "edit": "1"}
    )
    recipe = Recipe.objects.get(owner=researcher)
    assert response["Location"] == reverse("recipes:edit", args=[recipe.pk])
    assert recipe.status == RecipeStatus.DRAFT and recipe.stages.count() == 16


def test_the_list_shows_status_progress_and_stages_done(
    researcher_client: Client, recipe: Recipe
) -> None:
    RecipeStage.objects.filter(recipe=recipe, key="01-zero").update(status=StageStatus.FINISHED)
    Recipe.objects.filter(pk=recipe.pk).update(status=RecipeStatus.RUNNING)
    html = researcher_client.get(reverse("recipes:list")).content.decode()
    assert "My recipe" in html and "1 / 3" in html
    assert f'aria-label="Progress of recipe #{recipe.pk}"' in html
    assert 'value="33"' in html


def test_a_gate_not_yet_reached_is_switched_from_the_recipe_page(
    researcher_client: Client, recipe: Recipe
) -> None:
    RecipeStage.objects.create(
        recipe=recipe, key="02b-gate", order=9, kind="gate", gate_enabled=False,
        inputs=[{"field": "data.source", "stage": "02-data"}],
    )  # fmt: skip
    Recipe.objects.filter(pk=recipe.pk).update(status=RecipeStatus.RUNNING)
    page = researcher_client.get(reverse("recipes:detail", args=[recipe.pk]))
    assert b'data-action="gate-on"' in page.content
    url = reverse("recipes:stage_gate", args=[recipe.pk, "02b-gate"])
    assert researcher_client.post(url, {"enabled": "1"}).status_code == 302
    assert recipe.stages.get(key="02b-gate").gate_enabled is True

    RecipeStage.objects.filter(recipe=recipe, key="02b-gate").update(status=StageStatus.WAITING)
    response = researcher_client.post(url, {"enabled": "0"}, follow=True)
    assert b"The gate was reached already." in response.content
    assert recipe.stages.get(key="02b-gate").gate_enabled is True
