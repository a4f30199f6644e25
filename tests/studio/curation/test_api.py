"""The datasets API: create, upload (a job to poll), read rows, export, curate; 422 naming the
line of a malformed upload with nothing created; researchers and admins only."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from r1studio.api.services import api_token_create
from r1studio.curation import storage
from r1studio.curation.models import Dataset, DatasetJob, DatasetVersion
from r1studio.curation.services import dataset_create
from tests.conftest import wait_for
from tests.studio.curation.datafiles import jsonl_bytes, reasoning_rows


def _auth(user) -> dict[str, str]:
    _, token = api_token_create(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def _post_file(client, url, auth, name, data, **fields):
    body = {"file": SimpleUploadedFile(name, data), **fields}
    return client.post(url, body, **auth)  # multipart, as `curl -F` sends it


@pytest.mark.django_db(transaction=True)
def test_it_imports_an_upload_and_serves_its_rows_and_exports(
    celery_worker, client, researcher, data_dir
):
    auth = _auth(researcher)
    created = client.post(
        "/api/datasets",
        {"name": "cold-start", "kind": "cold-start"},
        content_type="application/json",
        **auth,
    )
    assert created.status_code == 201, created.content
    dataset_id = created.json()["id"]
    rows = [{**row, "question": row.pop("problem")} for row in reasoning_rows(25)]

    accepted = _post_file(
        client,
        f"/api/datasets/{dataset_id}/versions",
        auth,
        "cold.jsonl",
        jsonl_bytes(rows),
        mapping=json.dumps({"problem": "question", "think": "think", "answer": "answer"}),
        keep_other="false",
    )
    assert accepted.status_code == 202, accepted.content
    job_url = f"/api/dataset-jobs/{accepted.json()['id']}"
    job = wait_for(lambda: (j := client.get(job_url, **auth).json())["status"] == "finished" and j)

    assert job["result"]["number"] == 1 and job["progress"] == 1.0
    version = client.get(f"/api/datasets/{dataset_id}/versions/1", **auth).json()
    assert version["rows"] == 25 and version["status"] == "ready"
    assert version["sha256"] == DatasetVersion.objects.get().sha256
    assert version["provenance"]["mapping"]["problem"] == "question"
    assert [c["name"] for c in version["columns"]] == ["problem", "think", "answer", "messages"]
    page = client.get(f"/api/datasets/{dataset_id}/versions/1/rows?offset=20&limit=10", **auth)
    assert [r["row"] for r in page.json()["items"]] == [20, 21, 22, 23, 24]
    assert page.json()["next_offset"] is None and page.json()["total"] == 25
    found = client.get(f"/api/datasets/{dataset_id}/versions/1/rows?q=what+is+7+%2B", **auth)
    assert [r["problem"] for r in found.json()["items"]] == ["What is 7 + 7?"]
    export = client.get(f"/api/datasets/{dataset_id}/versions/1/export?format=jsonl", **auth)
    lines = b"".join(export.streaming_content).splitlines()
    assert export.status_code == 200 and len(lines) == 25
    assert json.loads(lines[0])["messages"][0] == {"role": "user", "content": "What is 0 + 0?"}
    parquet = client.get(f"/api/datasets/{dataset_id}/versions/1/export?format=parquet", **auth)
    path = storage.version_file(DatasetVersion.objects.get().path)
    assert b"".join(parquet.streaming_content) == path.read_bytes()
    listed = client.get("/api/datasets", **auth).json()
    assert [(d["name"], d["versions"], d["latest"]) for d in listed] == [("cold-start", 1, 1)]


@pytest.mark.django_db
def test_a_malformed_upload_answers_422_naming_the_line_and_creates_nothing(
    client, researcher, data_dir
):
    dataset = dataset_create(user=researcher, name="d")
    lines = jsonl_bytes(reasoning_rows(10)).splitlines(keepends=True)
    lines[6] = b'{"problem": "unfinished\n'

    response = _post_file(
        client,
        f"/api/datasets/{dataset.pk}/versions",
        _auth(researcher),
        "d.jsonl",
        b"".join(lines),
    )

    assert response.status_code == 422
    assert response.json()["detail"].startswith("line 7: not valid JSON")
    assert not DatasetJob.objects.exists() and not DatasetVersion.objects.exists()
    assert not [p for p in (data_dir / "uploads").rglob("*") if p.is_file()]


@pytest.mark.django_db
def test_an_upload_over_the_limit_answers_422_with_the_limit(
    client, researcher, data_dir, settings
):
    settings.R1STUDIO_MAX_IMPORT_BYTES = 500
    dataset = dataset_create(user=researcher, name="d")

    response = _post_file(
        client,
        f"/api/datasets/{dataset.pk}/versions",
        _auth(researcher),
        "big.jsonl",
        jsonl_bytes(reasoning_rows(20)),
    )

    assert response.status_code == 422
    assert "imports are limited to 500 bytes" in response.json()["detail"]


@pytest.mark.django_db
def test_curate_queues_a_job_on_the_version(client, researcher, data_dir):
    import pyarrow as pa

    from r1studio.curation.services import version_write

    dataset = dataset_create(user=researcher, name="d")
    version_write(
        dataset=dataset,
        table=pa.Table.from_pylist(reasoning_rows(3)),
        user=researcher,
        provenance_type="import",
        provenance={},
    )
    url = f"/api/datasets/{dataset.pk}/versions/1/curate"
    bad = client.post(
        url, {"operations": [{"op": "dedup"}]}, content_type="application/json", **_auth(researcher)
    )
    assert bad.status_code == 422 and not DatasetJob.objects.exists()  # refused before queueing

    response = client.post(
        url,
        {"operations": [{"op": "near_dedup", "threshold": 0.9}]},
        content_type="application/json",
        **_auth(researcher),
    )

    assert response.status_code == 202, response.content
    job = DatasetJob.objects.get()
    assert (job.kind, job.source.number) == ("curate", 1)
    assert job.params["operations"][0]["op"] == "near_dedup"
    assert job.params["operations"][0]["threshold"] == 0.9
    assert response.json()["status"] == "queued"


@pytest.mark.django_db
def test_annotators_are_refused_even_an_upload(client, annotator, researcher, data_dir):
    dataset = dataset_create(user=researcher, name="d")
    auth = _auth(annotator)

    listed = client.get("/api/datasets", **auth)
    uploaded = _post_file(
        client,
        f"/api/datasets/{dataset.pk}/versions",
        auth,
        "a.jsonl",
        jsonl_bytes(reasoning_rows(2)),
    )
    client.force_login(annotator)
    by_session = client.get(f"/api/datasets/{dataset.pk}")

    assert (listed.status_code, uploaded.status_code, by_session.status_code) == (403, 403, 403)
    assert not DatasetJob.objects.exists() and Dataset.objects.count() == 1
    assert client.get("/api/datasets").status_code == 403
    client.logout()
    assert client.get("/api/datasets").status_code == 401


@pytest.mark.django_db
def test_a_multipart_body_past_the_import_limit_is_refused_before_it_is_read(
    client, researcher, data_dir, settings
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    settings.R1STUDIO_MAX_IMPORT_BYTES = 3000
    dataset = dataset_create(user=researcher, name="d")
    auth = _auth(researcher)
    url = f"/api/datasets/{dataset.pk}/versions"

    within = _post_file(client, url, auth, "a.jsonl", jsonl_bytes(reasoning_rows(20))[:2900])
    past = _post_file(client, url, auth, "b.jsonl", b"x" * 6000)

    assert within.status_code != 413  # a file bigger than the JSON body limit gets through
    assert past.status_code == 413
    assert "R1STUDIO_MAX_IMPORT_BYTES" in past.json()["detail"]
