"""Trace pages as a new user meets them: a prompt followed over time after a short real run,
previous / next traces from the keyboard, and every page on a phone-sized screen."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from r1studio.traces.models import Trace
from r1studio.traces.services import traces_ingest
from tests.conftest import TEST_PASSWORD
from tests.studio.metrics.conftest import make_run  # noqa: F401 - fixture
from tests.studio.traces.conftest import sample

pytestmark = pytest.mark.browser

NAV = ["Runs", "Traces", "Datasets", "Annotate", "Benchmarks", "Workers"]
# The outermost elements that stick out of the viewport (not counting what scrolls inside a
# box of its own), for the failure message.
WIDEST = """(() => {
  const width = document.documentElement.clientWidth + 0.5;
  const scrolls = el => ['auto', 'scroll', 'hidden'].includes(getComputedStyle(el).overflowX);
  const out = [];
  const walk = el => {
    for (const child of el.children) {
      if (child.getBoundingClientRect().right > width) out.push(child);
      else if (!scrolls(child)) walk(child);
    }
  };
  walk(document.body);
  return out.slice(0, 5).map(el => el.tagName + '.' + el.className);
})()"""


def sign_in(page: Any, url: str, user: Any) -> None:
    """Open `url`, sign in on the login page it redirects to, and land back on `url`."""
    page.goto(url)
    page.fill("#id_username", user.username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(url)


def train_toy_grpo(toy_dir: Path, run_dir: Path) -> tuple[dict, list[dict]]:
    """Four GRPO steps on the toy model, in-process (a few seconds); its config and events."""
    import pipeline  # noqa: F401  (thread settings before torch loads)
    from tests.pipeline.conftest import read_events, run_stage_dict

    config = yaml.safe_load((toy_dir / "configs" / "grpo.yaml").read_text())
    config["trainer"].update(max_steps=4, per_device_train_batch_size=16, logging_steps=1)
    config.update(log_samples_every=1, log_samples_count=8)
    config["eval"].update(every_steps=2, limit=4)
    config["output"].update(save_steps=100, save_final=False)
    assert run_stage_dict(config, run_dir) == 0
    return config, read_events(run_dir)


def test_it_follows_a_probe_prompt_over_time_after_a_few_training_steps(
    page: Any,
    live_server: Any,
    researcher: Any,
    make_run: Any,  # noqa: F811
    toy_dir: Path,
    tmp_path: Path,
) -> None:
    config, events = train_toy_grpo(toy_dir, tmp_path / "run")
    run = make_run(researcher, name="short r1-zero", status="finished", config=config)
    traces_ingest(run=run, events=[e for e in events if e["type"] in ("samples", "eval")])

    # From a training sample of the browser: it was sampled at one step only...
    sign_in(page, f"{live_server.url}/traces/?run={run.pk}&source=train", researcher)
    page.locator("table.trace-table a[href^='/traces/']").first.click()
    page.click("[data-over-time-link]")
    page.locator("h1:has-text('Prompt over time')").wait_for()
    hint = page.locator("[data-probe-hint]")
    assert "Only one step of this prompt" in hint.inner_text()

    # ...and the probe prompts it points at were answered before training and at every step.
    hint.locator("a").first.click()
    page.locator("h1:has-text('Prompt over time')").wait_for()
    steps = page.locator("table.over-time-table tbody tr td:first-child").all_inner_texts()
    assert steps == ["0", "1", "2", "3", "4"]
    prompt = page.locator(".prompt-msg.prompt-user .prompt-text").inner_text()
    assert re.fullmatch(r"What is \d+\+\d+\?", prompt)  # the question, no <|user|> tokens
    assert page.locator("[data-testid='raw-prompt']").is_hidden()
    page.click("summary:has-text('Raw prompt')")
    assert page.locator("[data-testid='raw-prompt']").inner_text().startswith("<|user|>What is")
    page.wait_for_function("document.querySelector('#over-time-chart .main-svg') !== null")

    # Evaluation problems come back at every evaluation, and have their over-time view too.
    evaluated = Trace.objects.filter(run=run, source="eval").first()
    page.goto(f"{live_server.url}/traces/{evaluated.pk}/")
    page.click("[data-over-time-link]")
    steps = page.locator("table.over-time-table tbody tr td:first-child").all_inner_texts()
    assert steps == ["2", "4"]


def test_it_steps_through_the_filtered_traces_with_the_keyboard(
    page: Any,
    live_server: Any,
    researcher: Any,
    make_run: Any,  # noqa: F811
) -> None:
    run = make_run(researcher, config={"rewards": [{"name": "accuracy"}, {"name": "format"}]})
    for step in range(1, 7):
        traces_ingest(
            run=run,
            events=[{"type": "samples", "step": step, "items": [sample(accuracy=step % 2)]}],
        )
    wrong = [t.pk for t in Trace.objects.filter(run=run, correct=False).order_by("-step")]

    sign_in(page, f"{live_server.url}/traces/", researcher)
    page.select_option("#id_correct", "no")  # the filter applies itself (HTMX)
    page.wait_for_url(re.compile(r"correct=no"))
    page.wait_for_function("!document.querySelector('table.trace-table .badge-ok')")
    page.locator("table.trace-table a[href^='/traces/']").first.click()
    page.locator(f"h1:has-text('Trace #{wrong[0]}')").wait_for()

    for key, expected in (("j", 1), ("ArrowRight", 2), ("k", 1), ("ArrowLeft", 0)):
        page.wait_for_load_state()  # the shortcuts come with the page's deferred script
        page.keyboard.press(key)
        page.locator(f"h1:has-text('Trace #{wrong[expected]}')").wait_for()
        assert "correct=no" in page.url  # still within the filter
    page.wait_for_load_state()
    page.keyboard.press("k")  # the first of the list has no previous trace: nothing happens
    page.wait_for_timeout(300)
    assert page.locator("h1").inner_text() == f"Trace #{wrong[0]}"


def test_it_fits_a_phone_screen_behind_a_menu(
    page: Any,
    live_server: Any,
    studio_admin: Any,
    make_run: Any,  # noqa: F811
) -> None:
    run = make_run(studio_admin, name="a run with a long name " * 3)
    long = "What is 61+69? " + "with many words " * 40
    items = [sample(prompt=f"<|user|>{long}<|end|><|assistant|>", completion="x" * 600)] * 2
    traces_ingest(run=run, events=[{"type": "samples", "step": 1, "items": items}])
    trace = Trace.objects.filter(run=run).first()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, f"{live_server.url}/runs/", studio_admin)

    def assert_fits() -> None:
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], f"{page.url} overflows {widths}: {page.evaluate(WIDEST)}"

    nav = page.locator("nav.nav")
    assert nav.is_hidden()  # folded away until the menu is opened
    for label in NAV:
        page.click("[data-nav-toggle]")
        link = nav.locator(f"a:has-text('{label}')")
        box = link.bounding_box()
        assert link.is_visible() and box["x"] >= 0 and box["x"] + box["width"] <= 390, label
        link.click()
        page.wait_for_selector(f"h1:has-text('{label}')")
        assert_fits()
    page.click("[data-nav-toggle]")
    assert page.locator(".user-menu button:has-text('Log out')").is_visible()

    for path in (
        f"/traces/?run={run.pk}",
        f"/traces/{trace.pk}/",
        f"/traces/runs/{run.pk}/steps/1/prompts/{trace.prompt_hash}/",
        f"/traces/runs/{run.pk}/prompts/{trace.prompt_hash}/",
        f"/runs/{run.pk}/",
    ):
        page.goto(live_server.url + path)
        page.wait_for_selector("h1")
        assert_fits()
    # The wide trace table scrolls inside its own box instead of widening the page.
    page.goto(f"{live_server.url}/traces/?run={run.pk}")
    wrap = page.locator(".table-wrap").first
    assert wrap.evaluate("el => el.scrollWidth > el.clientWidth")
