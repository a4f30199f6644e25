"""The import pages: upload → preview and mapping form → job → its page, researchers only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from r1studio.curation.models import DatasetJob
from r1studio.curation.services import dataset_create
from tests.studio.curation.datafiles import jsonl_bytes, reasoning_rows, upload


@pytest.fixture
def dataset(researcher, data_dir):
    return dataset_create(user=researcher, name="cold-start", kind="cold-start")


def _rows() -> list[dict]:
    rows = reasoning_rows(5)
    for row in rows:
        row["question"] = row.pop("problem")  # an alias the mapping suggests for problem
    return rows


def _upload(client, dataset, name="cold.jsonl", data=None):
    url = reverse("curation:import", args=[dataset.pk])
    return client.post(url, {"file": upload(name, data or jsonl_bytes(_rows()))})


def test_it_shows_the_upload_form_and_links_it_from_the_dataset(researcher_client, dataset):
    page = researcher_client.get(reverse("curation:dataset", args=[dataset.pk]))
    assert reverse("curation:import", args=[dataset.pk]) in page.content.decode()
    form = researcher_client.get(reverse("curation:import", args=[dataset.pk]))
    assert form.status_code == 200
    assert b'enctype="multipart/form-data"' in form.content


def test_it_previews_an_upload_with_its_columns_and_a_suggested_mapping(researcher_client, dataset):
    response = _upload(researcher_client, dataset)

    assert response.status_code == 200
    html = response.content.decode()
    for column in ("question", "think", "answer", "difficulty"):
        assert f'data-column="{column}"' in html
    assert "What is 4 + 4?" in html  # the first rows
    assert '<option value="question" selected>' in html  # problem ← question
    assert 'name="upload" value="uploads/staged/' in html


def test_it_refuses_a_kind_of_file_it_cannot_read(researcher_client, dataset):
    response = _upload(researcher_client, dataset, name="notes.txt", data=b"hello")
    assert response.status_code == 400
    assert b"data-import-problem" in response.content


def test_it_starts_an_import_job_with_the_chosen_mapping(researcher_client, dataset):
    html = _upload(researcher_client, dataset).content.decode()
    staged = html.split('name="upload" value="')[1].split('"')[0]

    response = researcher_client.post(
        reverse("curation:import_start", args=[dataset.pk]),
        {
            "upload": staged,
            "map_problem": "question",
            "map_think": "think",
            "map_answer": "answer",
            "map_reference": "",
            "map_messages": "",
            "map_source": "source",
        },
    )

    job = DatasetJob.objects.get(dataset=dataset)
    assert response.status_code == 302
    assert response["Location"] == reverse("curation:job", args=[dataset.pk, job.pk])
    assert job.kind == "import" and job.params["mapping"]["problem"] == "question"
    assert "reference" not in job.params["mapping"]
    assert job.params["keep_other"] is False  # the box was not ticked
    page = researcher_client.get(response["Location"])
    assert page.status_code == 200 and f'data-job="{job.pk}"' in page.content.decode()
    part = researcher_client.get(response["Location"], headers={"HX-Request": "true"})
    assert b"<html" not in part.content and b"data-jobs" in part.content


def test_it_refuses_an_upload_path_outside_the_staged_uploads(researcher_client, dataset):
    response = researcher_client.post(
        reverse("curation:import_start", args=[dataset.pk]), {"upload": "uploads/7/x.jsonl"}
    )
    assert response.status_code == 400
    assert not DatasetJob.objects.exists()


def test_it_names_a_bad_mapping_and_starts_nothing(researcher_client, dataset):
    html = _upload(researcher_client, dataset).content.decode()
    staged = html.split('name="upload" value="')[1].split('"')[0]
    response = researcher_client.post(
        reverse("curation:import_start", args=[dataset.pk]),
        {"upload": staged, "map_problem": "no_such_column"},
    )
    assert response.status_code == 400
    assert b"no_such_column" in response.content
    assert not DatasetJob.objects.exists()


def test_it_is_for_researchers_only(annotator_client, dataset):
    assert annotator_client.get(reverse("curation:import", args=[dataset.pk])).status_code == 403
    response = _upload(annotator_client, dataset)
    assert response.status_code == 403
    start = annotator_client.post(reverse("curation:import_start", args=[dataset.pk]), {})
    assert start.status_code == 403


def test_a_failed_jobs_page_shows_its_error(researcher_client, researcher, dataset):
    error = "bad.jsonl line 5: invalid JSON (column 17)"
    job = DatasetJob.objects.create(
        kind="import", dataset=dataset, created_by=researcher, status="failed", error=error
    )
    page = researcher_client.get(reverse("curation:job", args=[dataset.pk, job.pk]))
    assert error in page.content.decode()
    assert b"hx-get" not in page.content  # an ended job is not polled


def test_a_running_jobs_page_polls_and_shows_its_eta(researcher_client, researcher, dataset):
    job = DatasetJob.objects.create(
        kind="import",
        dataset=dataset,
        created_by=researcher,
        status="running",
        progress=0.4,
        eta_seconds=90,
        message="read 4,000 rows",
    )
    url = reverse("curation:job", args=[dataset.pk, job.pk])
    html = researcher_client.get(url).content.decode()
    assert f'hx-get="{url}"' in html
    assert "40%" in html and "ETA" in html and "read 4,000 rows" in html


def test_another_datasets_job_is_not_found(researcher_client, researcher, dataset):
    other = dataset_create(user=researcher, name="other", kind="cold-start")
    job = DatasetJob.objects.create(kind="import", dataset=other, created_by=researcher)
    response = researcher_client.get(reverse("curation:job", args=[dataset.pk, job.pk]))
    assert response.status_code == 404
