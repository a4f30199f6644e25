"""Dataset versions: hashed by content, written once, numbered, protected once used."""

from __future__ import annotations

import pyarrow as pa
import pytest

from r1studio.curation import storage
from r1studio.curation.models import DatasetUse, DatasetVersion
from r1studio.curation.services import (
    DatasetError,
    dataset_create,
    version_delete,
    version_write,
)
from r1studio.runs.models import Run

ROWS = [
    {"problem": "What is 2+2?", "think": "2+2=4", "answer": "4", "source": "toy"},
    {"problem": "What is 3+5?", "think": "3+5=8", "answer": "8", "source": "toy"},
]


def _write(dataset, user, rows=ROWS, **kwargs):
    return version_write(
        dataset=dataset,
        table=pa.Table.from_pylist(rows),
        user=user,
        provenance_type="import",
        provenance={"file": "x.jsonl"},
        **kwargs,
    )


@pytest.mark.django_db
def test_it_hashes_rows_not_their_layout(researcher, data_dir):
    swapped = [dict(reversed(list(row.items()))) for row in ROWS]
    table = pa.Table.from_pylist(ROWS)
    rechunked = pa.concat_tables([table.slice(0, 1), table.slice(1)])

    assert storage.table_sha256(table) == storage.table_sha256(pa.Table.from_pylist(swapped))
    assert storage.table_sha256(table) == storage.table_sha256(rechunked)
    assert storage.table_sha256(table) != storage.table_sha256(table.slice(0, 1))


@pytest.mark.django_db
def test_it_numbers_versions_and_writes_each_file_once(researcher, data_dir):
    dataset = dataset_create(user=researcher, name="cold-start", kind="cold-start")

    first = _write(dataset, researcher)
    second = _write(dataset, researcher, rows=ROWS[:1], parent=first)

    assert (first.number, second.number, second.parent) == (1, 2, first)
    assert first.rows == 2 and first.ref == "dataset:cold-start@1"
    assert first.stats["lengths"]["think"]["max"] == 5
    assert first.stats["counts"]["source"] == {"toy": 2}
    table = storage.parquet_open(first.path).read()
    assert table.to_pylist() == ROWS and storage.table_sha256(table) == first.sha256
    with pytest.raises(storage.VersionExists):
        storage.parquet_write_once(table, first.path)  # a second write of a version
    with pytest.raises(ValueError, match="immutable"):
        first.rows = 3
        first.save()
    assert storage.parquet_open(first.path).metadata.num_rows == 2


@pytest.mark.django_db
def test_it_refuses_to_delete_a_version_a_run_used(researcher, data_dir):
    dataset = dataset_create(user=researcher, name="sft-set")
    version = _write(dataset, researcher)
    run = Run.objects.create(name="sft", owner=researcher, kind="sft", config={})
    DatasetUse.objects.create(version=version, run=run, sha256=version.sha256)

    with pytest.raises(DatasetError, match="used by run"):
        version_delete(version=version, user=researcher)
    DatasetUse.objects.all().delete()
    version_delete(version=version, user=researcher)

    assert not DatasetVersion.objects.exists()
    assert not storage.version_file(version.path).exists()


@pytest.mark.django_db
def test_it_names_datasets_so_that_configs_can_refer_to_them(researcher, data_dir):
    with pytest.raises(DatasetError, match="dataset name"):
        dataset_create(user=researcher, name="bad name@1")
    dataset_create(user=researcher, name="ok")
    with pytest.raises(DatasetError, match="exists already"):
        dataset_create(user=researcher, name="ok")
