"""The Content-Security-Policy holds in Chromium: no page logs a CSP violation.

The policy (settings.CONTENT_SECURITY_POLICY) allows no inline script, inline style or eval;
this visits every main page, charts drawn, and fails on any "Content Security Policy" message
the browser prints to the console.
"""

from __future__ import annotations

from typing import Any

import pytest

from r1studio.runs.events import events_dispatch
from tests.browser.test_pages import sign_in
from tests.conftest import TEST_PASSWORD
from tests.studio.traces.conftest import sample

pytestmark = pytest.mark.browser


@pytest.fixture
def finished_run(researcher: Any) -> Any:
    """A finished GRPO run with reward curves, sampled traces and an eval result."""
    from r1studio.runs.models import Run
    from r1studio.traces.services import traces_ingest

    run = Run.objects.create(
        owner=researcher,
        name="csp run",
        kind="grpo",
        status="finished",
        step=3,
        total_steps=3,
        progress=1.0,
    )
    events: list[dict] = [
        {"type": "metrics", "step": step, "values": {"reward": step / 3, "loss": 1 / step}}
        for step in (1, 2, 3)
    ]
    events += [
        {"type": "samples", "step": step, "items": [sample(), sample(accuracy=0.0)]}
        for step in (1, 2, 3)
    ]
    events.append(
        {
            "type": "eval",
            "step": 3,
            "benchmark": "gsm8k",
            "metrics": {"pass@1": 0.5},
            "n_samples": 1,
            "items": [
                {
                    "problem": "1+1?",
                    "reference": "2",
                    "correct": [True],
                    "completions": ["<think>1+1=2</think><answer>2</answer>"],
                }
            ],
        }
    )
    events_dispatch(run=run, events=events)
    traces_ingest(run=run, events=events)
    return run


def test_no_page_breaks_the_content_security_policy(
    page: Any, live_server: Any, researcher: Any, finished_run: Any
) -> None:
    from r1studio.evals.models import EvalResult
    from r1studio.traces.models import Trace

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
    page.wait_for_selector("h1:has-text('Welcome')")

    trace = Trace.objects.filter(run=finished_run, source="train").first()
    result = EvalResult.objects.get(run=finished_run)
    run_id = finished_run.pk
    pages = {
        "/": "h1",
        "/runs/": "table.run-table",
        "/runs/?status=finished": "table.run-table",
        "/runs/new?preset=toy-grpo": "form",
        f"/runs/{run_id}/": "[data-panel='reward'] .main-svg",  # Plotly drew the chart
        "/traces/": "h1",
        f"/traces/{trace.pk}/": "h1",
        f"/traces/runs/{run_id}/steps/{trace.step}/prompts/{trace.prompt_hash}/": "h1",
        f"/traces/runs/{run_id}/prompts/{trace.prompt_hash}/": ".main-svg",
        f"/metrics/compare?runs={run_id}": ".main-svg",
        "/benchmarks/": "h1",
        f"/benchmarks/{result.pk}/": "h1",
        "/workers/": "h1",
        "/datasets/": "h1",
        "/annotate/": "h1",
        "/api/tokens/": "h1",
    }
    for path, ready in pages.items():
        page.goto(f"{base}{path}")
        page.wait_for_selector(ready)
        page.wait_for_load_state("networkidle")

    # The runs list's filters submit on change through runs.js (no inline onchange).
    page.goto(f"{base}/runs/")
    page.select_option("select[name='status']", "finished")
    page.wait_for_url(f"{base}/runs/?q=&status=finished&kind=")
    assert violations == [], "\n".join(violations)
