"""Charts as a person sees them in Chromium: held-out pass@1 over steps on a run page, a generate
run's summary, pass@1 over checkpoints on the Benchmarks page, the log toggle and the legend."""

from __future__ import annotations

from typing import Any

import pytest

from r1studio.runs.events import events_dispatch
from r1studio.runs.models import Checkpoint
from tests.conftest import TEST_PASSWORD
from tests.studio.metrics import conftest as metrics_fixtures

pytestmark = pytest.mark.browser

make_run = metrics_fixtures.make_run

PLOT = "document.querySelector(\"[data-panel='{}'] [data-plot]\")"


def sign_in(page: Any, url: str, user: Any) -> None:
    """Open `url`, sign in on the login page it redirects to, and land back on `url`."""
    page.goto(url)
    page.fill("#id_username", user.username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(url)


def eval_event(step: int, pass_at_1: float) -> dict:
    return {
        "type": "eval",
        "step": step,
        "benchmark": "toy-heldout",
        "metrics": {"pass@1": pass_at_1, "think_first": 0.5},
        "n_samples": 1,
    }


def test_it_charts_held_out_pass_at_1_over_the_steps_of_an_rl_run(
    page: Any, live_server: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher, name="r1-zero", status="finished")
    events = [
        {"type": "metrics", "step": s, "values": {"reward": s / 20, "think_first": s / 20}}
        for s in range(1, 21)
    ]
    events += [eval_event(s, p) for s, p in ((5, 0.1), (10, 0.25), (15, 0.4), (20, 0.5))]
    events_dispatch(run=run, events=events)

    sign_in(page, f"{live_server.url}/runs/{run.pk}/", researcher)

    panel = page.locator("[data-panel='eval']")
    panel.locator("[data-count]").filter(has_text="4 of 4 points").wait_for()
    assert panel.locator(".panel-title").inner_text() == "Benchmark pass@1"
    trace = page.evaluate(f"{PLOT.format('eval')}.data[0]")
    assert trace["name"] == "eval/toy-heldout/pass@1"
    assert (trace["x"], trace["y"]) == ([5, 10, 15, 20], [0.1, 0.25, 0.4, 0.5])
    assert trace["mode"] == "lines+markers"  # sparse eval points stay visible
    layout = page.evaluate(f"{PLOT.format('eval')}.layout")
    assert layout["yaxis"]["title"]["text"] == "pass@1"
    assert layout["xaxis"]["title"]["text"] == "step"
    # think_first, in training and on the benchmark, has a panel of its own
    page.locator("[data-panel='think_first'] [data-count]").filter(
        has_text="24 of 24 points"
    ).wait_for()
    assert page.locator(".other-metrics").count() == 0  # nothing left as a bare name

    # The legend sits above the plot, clear of the x-axis title.
    legend = page.evaluate(f"{PLOT.format('think_first')}.layout.legend")
    assert legend["y"] >= 1 and legend["yanchor"] == "bottom"
    # No Plotly cloud buttons in an offline tool.
    page.hover("[data-panel='eval'] [data-plot]")
    assert page.locator(".modebar-btn[data-title*='Chart Studio']").count() == 0
    assert page.locator("a.modebar-btn[href*='plotly.com'], .js-plot-link-container").count() == 0

    # The log toggle switches the y axis of that panel only.
    panel.locator("[data-log-y]").check()
    page.wait_for_function(f"{PLOT.format('eval')}.layout.yaxis.type === 'log'")
    assert page.evaluate(f"{PLOT.format('reward')}.layout.yaxis.type") == "linear"

    # Raw and smoothed lines have names of their own in the hover.
    page.locator("[data-smoothing]").fill("0.5")
    page.wait_for_function(f"{PLOT.format('reward')}.data.length === 2")
    names = page.evaluate(f"{PLOT.format('reward')}.data.map(t => t.name)")
    assert names == ["reward", "reward (smoothed)"]


def test_it_summarises_a_finished_generate_run(
    page: Any, live_server: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher, name="rejection sampling", kind="generate", status="finished")
    counts = {
        "prompts": 32, "samples": 128, "dropped/decontaminate": 0, "dropped/keep_correct": 80,
        "dropped/dedup": 16, "kept": 32, "keep_rate": 0.25, "verifiers/accuracy/mean": 0.375,
    }  # fmt: skip
    events_dispatch(run=run, events=[{"type": "metrics", "step": 0, "values": counts}])

    sign_in(page, f"{live_server.url}/runs/{run.pk}/", researcher)

    panel = page.locator("[data-panel='generate']")
    panel.wait_for()
    assert page.locator("h2:has-text('No metrics yet')").is_hidden()
    assert "keep rate 25.0%" in panel.locator("figcaption").inner_text()
    page.wait_for_function(f"{PLOT.format('generate')}.data && {PLOT.format('generate')}.data[0]")
    bars = page.evaluate(f"{PLOT.format('generate')}.data[0]")
    assert bars["type"] == "bar"
    assert bars["x"] == [
        "prompts", "dropped: decontaminate", "samples", "dropped: keep_correct",
        "dropped: dedup", "kept",
    ]  # fmt: skip
    assert bars["y"] == [32, 0, 128, 80, 16, 32]
    assert panel.locator(".barlayer .point").count() == 6  # drawn, not just data
    verifiers = page.evaluate(f"{PLOT.format('verifiers')}.data[0]")
    assert (verifiers["x"], verifiers["y"]) == (["accuracy"], [0.375])
    assert "Also logged" not in page.locator("main").inner_text()


def test_it_charts_pass_at_1_over_checkpoints_on_the_benchmarks_page(
    page: Any, live_server: Any, researcher: Any, make_run: Any
) -> None:
    trained = make_run(researcher, name="r1-zero", status="finished", run_dir="/d/runs/3", step=20)
    Checkpoint.objects.create(run=trained, step=10, path="/d/runs/3/checkpoint-10")
    events_dispatch(run=trained, events=[eval_event(10, 0.25), eval_event(20, 0.5)])
    evaluation = make_run(
        researcher, name="eval final", kind="evaluate", status="finished",
        config={"model": {"path": "/d/runs/3/final"}},
    )  # fmt: skip
    events_dispatch(run=evaluation, events=[eval_event(0, 0.55)])

    sign_in(page, f"{live_server.url}/benchmarks/", researcher)

    page.wait_for_selector("h2:has-text('toy-heldout')")
    assert page.locator("section.card h2").count() == 1  # one name for the held-out set
    plot = "document.querySelector('[data-benchmark-chart] [data-plot]')"
    page.wait_for_function(f"{plot}.data && {plot}.data.length === 1")
    line = page.evaluate(f"{plot}.data[0]")
    assert line["name"] == f"#{trained.pk} r1-zero"
    assert (line["x"], line["y"]) == ([10, 20, 20], [0.25, 0.5, 0.55])
    row = page.locator("tr", has_text="eval final")
    assert "/d/runs/3/final" in row.inner_text() and "step 20" in row.inner_text()
    row.locator(f"[data-model-run='{trained.pk}']").click()
    page.wait_for_url(f"{live_server.url}/runs/{trained.pk}/")
