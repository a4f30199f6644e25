"""The curate page: ticked operations become a curation job of the version, researchers only."""

from __future__ import annotations

import pyarrow as pa
import pytest
from django.urls import reverse

from r1studio.curation.models import DatasetJob
from r1studio.curation.services import dataset_create, version_write


@pytest.fixture
def version(researcher, data_dir):
    dataset = dataset_create(user=researcher, name="cold-start", kind="cold-start")
    rows = [
        {"problem": f"{i}+{i}?", "answer": str(2 * i), "reference": str(2 * i)} for i in range(4)
    ]
    return version_write(
        dataset=dataset,
        table=pa.Table.from_pylist(rows),
        user=researcher,
        provenance_type="import",
        provenance={},
    )


def _url(version) -> str:
    return reverse("curation:curate", args=[version.dataset_id, version.number])


def test_the_version_page_links_the_curate_form(researcher_client, version):
    page = researcher_client.get(reverse("curation:version", args=[version.dataset_id, 1]))
    assert _url(version) in page.content.decode()
    form = researcher_client.get(_url(version))
    assert form.status_code == 200 and b"data-curate-form" in form.content


def test_it_starts_a_curation_with_the_ticked_operations_in_order(researcher_client, version):
    form = {
        "verify": "on",
        "reference": "reference",
        "min_tokens": 0,
        "max_tokens": 16384,
        "exact_dedup": "on",
        "threshold": 0.8,
        "sample_n": 3,
        "validation_n": 1,
        "seed": 7,
    }

    response = researcher_client.post(_url(version), form)

    job = DatasetJob.objects.get(source=version)
    assert response.status_code == 302
    assert response["Location"] == reverse("curation:job", args=[version.dataset_id, job.pk])
    ops = job.params["operations"]
    assert [op["op"] for op in ops] == ["verify", "exact_dedup", "sample", "split"]
    assert (ops[2]["n"], ops[2]["seed"], ops[3]["n"]) == (3, 7, 1)


def test_it_asks_for_an_operation_and_starts_nothing(researcher_client, version):
    form = {
        "reference": "reference",
        "min_tokens": 0,
        "max_tokens": 0,
        "threshold": 0.8,
        "sample_n": 0,
        "validation_n": 0,
        "seed": 0,
    }
    response = researcher_client.post(_url(version), form)
    assert response.status_code == 400 and b"data-curate-problem" in response.content
    assert not DatasetJob.objects.exists()


def test_it_is_for_researchers_only(annotator_client, version):
    assert annotator_client.get(_url(version)).status_code == 403
    assert annotator_client.post(_url(version), {"exact_dedup": "on"}).status_code == 403
