"""Traces and charts in Chromium: model output renders as text; charts grow live over SSE."""

from __future__ import annotations

from typing import Any

import pytest

from r1studio.metrics.live import publish
from r1studio.metrics.services import metrics_ingest
from r1studio.traces.models import Trace
from r1studio.traces.services import traces_ingest
from tests.conftest import TEST_PASSWORD
from tests.studio.metrics import conftest as metrics_fixtures

pytestmark = pytest.mark.browser

# Fixtures shared with the metrics tests (uvicorn in a thread, the run factory).
asgi_server = metrics_fixtures.asgi_server
make_run = metrics_fixtures.make_run

XSS = "<script>alert(1)</script>"


def sign_in(page: Any, url: str, user: Any) -> None:
    """Open `url`, sign in on the login page it redirects to, and land back on `url`."""
    page.goto(url)
    page.fill("#id_username", user.username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(url)


def test_it_renders_a_script_in_a_completion_as_text(
    page: Any, live_server: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher, name="xss")
    item = {
        "prompt": f"Add 2 and 3. {XSS}",
        "completion": f"<think>2+3=5 {XSS}</think> <answer>{XSS} 5</answer>",
        "reference": "5",
        "rewards": {"accuracy": 1.0},
        "reward": 1.0,
        "advantage": 0.5,
    }
    traces_ingest(run=run, events=[{"type": "samples", "step": 1, "items": [item]}])
    trace = Trace.objects.get(run=run)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    sign_in(page, f"{live_server.url}/traces/", researcher)
    page.click(f"a[href='/traces/{trace.pk}/'] >> nth=0")
    page.wait_for_selector("h1:has-text('Trace #')")

    think = page.locator(".seg-think .seg-body")
    answer = page.locator(".seg-answer .seg-body")
    assert think.inner_text() == f"2+3=5 {XSS}"
    assert answer.inner_text() == f"{XSS} 5"
    assert think.is_visible() and answer.is_visible()
    assert page.locator(".prompt-text").inner_text() == f"Add 2 and 3. {XSS}"
    assert page.locator("main script").count() == 0  # no element was created from the text
    assert dialogs == []


def test_it_extends_the_run_charts_live_without_a_reload(
    page: Any,
    asgi_server: str,
    researcher: Any,
    make_run: Any,  # noqa: F811
) -> None:
    run = make_run(researcher, name="live")
    events = [{"type": "metrics", "step": s, "values": {"reward": s / 10}} for s in range(1, 11)]
    metrics_ingest(run=run, events=events)

    sign_in(page, f"{asgi_server}/runs/{run.pk}/", researcher)
    reward = page.locator("[data-panel='reward'] [data-count]")
    reward.filter(has_text="10 of 10 points").wait_for()
    page.locator("[data-live-state]").filter(has_text="live").wait_for()
    page.evaluate("window.__notReloaded = true")

    events = [
        {"type": "metrics", "step": s, "values": {"reward": s / 10, "kl": 0.01 * s}}
        for s in (11, 12)
    ]
    points = metrics_ingest(run=run, events=events)
    publish(run.pk, {"run": run.pk, "status": "running", "step": 12, "metrics": points})

    reward.filter(has_text="12 of 12 points").wait_for()
    page.locator("[data-panel='kl'] [data-count]").filter(has_text="2 of 2 points").wait_for()
    xs = page.evaluate("document.querySelector(\"[data-panel='reward'] [data-plot]\").data[0].x")
    assert xs == list(range(1, 13))
    assert page.evaluate("window.__notReloaded") is True

    publish(run.pk, {"run": run.pk, "status": "finished", "step": 12, "metrics": {}})
    page.locator("[data-live-state]").filter(has_text="run finished").wait_for()


def test_it_overlays_runs_picked_on_the_compare_page(
    page: Any, live_server: Any, researcher: Any, make_run: Any
) -> None:
    baseline, ablation = (
        make_run(researcher, name="baseline"),
        make_run(researcher, name="ablation"),
    )
    for run, scale in ((baseline, 1.0), (ablation, 0.5)):
        events = [
            {"type": "metrics", "step": s, "values": {"reward": s * scale}} for s in range(20)
        ]
        metrics_ingest(run=run, events=events)

    sign_in(page, f"{live_server.url}/metrics/compare?runs={baseline.pk}&panel=reward", researcher)
    count = page.locator("[data-panel='reward'] [data-count]")
    count.filter(has_text="20 of 20 points").wait_for()

    page.check(f"[data-run-choice][value='{ablation.pk}']")
    page.click("button:has-text('Compare')")
    count.filter(has_text="40 of 40 points").wait_for()
    names = page.evaluate("document.querySelector('[data-plot]').data.map(t => t.name)")
    assert sorted(names) == [f"#{baseline.pk} baseline", f"#{ablation.pk} ablation"]

    page.locator("[data-smoothing]").fill("0.5")
    page.wait_for_function("document.querySelector('[data-plot]').data.length === 4")
    smoothed = page.evaluate("document.querySelector('[data-plot]').data[1].y")
    assert smoothed[0] == 0 and 0 < smoothed[-1] < 19
