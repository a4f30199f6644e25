"""The dataset pages: list and create, a version, its rows and one row, a diff, delete, and
adding the trace browser's selection to a dataset."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from r1studio.curation import from_traces
from r1studio.curation.models import Dataset, DatasetJob, DatasetUse, DatasetVersion
from r1studio.curation.selectors import version_rows
from r1studio.runs.models import Run
from r1studio.traces.models import Trace
from r1studio.traces.services import traces_ingest
from tests.studio.curation.browse_helpers import XSS, known_rows, make_version
from tests.studio.traces.conftest import sample

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(researcher, data_dir):
    return make_version(researcher)


def version_url(version, name="curation:version", *extra):
    return reverse(name, args=[version.dataset_id, version.number, *extra])


def test_it_lists_datasets_with_their_versions(researcher_client, version):
    make_version(version.created_by, known_rows(10), dataset=version.dataset, parent=version)

    page = researcher_client.get(reverse("curation:datasets")).content.decode()

    assert 'data-dataset="reasoning"' in page and "reasoning</span>" in page  # name, kind
    assert version.created_by.username in page
    assert f'href="{version_url(version)}"' in page and ">v2</a>" in page
    assert "No datasets yet" not in page


def test_it_explains_datasets_when_there_are_none(researcher_client):
    page = researcher_client.get(reverse("curation:datasets")).content.decode()
    assert "No datasets yet" in page and reverse("traces:list") in page


def test_it_creates_a_dataset_and_says_what_is_wrong_with_a_bad_name(researcher_client, researcher):
    response = researcher_client.post(
        reverse("curation:dataset_new"),
        {"name": "cold-start", "kind": "cold-start", "description": "R1 stage 2"},
    )
    dataset = Dataset.objects.get(name="cold-start")
    assert response.status_code == 302 and response["Location"] == reverse(
        "curation:dataset", args=[dataset.pk]
    )
    assert (dataset.kind, dataset.owner, dataset.description) == (
        "cold-start",
        researcher,
        "R1 stage 2",
    )

    bad = researcher_client.post(
        reverse("curation:dataset_new"), {"name": "no spaces", "kind": "other"}
    )
    twice = researcher_client.post(
        reverse("curation:dataset_new"), {"name": "cold-start", "kind": "other"}
    )
    assert bad.status_code == 400 and "Letters, digits" in bad.content.decode()
    assert twice.status_code == 400 and "exists already" in twice.content.decode()
    assert Dataset.objects.count() == 1


def test_annotators_see_no_dataset_page(annotator_client, version):
    for url in (
        reverse("curation:datasets"),
        reverse("curation:dataset", args=[version.dataset_id]),
        version_url(version),
        version_url(version, "curation:rows"),
        version_url(version, "curation:row", 0),
    ):
        assert annotator_client.get(url).status_code == 403, url
    assert annotator_client.post(reverse("curation:dataset_new"), {"name": "x"}).status_code == 403
    assert annotator_client.post(version_url(version, "curation:version_delete")).status_code == 403


def test_the_version_page_shows_facts_stats_and_provenance(researcher_client, version):
    response = researcher_client.get(version_url(version))
    page = response.content.decode()

    assert response.status_code == 200
    assert version.sha256 in page and "dataset:reasoning@1" in page
    assert "data-rows>300<" in page
    island = page.split('id="length-histograms" type="application/json">')[1].split("</script>")[0]
    assert [h["column"] for h in json.loads(island)] == ["think", "problem", "answer"]
    assert 'id="length-histograms"' in page and "vendor/plotly.min.js" in page
    assert 'data-stat="sources"' in page and "gsm8k" in page and "aime" in page
    assert "data-import-file>rows.jsonl<" in page and "<code>question</code>" in page
    assert "Problem 0: what is 0 + 0?" in page  # the first rows
    for fmt in ("jsonl", "parquet", "hf"):
        assert f'/export?format={fmt}" data-export="{fmt}"' in page
    link = re.search(r'href="([^"]+\?format=parquet)"', page).group(1)
    download = researcher_client.get(link)
    assert download.status_code == 200 and b"".join(download.streaming_content)[:4] == b"PAR1"


def test_the_version_page_links_its_run_its_parent_and_the_runs_that_used_it(
    researcher_client, researcher, version
):
    run = Run.objects.create(owner=researcher, name="rs", kind="generate", status="finished")
    child = make_version(
        researcher,
        known_rows(5),
        dataset=version.dataset,
        parent=version,
        provenance_type="run",
        provenance={"run": run.pk, "run_name": "rs", "step": 40},
        source_run=run,
    )
    trainer = Run.objects.create(owner=researcher, name="sft", kind="sft", status="finished")
    DatasetUse.objects.create(version=child, run=trainer, sha256=child.sha256)

    page = researcher_client.get(version_url(child)).content.decode()

    assert f'href="{reverse("runs:detail", args=[run.pk])}" data-run-link' in page
    assert f'href="{version_url(version)}" data-parent-link' in page
    assert f'href="{reverse("runs:detail", args=[trainer.pk])}"' in page
    assert "It cannot be deleted: runs used it." in page
    assert "<dt>step</dt>" in page


def test_model_output_in_a_row_stays_text(researcher_client, researcher, data_dir):
    rows = [{"problem": f"Solve {XSS}", "think": f"hmm {XSS}", "answer": XSS, "source": XSS}]
    version = make_version(researcher, rows, name="xss")

    for url in (
        version_url(version),
        version_url(version, "curation:rows"),
        version_url(version, "curation:row", 0),
    ):
        page = researcher_client.get(url).content.decode()
        assert XSS not in page, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, url


def test_the_rows_table_pages_filters_and_searches(researcher_client, version):
    url = version_url(version, "curation:rows")

    first = researcher_client.get(url)
    assert first.status_code == 200 and first.context["total"] == 300
    assert [r["index"] for r in first.context["rows"]] == list(range(50))
    assert "Rows 1–50 of 300" in first.content.decode()

    second = researcher_client.get(url, {"offset": 50})
    assert second.context["rows"][0]["index"] == 50 and second.context["previous_offset"] == 0

    filtered = researcher_client.get(
        url,
        {"col_source": "aime", "col_correct": "true", "min_length": 1000},
        HTTP_HX_REQUEST="true",
    )
    expected = [
        i
        for i, r in enumerate(known_rows())
        if r["source"] == "aime" and r["correct"] and len(r["think"]) >= 1000
    ]
    assert [r["index"] for r in filtered.context["rows"]] == expected
    assert (
        'id="row-results"' in filtered.content.decode() and "<form" not in filtered.content.decode()
    )

    found = researcher_client.get(url, {"q": "needle"})
    assert [r["index"] for r in found.context["rows"]] == [7, 70, 170]
    assert f'href="{version_url(version, "curation:row", 70)}?q=needle"' in found.content.decode()


def test_the_row_view_renders_think_and_answer_with_previous_and_next(researcher_client, version):
    page = researcher_client.get(version_url(version, "curation:row", 3), {"col_source": "gsm8k"})
    html = page.content.decode()

    assert (
        '<details class="seg seg-think" open><summary>think</summary><div class="seg-body">Step 3:'
        in html
    )
    assert '<div class="seg-body">6</div>' in html  # the answer
    assert "Problem 3: what is 3 + 3?" in html
    assert f'href="{version_url(version, "curation:row", 0)}?col_source=gsm8k" rel="prev"' in html
    assert f'href="{version_url(version, "curation:row", 6)}?col_source=gsm8k" rel="next"' in html
    assert "<dt>split</dt>" in html
    assert researcher_client.get(version_url(version, "curation:row", 300)).status_code == 404


def test_it_deletes_an_unused_version_and_refuses_a_used_one(
    researcher_client, researcher, version
):
    run = Run.objects.create(owner=researcher, name="sft", kind="sft", status="finished")
    DatasetUse.objects.create(version=version, run=run, sha256=version.sha256)

    refused = researcher_client.post(version_url(version, "curation:version_delete"), follow=True)
    assert DatasetVersion.objects.filter(pk=version.pk).exists()
    assert f"was used by run(s) #{run.pk}: it cannot be deleted" in refused.content.decode()

    unused = make_version(researcher, known_rows(3), name="scratch")
    response = researcher_client.post(version_url(unused, "curation:version_delete"))
    assert response.status_code == 302 and not DatasetVersion.objects.filter(pk=unused.pk).exists()


def test_the_diff_page_counts_and_shows_examples(researcher_client, researcher, version):
    rows = known_rows()[5:] + [{**known_rows(1)[0], "problem": "A brand new problem"}]
    new = make_version(researcher, rows, dataset=version.dataset, parent=version)

    response = researcher_client.get(
        reverse("curation:diff", args=[version.dataset_id]), {"old": 1, "new": new.number}
    )
    html = response.content.decode()

    assert response.context["result"]["counts"]["removed"] == 5
    assert 'data-count="added">1<' in html and 'data-count="removed">5<' in html
    assert "A brand new problem" in html


def test_the_version_page_polls_its_running_jobs(researcher_client, researcher, version):
    DatasetJob.objects.create(
        kind="curate", dataset=version.dataset, source=version, created_by=researcher,
        status="running", progress=0.4, eta_seconds=90, message="dedup",
    )  # fmt: skip

    page = researcher_client.get(version_url(version)).content.decode()
    part = researcher_client.get(version_url(version, "curation:version_jobs")).content.decode()

    for html in (page, part):
        assert f'hx-get="{version_url(version, "curation:version_jobs")}"' in html
        assert "40% · ETA 1 min 30 s · dedup" in html


# --- from the trace browser -----------------------------------------------------------------


@pytest.fixture
def traced_run(researcher):
    run = Run.objects.create(owner=researcher, name="r1-zero", kind="grpo", status="finished")
    prompt = "<|im_start|>system\nThink first.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    items = [
        sample(prompt, "<think>2+3 is 5</think> <answer>5</answer>"),
        sample(prompt, "<think>2+3 is 6</think> <answer>6</answer>", accuracy=0.0),
        sample("What is 7*6?", "<think>7*6=42</think><answer>42</answer>"),
    ]
    traces_ingest(run=run, events=[{"type": "samples", "step": 3, "items": items}])
    return run


def test_the_trace_browser_offers_to_add_its_traces_to_a_dataset(researcher_client, traced_run):
    page = researcher_client.get(reverse("traces:list"), {"run": traced_run.pk, "correct": "yes"})
    html = page.content.decode()

    assert "data-add-to-dataset" in html
    assert f'action="{reverse("curation:from_traces")}?run={traced_run.pk}&amp;correct=yes"' in html


def test_it_writes_the_selected_traces_as_a_version(
    researcher_client, researcher, traced_run, data_dir
):
    url = reverse("curation:from_traces") + f"?run={traced_run.pk}&correct=yes"

    response = researcher_client.post(url, {"dataset": "cold-start", "kind": "cold-start"})

    version = DatasetVersion.objects.get(dataset__name="cold-start")
    assert response.status_code == 302 and response["Location"] == version_url(version)
    assert version.dataset.kind == "cold-start" and version.provenance_type == "traces"
    assert version.provenance == {
        "filters": {"run": traced_run.pk, "correct": True},
        "run_ids": [traced_run.pk],
        "count": 2,
        "appended_to": None,
    }
    rows, _ = version_rows(version=version, offset=0, limit=10, full=True)
    assert [r["values"] for r in rows] == [
        {"problem": "What is 2+3?", "think": "2+3 is 5", "answer": "5", "reference": "5",
         "reward": 2.0, "correct": True, "source": f"trace:{traced_run.pk}"},
        {"problem": "What is 7*6?", "think": "7*6=42", "answer": "42", "reference": "5",
         "reward": 2.0, "correct": True, "source": f"trace:{traced_run.pk}"},
    ]  # fmt: skip

    again = researcher_client.post(
        url.replace("&correct=yes", ""), {"dataset": "cold-start", "append": "on"}
    )
    appended = DatasetVersion.objects.get(dataset__name="cold-start", number=2)
    assert again.status_code == 302 and (appended.rows, appended.parent) == (5, version)
    assert appended.provenance["count"] == 3 and appended.provenance["appended_to"] == 1


def test_it_refuses_a_selection_too_large_to_write_in_a_request(
    researcher_client, traced_run, data_dir, monkeypatch
):
    monkeypatch.setattr(from_traces, "MAX_TRACES", 2)
    url = reverse("curation:from_traces") + f"?run={traced_run.pk}"

    response = researcher_client.post(url, {"dataset": "cold-start"}, follow=True)

    assert "These filters select 3 traces" in response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("traces:list") + f"?run={traced_run.pk}"
    assert not DatasetVersion.objects.exists() and Trace.objects.count() == 3


def test_annotators_cannot_add_traces_to_a_dataset(annotator_client, traced_run, data_dir):
    response = annotator_client.post(reverse("curation:from_traces"), {"dataset": "x"})
    assert response.status_code == 403 and not Dataset.objects.exists()
