"""A curated version's funnel in Chromium: the Plotly chart drawn from the page's JSON data
island under the CSP, and a step's name leading to the rows it dropped."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from r1studio.curation.services import dataset_create, version_write
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


def _row(i: int) -> dict:
    return {"problem": f"What is {i} + {i}?", "think": f"{i} and {i}", "answer": str(2 * i)}


def test_a_curated_version_draws_its_funnel(
    page: Any, live_server: Any, researcher: Any, data_dir: Any
):
    dataset = dataset_create(user=researcher, name="reasoning", kind="reasoning")
    source = version_write(
        dataset=dataset,
        table=pa.Table.from_pylist([_row(i) for i in range(10)]),
        user=researcher,
        provenance_type="import",
        provenance={"file": "x.jsonl"},
    )
    dropped = [
        {**_row(i), "reason": "exact_dedup", "detail": "exact duplicate of row 0"} for i in (8, 9)
    ]
    dropped += [{**_row(7), "reason": "verify", "detail": "answer '14' is not the reference '15'"}]
    child = version_write(
        dataset=dataset,
        table=pa.Table.from_pylist([_row(i) for i in range(7)]),
        user=researcher,
        provenance_type="curation",
        provenance={
            "job": None,
            "operations": [{"op": "verify"}, {"op": "exact_dedup"}],
            "source": source.ref,
        },
        parent=source,
        funnel=[
            {"step": "verify", "op": "verify", "rows_in": 10, "rows_out": 9, "dropped": 1},
            {"step": "exact_dedup", "op": "exact_dedup", "rows_in": 9, "rows_out": 7, "dropped": 2},
        ],
        dropped=pa.Table.from_pylist(dropped),
    )
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    url = f"{live_server.url}/datasets/{dataset.pk}/v{child.number}/"

    page.goto(url)
    page.fill("#id_username", researcher.username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(url)
    page.wait_for_selector(".curation-funnel[data-ready] .main-svg")

    assert page.locator(".curation-funnel .trace.bars").count() == 2  # kept and dropped
    ticks = page.locator(".curation-funnel .ytick text")
    top = {ticks.nth(i).text_content(): ticks.nth(i).bounding_box()["y"] for i in range(3)}
    assert sorted(top, key=top.get) == ["input", "verify", "exact_dedup"]  # read top down
    assert violations == []

    page.click(".funnel-table a:has-text('exact_dedup')")
    page.wait_for_url("**/rows/?dropped=1&col_reason=exact_dedup")
