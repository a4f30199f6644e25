"""Dataset pages in Chromium: histograms drawn, rows filtered over HTMX, a row's model output
as text, and traces added to a dataset from the trace browser; no CSP violation on the way."""

from __future__ import annotations

from typing import Any

import pytest

from r1studio.curation.models import DatasetVersion
from r1studio.runs.models import Run
from r1studio.traces.services import traces_ingest
from tests.conftest import TEST_PASSWORD
from tests.studio.curation.browse_helpers import XSS, known_rows, make_version
from tests.studio.traces.conftest import sample

pytestmark = pytest.mark.browser


def sign_in(page: Any, url: str, user: Any) -> None:
    page.goto(url)
    page.fill("#id_username", user.username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(url)


def watch(page: Any) -> tuple[list[str], list[str]]:
    """CSP violations printed to the console, and any dialog a script opened."""
    violations: list[str] = []
    dialogs: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return violations, dialogs


def test_a_version_page_draws_its_histograms_and_rows_stay_text(
    page: Any, live_server: Any, researcher: Any, data_dir: Any
) -> None:
    rows = known_rows(120)
    rows[5] = {**rows[5], "think": f"I think {XSS} here", "answer": XSS}
    version = make_version(researcher, rows)
    violations, dialogs = watch(page)
    base = f"{live_server.url}/datasets/{version.dataset_id}/v{version.number}/"

    sign_in(page, base, researcher)
    page.wait_for_selector("[data-histogram='0'][data-drawn='true'] .main-svg")
    assert page.locator("[data-histogram]").count() == 3
    assert "gsm8k" in page.locator("[data-stat='sources']").inner_text()

    page.click("a:has-text('Browse the rows')")
    page.wait_for_selector("[data-row-count]:has-text('of 120')")
    page.select_option("select[name='col_source']", "math")  # HTMX swaps the results in
    page.wait_for_selector("[data-row-count]:has-text('of 40 passing the filters')")
    assert "col_source=math" in page.url
    page.fill("input[name='q']", "needle")
    page.press("input[name='q']", "Enter")
    page.wait_for_selector("[data-row-count]:has-text('of 2 passing')")  # rows 7 and 70

    page.goto(f"{base}rows/5/")
    think = page.locator(".seg-think .seg-body")
    answer = page.locator(".seg-answer .seg-body")
    assert think.inner_text() == f"I think {XSS} here" and answer.inner_text() == XSS
    page.keyboard.press("j")
    page.wait_for_url(f"{base}rows/6/")
    assert dialogs == [] and violations == []


def test_traces_go_from_the_trace_browser_into_a_dataset(
    page: Any, live_server: Any, researcher: Any, data_dir: Any
) -> None:
    run = Run.objects.create(owner=researcher, name="r1-zero", kind="grpo", status="finished")
    items = [
        sample(f"What is {i}+{i}?", f"<think>{i}+{i}</think><answer>{2 * i}</answer>")
        for i in range(3)
    ]
    traces_ingest(run=run, events=[{"type": "samples", "step": 1, "items": items}])
    violations, _ = watch(page)

    sign_in(page, f"{live_server.url}/traces/?run={run.pk}", researcher)
    page.click("[data-add-to-dataset] summary")
    page.fill("[data-add-to-dataset] input[name='dataset']", "cold-start")
    page.select_option("[data-add-to-dataset] select[name='kind']", "cold-start")
    page.click("[data-action='add-to-dataset']")
    page.wait_for_selector("[data-provenance='traces']")

    version = DatasetVersion.objects.get(dataset__name="cold-start")
    assert version.rows == 3 and version.provenance["run_ids"] == [run.pk]
    assert "3 traces written as cold-start@1" in page.inner_text(".messages")
    assert page.locator(f"[data-provenance] a[href='/runs/{run.pk}/']").count() == 1
    assert violations == []
