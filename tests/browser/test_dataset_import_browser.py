"""A file imported in Chromium: uploaded, its columns mapped, the job followed over HTMX by a
real Celery worker until its version, curated (the funnel and the dropped rows opened), then
downloaded; no CSP violation on the way."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from r1studio.curation.models import DatasetJob, JobStatus
from r1studio.curation.services import dataset_create
from tests.browser.test_datasets_browser import sign_in, watch
from tests.studio.curation.datafiles import reasoning_rows, write_jsonl

pytestmark = pytest.mark.browser


@pytest.mark.django_db(transaction=True)
def test_a_file_is_uploaded_mapped_imported_curated_and_downloaded(
    page: Any, live_server: Any, celery_worker: Any, researcher: Any, data_dir: Path, tmp_path: Path
) -> None:
    dataset = dataset_create(user=researcher, name="cold-start", kind="cold-start")
    rows = reasoning_rows(12)
    for row in rows:
        row["question"] = row.pop("problem")
    rows += rows[3:5]  # two repeats, for the curation to drop
    source = write_jsonl(tmp_path / "cold.jsonl", rows)
    violations, dialogs = watch(page)

    sign_in(page, f"{live_server.url}/datasets/{dataset.pk}/", researcher)
    page.click("[data-import-link]")
    page.set_input_files("input[name='file']", str(source))
    page.click("button:has-text('Upload and preview')")

    page.wait_for_selector("[data-preview] th[data-column='question']")
    assert "What is 3 + 3?" in page.inner_text("[data-preview]")
    assert page.input_value("select[name='map_problem']") == "question"  # suggested
    page.select_option("select[name='map_reference']", "answer")
    page.uncheck("input[name='keep_other']")
    page.click("button:has-text('Import')")

    page.wait_for_url(re.compile(rf"/datasets/{dataset.pk}/jobs/\d+/$"))
    link = page.locator("[data-job] a[data-dataset-version]")  # swapped in by the polling
    link.wait_for(timeout=60_000)
    job = DatasetJob.objects.get(dataset=dataset)
    assert job.status == JobStatus.FINISHED, job.error
    assert link.inner_text() == "dataset:cold-start@1"
    link.click()

    page.wait_for_url(f"{live_server.url}/datasets/{dataset.pk}/v1/")
    assert page.inner_text("[data-rows]") == "14"
    columns = page.inner_text(".column-list")
    assert "difficulty" not in columns and "messages" in columns  # others not kept

    page.click("[data-curate]")
    page.check("input[name='exact_dedup']")
    page.fill("input[name='validation_n']", "2")
    page.click("button:has-text('Curate into a new version')")
    page.wait_for_url(re.compile(rf"/datasets/{dataset.pk}/jobs/\d+/$"))
    link = page.locator("[data-job] a[data-dataset-version]")
    link.wait_for(timeout=60_000)
    assert link.inner_text() == "dataset:cold-start@2"
    link.click()

    page.wait_for_url(f"{live_server.url}/datasets/{dataset.pk}/v2/")
    assert page.inner_text("[data-rows]") == "12"  # the two repeated rows dropped
    funnel = page.locator("[data-funnel-step='exact_dedup']")
    assert "14" in funnel.inner_text() and "12" in funnel.inner_text()
    page.click("[data-funnel-step='exact_dedup'] a")
    page.wait_for_url(re.compile(r"/v2/rows/\?dropped=1"))
    page.wait_for_selector("[data-row-count]:has-text('2')")

    page.goto(f"{live_server.url}/datasets/{dataset.pk}/v2/")
    with page.expect_download() as download:
        page.click("[data-export='jsonl']")
    assert download.value.suggested_filename.endswith(".jsonl")
    assert dialogs == [] and violations == []
