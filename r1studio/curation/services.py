"""Writes on datasets: create a dataset, write a version (the one way a version is made).

Every way a version is made (a generate run's `dataset` event, an import, a curation job, a
trace selection, an annotation queue) ends in `version_write`: it hashes the rows, writes the
Parquet file once, and inserts the version row with its provenance, in one transaction that
also numbers it (the dataset row is locked, so two writers get 1 and 2, never 1 and 1). If the
row cannot be inserted, the file is removed again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from r1studio.core.roles import RESEARCHER, require_role
from r1studio.curation import storage
from r1studio.curation.models import Dataset, DatasetKind, DatasetVersion, ProvenanceType

NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_."


class DatasetError(ValidationError):
    """A dataset request that cannot be done as asked (bad name, empty rows, used version)."""


def _require_researcher(user: Any) -> None:
    require_role(user, RESEARCHER, "Datasets")


def dataset_name_check(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100 or any(c not in NAME_CHARS for c in name.lower()):
        raise DatasetError(
            "a dataset name is 1-100 letters, digits, '-', '_' or '.' (it is written in "
            "configs as dataset:NAME@VERSION)"
        )
    return name


def dataset_create(
    *, user: Any, name: str, kind: str = DatasetKind.OTHER, description: str = ""
) -> Dataset:
    """A new, empty dataset owned by `user`."""
    _require_researcher(user)
    name = dataset_name_check(name)
    if kind not in DatasetKind.values:
        raise DatasetError(f"kind must be one of {', '.join(DatasetKind.values)}")
    if Dataset.objects.filter(name=name).exists():
        raise DatasetError(f"a dataset named {name!r} exists already")
    return Dataset.objects.create(name=name, kind=kind, description=description, owner=user)


def dataset_get_or_create(*, user: Any, name: str, kind: str = DatasetKind.OTHER) -> Dataset:
    existing = Dataset.objects.filter(name=(name or "").strip()).first()
    return existing or dataset_create(user=user, name=name, kind=kind)


@contextlib.contextmanager
def _removed_after(path: Path) -> Iterator[None]:
    """Remove `path` (a temporary file) on the way out, if it is still there."""
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def version_write(
    *,
    dataset: Dataset,
    table: pa.Table,
    user: Any,
    provenance_type: str,
    provenance: dict[str, Any],
    parent: DatasetVersion | None = None,
    funnel: list[dict[str, Any]] | None = None,
    dropped: pa.Table | None = None,
    source_run: Any = None,
) -> DatasetVersion:
    """Hash, write once and register a new version of `dataset` (see the module docstring)."""
    if provenance_type not in ProvenanceType.values:
        raise DatasetError(f"unknown provenance {provenance_type!r}")
    folder = f"{storage.DATASETS_DIR}/{dataset.pk}"
    # The file is written (pyarrow, without the GIL) while the rows are hashed; it gets its
    # name, which holds the hash and the number, once both are known.
    with ThreadPoolExecutor(max_workers=1) as pool:
        writing = pool.submit(storage.parquet_write_temp, table, folder)
        try:
            sha = storage.table_sha256(table)
            stats = storage.table_stats(table)
        except BaseException:
            with contextlib.suppress(BaseException):
                writing.result().unlink()
            raise
        tmp = writing.result()
    with _removed_after(tmp), transaction.atomic():
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        last = dataset.versions.aggregate(n=Max("number"))["n"] or 0
        number = last + 1
        relative = f"{folder}/v{number:04d}-{sha[:16]}.parquet"
        written = [relative]
        try:
            size = storage.publish_once(tmp, relative)
            dropped_relative = ""
            if dropped is not None and dropped.num_rows:
                dropped_relative = relative.replace(".parquet", ".dropped.parquet")
                storage.parquet_write_once(dropped, dropped_relative)
                written.append(dropped_relative)
            return DatasetVersion.objects.create(
                dataset=dataset,
                number=number,
                parent=parent,
                path=relative,
                sha256=sha,
                rows=table.num_rows,
                size_bytes=size,
                columns=storage.table_columns(table),
                stats=stats,
                provenance_type=provenance_type,
                provenance=provenance,
                funnel=funnel or [],
                dropped_path=dropped_relative,
                source_run=source_run,
                created_by=user,
            )
        except storage.VersionExists:
            raise
        except BaseException:
            for path in written:  # no file without its row
                with contextlib.suppress(OSError):
                    storage.version_file(path).chmod(0o644)
                    storage.version_file(path).unlink()
            raise


def version_delete(*, version: DatasetVersion, user: Any) -> None:
    """Delete a version no run used and no other version derives from; its file goes too."""
    _require_researcher(user)
    if version.uses.exists():
        runs = ", ".join(f"#{u.run_id}" for u in version.uses.all()[:5])
        raise DatasetError(f"{version} was used by run(s) {runs}: it cannot be deleted")
    if version.children.exists():
        raise DatasetError(f"{version} has derived versions: delete those first")
    paths = [version.path, version.dropped_path]
    version.delete()
    for path in filter(None, paths):
        with contextlib.suppress(OSError):
            storage.version_file(path).chmod(0o644)
            storage.version_file(path).unlink()
