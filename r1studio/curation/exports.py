"""Exports of a dataset version, streamed: JSON Lines with `messages`, Parquet, an HF folder.

Each exporter yields the file in pieces, reading the version's Parquet file one batch at a
time, so an 800k-row export holds a few thousand rows at once and its first bytes leave at
once (no time-out while a whole file is built).

- `jsonl`: one row a line, every column, plus TRL's `messages` where the version has none and
  one can be derived (`mapping.with_messages`); importing it again gives the same sha256.
- `parquet`: the version's own file, byte for byte.
- `hf`: a tar of an HF `save_to_disk` folder (`datasets.load_from_disk` reads it after
  `tar -xf`): Arrow stream shards of ~500 MB written one at a time to a temporary folder and
  sent as soon as each is complete, then `dataset_info.json` and `state.json`.

`export_response` wraps a piece iterator in a streaming response; under ASGI the pieces are
pulled one at a time in a worker thread (Django would otherwise read a synchronous iterator
whole into memory before sending a byte).
"""

from __future__ import annotations

import json
import math
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse

from r1studio.curation import storage
from r1studio.curation.mapping import messages_derivable, with_messages
from r1studio.curation.models import DatasetVersion
from r1studio.curation.readers import arrow_allocator

FORMATS = {
    "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
    "hf": ("application/x-tar", "tar"),
}
JSONL_BATCH_ROWS = 8192
FILE_PIECE_BYTES = 1024 * 1024
SHARD_BYTES = 500 * 1024 * 1024  # what `save_to_disk` aims for by default


def _duckdb() -> Any:
    import duckdb

    con = duckdb.connect()
    for setting in (  # nothing is ever downloaded: to_json is built into DuckDB's wheel
        "autoinstall_known_extensions=false",
        "autoload_known_extensions=false",
        "threads=2",
    ):
        con.execute(f"SET {setting}")
    return con


def export_jsonl(version: DatasetVersion) -> Iterator[bytes]:
    # DuckDB writes the JSON (C++, off the GIL, ~3x Python's json on long text), reading the
    # Parquet file itself in order; a version without `messages` goes batch by batch through
    # `with_messages` first.
    arrow_allocator()
    parquet = storage.parquet_open(version.path)
    query = "SELECT to_json(r) FROM {} AS r"
    with _duckdb() as con:
        if not messages_derivable(parquet.schema_arrow.names):
            source = f"read_parquet({_sql_text(storage.version_file(version.path))})"
            reader = con.sql(query.format(source)).to_arrow_reader(JSONL_BATCH_ROWS)
            for lines in reader:
                yield _lines_bytes(lines.column(0))
            return
        for batch in parquet.iter_batches(batch_size=JSONL_BATCH_ROWS):
            con.register("batch", with_messages(pa.Table.from_batches([batch])))
            encoded = con.sql(query.format("batch")).to_arrow_table().column(0)
            yield b"".join(_lines_bytes(chunk) for chunk in encoded.chunks)
            con.unregister("batch")


def _sql_text(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _lines_bytes(lines: pa.Array) -> bytes:
    """The text of a string array's values, each followed by a newline: one copy of the
    bytes (where DuckDB's `|| chr(10)` would copy every line once more before this one)."""
    if not len(lines):
        return b""
    lines = lines.cast(pa.string())
    _, offsets, data = lines.buffers()[:3]
    bounds = np.frombuffer(offsets, np.int32)[lines.offset : lines.offset + len(lines) + 1]
    view = memoryview(data) if data is not None else memoryview(b"")
    starts, ends = bounds[:-1].tolist(), bounds[1:].tolist()
    return b"\n".join([*(view[a:b] for a, b in zip(starts, ends, strict=True)), b""])


def _file_pieces(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while piece := fh.read(FILE_PIECE_BYTES):
            yield piece


def export_parquet(version: DatasetVersion) -> Iterator[bytes]:
    return _file_pieces(storage.version_file(version.path))


# --- HF save_to_disk, as a tar ---------------------------------------------------------------


def _tar_member(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(time.time())
    info.mode = 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def _tar_padding(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def _tar_file(name: str, path: Path) -> Iterator[bytes]:
    size = path.stat().st_size
    yield _tar_member(name, size)
    yield from _file_pieces(path)
    yield _tar_padding(size)


def _tar_bytes(name: str, data: bytes) -> Iterator[bytes]:
    yield _tar_member(name, len(data))
    yield data
    yield _tar_padding(len(data))


def export_hf(version: DatasetVersion) -> Iterator[bytes]:
    import datasets

    parquet = storage.parquet_open(version.path)
    features = datasets.Features.from_arrow_schema(parquet.schema_arrow)
    schema = features.arrow_schema  # with the `huggingface` metadata load_from_disk reads
    meta = parquet.metadata
    unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    shards = max(1, math.ceil(unpacked / SHARD_BYTES))
    per_shard = max(1, math.ceil(meta.num_rows / shards))
    shards = max(1, math.ceil(meta.num_rows / per_shard))
    folder = f"{version.dataset.name}-v{version.number}"
    names = [f"data-{k:05d}-of-{shards:05d}.arrow" for k in range(shards)]
    with tempfile.TemporaryDirectory(prefix="r1studio-export-") as tmp:
        batches = parquet.iter_batches(batch_size=JSONL_BATCH_ROWS)
        carry: pa.Table | None = None
        for name in names:
            path = Path(tmp) / name
            written = 0
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
                while written < per_shard:
                    if carry is None:
                        batch = next(batches, None)
                        if batch is None:
                            break
                        carry = pa.Table.from_batches([batch])
                    take = carry.slice(0, per_shard - written)
                    carry = carry.slice(len(take)) if len(take) < len(carry) else None
                    writer.write_table(take.cast(schema))
                    written += len(take)
            yield from _tar_file(f"{folder}/{name}", path)
            path.unlink()
    info = {
        "citation": "",
        "description": f"{version.ref} (sha256 {version.sha256})",
        "features": features.to_dict(),
        "homepage": "",
        "license": "",
    }
    state = {
        "_data_files": [{"filename": name} for name in names],
        "_fingerprint": version.sha256[:16],
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": None,
    }
    yield from _tar_bytes(f"{folder}/dataset_info.json", json.dumps(info, indent=2).encode())
    yield from _tar_bytes(f"{folder}/state.json", json.dumps(state, indent=2).encode())
    yield b"\0" * (2 * tarfile.BLOCKSIZE)  # end of archive


EXPORTERS = {"jsonl": export_jsonl, "parquet": export_parquet, "hf": export_hf}


def export_pieces(version: DatasetVersion, fmt: str) -> Iterator[bytes]:
    """The export of `version` in `fmt` (jsonl | parquet | hf), as pieces of bytes."""
    if fmt not in EXPORTERS:
        raise ValueError(f"unknown export format {fmt!r}: use {', '.join(EXPORTERS)}")
    return EXPORTERS[fmt](version)


def export_filename(version: DatasetVersion, fmt: str) -> str:
    return f"{version.dataset.name}-v{version.number}.{FORMATS[fmt][1]}"


async def _async_pieces(pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    # Files only, no ORM: any worker thread may pull the next piece.
    step = sync_to_async(next, thread_sensitive=False)
    while (piece := await step(pieces, None)) is not None:
        yield piece


def export_response(request: HttpRequest, version: DatasetVersion, fmt: str) -> Any:
    """A streaming download of `version` in `fmt` (the caller checked the user may read it)."""
    pieces = export_pieces(version, fmt)
    content = _async_pieces(pieces) if isinstance(request, ASGIRequest) else pieces
    response = StreamingHttpResponse(content, content_type=FORMATS[fmt][0])
    response["Content-Disposition"] = f'attachment; filename="{export_filename(version, fmt)}"'
    if fmt == "parquet":
        response["Content-Length"] = str(storage.version_file(version.path).stat().st_size)
    return response
