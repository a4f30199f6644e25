"""The Benchmarks pages in Chromium: the chart draws the paper's reference lines, and the
leaderboard and comparison pages load without a Content-Security-Policy violation."""

from __future__ import annotations

from typing import Any

import pytest

from r1studio.runs.events import events_dispatch
from tests.browser.test_pages import sign_in
from tests.conftest import TEST_PASSWORD
from tests.studio.evals.conftest import eval_event

pytestmark = pytest.mark.browser


def test_the_benchmark_pages_draw_reference_lines_within_the_csp(
    page: Any, live_server: Any, researcher: Any
) -> None:
    from r1studio.evals.models import EvalResult
    from r1studio.runs.models import Run

    runs = [
        Run.objects.create(owner=researcher, name=name, kind="evaluate", status="finished")
        for name in ("<i>first</i>", "second")
    ]
    events_dispatch(run=runs[0], events=[eval_event(solved=[0])])
    events_dispatch(run=runs[1], events=[eval_event(solved=[1, 2])])
    a, b = (EvalResult.objects.get(run=run).pk for run in runs)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    base = live_server.url
    page.goto(f"{base}/")
    sign_in(page, base, researcher.username, TEST_PASSWORD)

    page.goto(f"{base}/benchmarks/")
    page.wait_for_selector("[data-benchmark-chart] .main-svg")
    labels = page.locator("[data-benchmark-chart] .annotation-text").all_text_contents()
    assert "DeepSeek-R1 79.8" in labels and len(labels) == 8
    page.goto(f"{base}/benchmarks/leaderboard/")
    page.wait_for_selector("[data-leaderboard]")
    assert page.locator("[data-reference]").count() == 8
    page.goto(f"{base}/benchmarks/compare/?a={a}&b={b}")
    page.wait_for_selector("[data-compare='only-b']")
    assert "<i>first</i>" in page.locator("body").inner_text()
    page.wait_for_load_state("networkidle")
    assert violations == [], "\n".join(violations)
