"""The toy R1 recipe in Chromium: launched with one click from the recipes list (then cancelled),
and a short version of it made in the editor (the toy preset with everything after the
cold-start SFT removed), launched, and watched until its graph is all green — without a reload
(HTMX polling) — with R1-Zero's pass@1 on the chart.

Everything is real: the Celery worker consuming from Redis, the scheduler moving the recipe on
as each run ends, the pipeline subprocesses training the test-size toy models, and the curation
job registering the generated dataset. The short recipe keeps the test to a few minutes here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from r1studio.recipes.models import Recipe, RecipeStatus, StageStatus
from tests.browser.test_runs_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GREEN = "rgb(220, 245, 230)"  # .rg-status-finished / -skipped rect fill (css/recipes.css)
KEPT = ["01-r1-zero", "02-cold-start-data", "02-cold-start-gate", "03-cold-start-sft"]
REMOVED = ["04-reasoning-rl", "05-rejection-sampling", "06-sft", "07-distillation-data",
           "08-student-sft", "09-evaluate"]  # fmt: skip


def _stage_fills(page: Any) -> dict[str, str]:
    return page.evaluate(
        """() => Object.fromEntries(Array.from(
             document.querySelectorAll("g[data-node-type='stage']"),
             g => [g.dataset.stageKey, getComputedStyle(g.querySelector('rect')).fill]))"""
    )


def _one_click_launch_then_cancel(page: Any, researcher: Any) -> None:
    page.locator(".empty-state").filter(has_text="No recipe yet").wait_for()
    page.click("button[data-action='launch-demo']")
    page.wait_for_url(re.compile(r"/recipes/\d+/$"))
    demo = Recipe.objects.get(owner=researcher)
    assert demo.preset == "toy" and demo.status == RecipeStatus.RUNNING
    assert page.locator("g[data-node-type='stage']").count() == 10  # nine stages and the gate
    page.locator("g[data-stage-key='01-r1-zero'][data-node-status='running']").wait_for()
    page.click("button[data-action='cancel']")
    page.locator("[data-recipe-live][data-status='cancelled']").wait_for()
    assert page.locator("g[data-node-type='stage'][data-node-status='running']").count() == 0


def test_it_launches_the_toy_recipe_and_the_graph_turns_green(
    page: Any, live_server: Any, celery_worker: Any, researcher: Any, data_dir: Path,
    toy_dir: Path,
) -> None:  # fmt: skip
    (data_dir / "toy").symlink_to(toy_dir, target_is_directory=True)
    base = live_server.url
    page.on("dialog", lambda dialog: dialog.accept())
    violations: list[str] = []  # the graph, the chart and the editor hold to the CSP
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    sign_in(page, f"{base}/recipes/", researcher)
    _one_click_launch_then_cancel(page, researcher)

    # A short toy recipe, edited in the browser: R1-Zero → candidates → gate (off) → SFT.
    page.goto(f"{base}/recipes/")
    page.click("button[data-new-preset='toy']")
    page.wait_for_url(re.compile(r"/recipes/\d+/edit$"))
    recipe = Recipe.objects.filter(owner=researcher).order_by("-pk").first()
    for key in REMOVED:
        page.click(f"li[data-stage-key='{key}'] button[data-action='remove']")
        page.locator(f"li[data-stage-key='{key}']").wait_for(state="detached")
    assert (
        page.locator("li[data-stage-key]").evaluate_all(
            "items => items.map(li => li.dataset.stageKey)"
        )
        == KEPT
    )
    page.click("[data-action='validate']")
    page.locator("[data-validation-ok]").wait_for()

    page.goto(f"{base}/recipes/{recipe.pk}/")
    with page.expect_navigation():
        page.click("button[data-action='launch']")
    page.evaluate("window.__notReloaded = true")
    assert page.locator("g[data-node-type='stage']").count() == 4

    # A stage runs (blue), then turns green, while the page stays put.
    page.locator("g[data-stage-key='01-r1-zero'][data-node-status='running']").wait_for(
        timeout=120_000
    )
    page.locator("g[data-stage-key='01-r1-zero'][data-node-status='finished']").wait_for(
        timeout=240_000
    )
    assert _stage_fills(page)["01-r1-zero"] == GREEN
    assert _stage_fills(page)["03-cold-start-sft"] != GREEN

    # The whole recipe: every stage node green, the progress full, the polling stopped.
    page.locator("[data-recipe-live][data-status='finished']").wait_for(timeout=480_000)
    assert page.evaluate("window.__notReloaded") is True
    fills = _stage_fills(page)
    assert sorted(fills) == sorted(KEPT)
    assert set(fills.values()) == {GREEN}, fills
    assert page.locator("[data-recipe-done]").inner_text() == "4 of 4 stages done"
    assert page.locator("[data-recipe-live][hx-trigger]").count() == 0

    recipe.refresh_from_db()
    assert recipe.status == RecipeStatus.FINISHED
    assert {s.key: s.status for s in recipe.stages.all()} == {
        "01-r1-zero": StageStatus.FINISHED,
        "02-cold-start-data": StageStatus.FINISHED,
        "02-cold-start-gate": StageStatus.SKIPPED,  # switched off: the candidates pass on
        "03-cold-start-sft": StageStatus.FINISHED,
    }
    # Nodes link their run and the dataset version (the data's, and the gate passing it on).
    run_id = recipe.stages.get(key="01-r1-zero").run_id
    assert page.locator(f"a[href='/runs/{run_id}/'] g[data-stage-key='01-r1-zero']").count() == 1
    version = recipe.stages.get(key="02-cold-start-data").output_version
    link = f"/datasets/{version.dataset_id}/v{version.number}/"
    assert page.locator(f"a[href='{link}'] g[data-node-type='dataset']").count() == 2

    # The headline chart: R1-Zero's periodic eval is its checkpoint's pass@1.
    page.reload()
    page.locator("[data-pass-chart] .main-svg").first.wait_for()
    row = page.locator("[data-pass-table] tr").filter(has_text="01-r1-zero")
    assert re.search(r"\d+\.\d", row.inner_text())
    assert violations == []
