"""The files behind dataset versions: one Parquet file each, written once, never changed.

`table_sha256` is the version's identity: sha256 over the rows in order, each row encoded as
JSON with sorted keys (so a column order, a chunking or a file format does not change it: an
export imported again gives the same hash). `parquet_write_once` writes a file that did not
exist (a hard link from a temporary file, so a reader never sees half a file and a second
write of the same path is refused). `table_stats` summarises a version for its page without a
second pass over the text.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings

DATASETS_DIR = "datasets"
# Rows are hashed and summarised this many at a time (bounded memory on 800k long rows).
BATCH_ROWS = 8192
TEXT_COLUMNS = ("problem", "think", "answer", "reference", "completion", "prompt")


class VersionExists(FileExistsError):
    """A version file is written once; a second write of the same path is refused."""


def data_root() -> Path:
    return Path(settings.R1STUDIO_DATA_DIR)


def version_file(relative: str) -> Path:
    """The absolute path of a version's file (stored relative to the data directory)."""
    return data_root() / relative


def _row_json(row: dict) -> bytes:
    return json.dumps(
        row, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    ).encode()


def table_sha256(table: pa.Table) -> str:
    """sha256 over the canonical encoding of the rows, in order (see the module docstring)."""
    digest = hashlib.sha256()
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        for row in batch.to_pylist():
            digest.update(_row_json(row))
            digest.update(b"\n")
    return digest.hexdigest()


def table_columns(table: pa.Table) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in table.schema]


def _quantiles(lengths: pa.Array) -> dict[str, float]:
    if len(lengths) == 0:
        return {}
    qs = pc.quantile(lengths, q=[0.0, 0.5, 0.9, 0.99, 1.0], interpolation="nearest").to_pylist()
    return {
        "min": qs[0],
        "p50": qs[1],
        "p90": qs[2],
        "p99": qs[3],
        "max": qs[4],
        "mean": pc.mean(lengths).as_py(),
    }


def table_stats(table: pa.Table) -> dict[str, Any]:
    """Character lengths of the text columns, and the mix of `source`, `correct`, `language`."""
    stats: dict[str, Any] = {"lengths": {}, "counts": {}}
    for name in TEXT_COLUMNS:
        if name in table.column_names and pa.types.is_string(table.schema.field(name).type):
            lengths = pc.drop_null(pc.utf8_length(table.column(name)))
            stats["lengths"][name] = _quantiles(lengths)
    for name in ("source", "correct", "language"):
        if name in table.column_names:
            counts = pc.value_counts(table.column(name)).to_pylist()
            top = sorted(counts, key=lambda c: -c["counts"])[:20]
            stats["counts"][name] = {str(c["values"]): c["counts"] for c in top}
    return stats


def parquet_write_once(table: pa.Table, relative: str) -> int:
    """Write `table` to `<data dir>/<relative>`, which must not exist; returns its size."""
    final = version_file(relative)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".writing-", suffix=".parquet", dir=final.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=16_384)
        try:
            os.link(tmp, final)  # atomic, and refuses an existing file
        except FileExistsError:
            raise VersionExists(f"{relative} exists: a dataset version is written once") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    os.chmod(final, 0o444)  # read-only: nothing edits a version in place
    return final.stat().st_size


def parquet_open(relative: str) -> pq.ParquetFile:
    return pq.ParquetFile(version_file(relative))
