"""Exports: streamed JSONL with messages, the Parquet file, an HF folder as a tar; an export
imported again is the same version (same sha256)."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile

import datasets
import pyarrow as pa
import pytest
from django.test import AsyncRequestFactory, RequestFactory

from r1studio.curation import exports, storage
from r1studio.curation.imports import import_start
from r1studio.curation.models import JobStatus
from r1studio.curation.services import dataset_create, version_write
from tests.studio.curation.datafiles import jsonl_bytes, reasoning_rows, upload, wait_for_job


@pytest.fixture
def dataset(researcher, data_dir):
    return dataset_create(user=researcher, name="reasoning", kind="reasoning")


def _version(dataset, user, rows):
    return version_write(
        dataset=dataset,
        table=pa.Table.from_pylist(rows),
        user=user,
        provenance_type="import",
        provenance={"file": "t.jsonl"},
    )


def _export(version, fmt) -> bytes:
    return b"".join(exports.export_pieces(version, fmt))


def _untar(data: bytes, into):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    (folder,) = into.iterdir()
    return folder


@pytest.mark.django_db(transaction=True)
def test_an_export_imported_again_has_the_same_sha256(
    celery_worker, researcher, dataset, data_dir, tmp_path
):
    rows = reasoning_rows(40)
    rows[3]["think"] = 'quotes " and \\ back\nslash, tab\t, NUL-free ✓'
    job = wait_for_job(
        import_start(
            user=researcher, dataset=dataset, uploaded_file=upload("a.jsonl", jsonl_bytes(rows))
        )
    )
    original = job.result
    jsonl = _export(original, "jsonl")
    parquet = _export(original, "parquet")
    folder = _untar(_export(original, "hf"), tmp_path / "hf")

    again = [
        import_start(user=researcher, dataset=dataset, uploaded_file=upload("e.jsonl", jsonl)),
        import_start(user=researcher, dataset=dataset, uploaded_file=upload("e.parquet", parquet)),
        import_start(user=researcher, dataset=dataset, server_path=str(folder)),
    ]

    ended = [wait_for_job(job) for job in again]
    assert [j.status for j in ended] == [JobStatus.FINISHED] * 3, [j.error for j in ended]
    assert [j.result.sha256 for j in ended] == [original.sha256] * 3
    assert [j.result.number for j in ended] == [2, 3, 4]


@pytest.mark.django_db
def test_the_parquet_export_is_the_version_file(researcher, dataset):
    version = _version(dataset, researcher, reasoning_rows(5))

    assert _export(version, "parquet") == storage.version_file(version.path).read_bytes()


@pytest.mark.django_db
def test_jsonl_carries_messages_even_when_the_version_has_none(researcher, dataset):
    rows = [{k: r[k] for k in ("problem", "think", "answer")} for r in reasoning_rows(3)]
    version = _version(dataset, researcher, rows)

    lines = [json.loads(line) for line in _export(version, "jsonl").splitlines()]

    assert [line["problem"] for line in lines] == [r["problem"] for r in rows]
    assert lines[1]["messages"] == [
        {"role": "user", "content": rows[1]["problem"]},
        {
            "role": "assistant",
            "content": f"<think>\n{rows[1]['think']}\n</think>\n<answer>\n2\n</answer>",
        },
    ]


@pytest.mark.django_db
def test_jsonl_is_written_a_batch_at_a_time(researcher, dataset, monkeypatch):
    monkeypatch.setattr(exports, "JSONL_BATCH_ROWS", 100)
    version = _version(dataset, researcher, reasoning_rows(1000))

    pieces = exports.export_pieces(version, "jsonl")
    first = next(pieces)

    assert first.count(b"\n") == 100  # sent before the rest is read
    assert 1 + sum(1 for _ in pieces) >= 10


@pytest.mark.django_db
def test_the_hf_export_is_a_save_to_disk_folder_in_shards(
    researcher, dataset, tmp_path, monkeypatch
):
    monkeypatch.setattr(exports, "SHARD_BYTES", 1000)
    rows = [
        {**r, "messages": [{"role": "user", "content": r["problem"]}]} for r in reasoning_rows(30)
    ]
    version = _version(dataset, researcher, rows)

    folder = _untar(_export(version, "hf"), tmp_path / "hf")
    loaded = datasets.load_from_disk(str(folder))

    assert folder.name == "reasoning-v1"
    assert len(list(folder.glob("data-*.arrow"))) > 1
    assert loaded.to_list() == storage.parquet_open(version.path).read().to_pylist()
    assert loaded.features["messages"].feature["role"].dtype == "string"


@pytest.mark.django_db
def test_the_download_streams_under_wsgi_and_asgi(researcher, dataset):
    version = _version(dataset, researcher, reasoning_rows(5))
    expected = _export(version, "jsonl")

    sync = exports.export_response(RequestFactory().get("/"), version, "jsonl")
    asgi = exports.export_response(AsyncRequestFactory().get("/"), version, "jsonl")

    async def read(response):
        return b"".join([piece async for piece in response])

    assert sync.streaming and b"".join(sync.streaming_content) == expected
    assert asgi.is_async and asyncio.run(read(asgi)) == expected
    assert sync["Content-Disposition"] == 'attachment; filename="reasoning-v1.jsonl"'
