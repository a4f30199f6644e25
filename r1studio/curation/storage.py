"""The files behind dataset versions: one Parquet file each, written once, never changed.

`table_sha256` is the version's identity: sha256 over the rows in order, column by column in
the order of the column names, each value length-prefixed and taken from Arrow's buffers (so a
column order, a chunking or a file format does not change it: an export imported again gives
the same hash). Types are normalised first: any integer width is int64, any float float64, a
NaN is one NaN, text of any Arrow string layout is its UTF-8 bytes, lists of any layout are
their lengths then their items, struct fields go by name, a column (or nested level) with no
value is "null" whatever its type, and other types (dates, maps...) are JSON with sorted keys.
In detail (`ROWS_HASH_VERSION`, see `_Node`): sha256 of the version tag, the row count, then
per column (names sorted) the name and, per level, its kind (string, int, float, bool, list,
struct, json or null), the sha256 of its sizes (an int64 per value: -1 for a null, else its
byte length, list length or 0) and the sha256 of its data (the concatenated bytes;
little-endian int64, float64 or int8 values, nulls as 0), then its children by name.
`parquet_write_temp` then `publish_once` (or `parquet_write_once`, both) write a file that
did not exist (a hard link from a temporary file, so a reader never sees half a file and a
second write of the same path is refused); the file can be written while the rows are hashed,
before its name (which holds the hash) is known. `table_stats` summarises a version for its page without a second pass over the text.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings

DATASETS_DIR = "datasets"
# Rows are hashed and summarised this many at a time (bounded memory on 800k long rows).
BATCH_ROWS = 8192
TEXT_COLUMNS = ("problem", "think", "answer", "reference", "completion", "prompt")
# LZ4, not zstd: writing the file is the longest step of an import and runs on one thread (the
# Parquet writer has none of its own); zstd took ~1.7x LZ4's CPU there, and more to read back
# (pages, curation, exports), for files ~1/3 smaller (bench/curation.py's synthetic rows).
COMPRESSION = "lz4"


class VersionExists(FileExistsError):
    """A version file is written once; a second write of the same path is refused."""


def data_root() -> Path:
    return Path(settings.R1STUDIO_DATA_DIR)


def version_file(relative: str) -> Path:
    """The absolute path of a version's file (stored relative to the data directory)."""
    return data_root() / relative


ROWS_HASH_VERSION = b"r1studio-rows-v2\n"


def _json_value(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    ).encode()


def _kind(type_: pa.DataType) -> str:
    if pa.types.is_dictionary(type_):
        return _kind(type_.value_type)
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "string"
    if pa.types.is_string_view(type_):
        return "string"
    if pa.types.is_boolean(type_):
        return "bool"
    if pa.types.is_integer(type_):
        return "int"
    if pa.types.is_floating(type_):
        return "float"
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return "list"
    if pa.types.is_struct(type_):
        return "struct"
    if pa.types.is_null(type_):
        return "null"
    return "json"


_NUMERIC = {
    "bool": (pa.int8(), np.int8),
    "int": (pa.int64(), np.int64),
    "float": (pa.float64(), np.float64),
}


class _Node:
    """The two sha256 streams of one column, or of one level inside a nested column: `sizes`
    (an int64 per value: -1 for a null, else its byte length, list length or 0 for a struct)
    and `data` (the values' bytes); nested levels are children (a list's items, a struct's
    fields by name)."""

    def __init__(self) -> None:
        self.kind = ""
        self.any_value = False
        self.sizes = hashlib.sha256()
        self.data = hashlib.sha256()
        self.children: dict[str, _Node] = {}

    def child(self, name: str) -> _Node:
        return self.children.setdefault(name, _Node())

    def update(self, chunk: pa.Array) -> None:
        if pa.types.is_dictionary(chunk.type):
            chunk = chunk.dictionary_decode()
        kind = _kind(chunk.type)
        self.kind = self.kind or kind
        if len(chunk) == 0:
            return
        valid = chunk.is_valid().to_numpy(zero_copy_only=False) if chunk.null_count else None
        self.any_value = self.any_value or chunk.null_count < len(chunk)
        if kind == "null":
            lengths = np.full(len(chunk), -1, dtype="<i8")
        elif kind == "string":
            chunk = chunk.cast(pa.large_string())
            if valid is not None:
                chunk = pc.fill_null(chunk, "")  # a null slot may hold bytes: drop them
            buffers = chunk.buffers()
            offsets = np.frombuffer(buffers[1], dtype="<i8")
            offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1]
            lengths = np.diff(offsets)
            if buffers[2] is not None and offsets[-1] > offsets[0]:
                self.data.update(memoryview(buffers[2])[int(offsets[0]) : int(offsets[-1])])
        elif kind in _NUMERIC:
            arrow_type, numpy_type = _NUMERIC[kind]
            values = pc.fill_null(chunk.cast(arrow_type), 0).to_numpy(zero_copy_only=False)
            values = values.astype(numpy_type, copy=False)
            if kind == "float":
                values = np.where(np.isnan(values), np.nan, values)  # one NaN
            self.data.update(values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes())
            lengths = np.full(len(chunk), values.itemsize, dtype="<i8")
        elif kind == "list":
            lengths = pc.fill_null(pc.list_value_length(chunk), 0).to_numpy(zero_copy_only=False)
            self.child("item").update(chunk.flatten())
        elif kind == "struct":
            lengths = np.zeros(len(chunk), dtype="<i8")
            for field, values in zip(chunk.type, chunk.flatten(), strict=True):
                self.child(field.name).update(values)
        else:
            encoded = [None if v is None else _json_value(v) for v in chunk.to_pylist()]
            lengths = np.array([0 if v is None else len(v) for v in encoded], dtype="<i8")
            self.data.update(b"".join(v for v in encoded if v is not None))
        lengths = lengths.astype("<i8")
        if valid is not None:
            lengths[~valid] = -1
        self.sizes.update(lengths.tobytes())

    def digest(self) -> bytes:
        if not self.any_value:  # only nulls (or nothing): the same whatever the type
            return _prefixed(b"null") + self.sizes.digest()
        out = _prefixed(self.kind.encode()) + self.sizes.digest() + self.data.digest()
        for name in sorted(self.children):
            out += _prefixed(name.encode()) + self.children[name].digest()
        return out


def _prefixed(raw: bytes) -> bytes:
    return struct.pack("<q", len(raw)) + raw


def table_sha256(table: pa.Table) -> str:
    """sha256 over the canonical encoding of the rows, in order (see the module docstring)."""
    digest = hashlib.sha256(ROWS_HASH_VERSION)
    digest.update(struct.pack("<q", table.num_rows))
    names = table.column_names
    for i in sorted(range(len(names)), key=lambda i: names[i]):
        column = _Node()
        for chunk in table.column(i).chunks:
            column.update(chunk)
        digest.update(_prefixed(names[i].encode()) + column.digest())
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


def parquet_write_temp(table: pa.Table, folder: str) -> Path:
    """Write `table` to a new temporary file in `<data dir>/<folder>`, for `publish_once`."""
    directory = version_file(folder)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".writing-", suffix=".parquet", dir=directory)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression=COMPRESSION, row_group_size=16_384)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def publish_once(tmp: Path, relative: str) -> int:
    """Give the temporary file `tmp` its final name `<data dir>/<relative>`, which must not
    exist (in the same folder); `tmp` is removed either way. Returns the file's size."""
    final = version_file(relative)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        try:
            os.link(tmp, final)  # atomic, and refuses an existing file
        except FileExistsError:
            raise VersionExists(f"{relative} exists: a dataset version is written once") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    os.chmod(final, 0o444)  # read-only: nothing edits a version in place
    return final.stat().st_size


def parquet_write_once(table: pa.Table, relative: str) -> int:
    """Write `table` to `<data dir>/<relative>`, which must not exist; returns its size."""
    tmp = parquet_write_temp(table, str(Path(relative).parent))
    return publish_once(tmp, relative)


def parquet_open(relative: str) -> pq.ParquetFile:
    return pq.ParquetFile(version_file(relative))
