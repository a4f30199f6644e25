"""Files an import reads, as Arrow blocks that know where their rows came from.

`file_blocks(path, fmt)` yields `Block`s of a JSONL, Parquet or CSV file or an HF
`save_to_disk` folder, each with `where(i)` (the line or row of its i-th row, as a user reads
it: "line 7", "row 7") and the fraction of the input read so far. Nothing here holds more than
a few blocks: JSONL is cut into ~16 MB pieces at line ends and parsed by pyarrow, two pieces at
a time on two threads; a piece pyarrow refuses is scanned again line by line with `json.loads`
only to name the bad line. `file_head` reads the first rows for the mapping form's preview.

A problem with the file raises `ImportProblem`, whose message names the line or row.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

FORMATS = ("jsonl", "parquet", "csv", "hf")
SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
}
JSONL_PIECE_BYTES = 16 * 1024 * 1024
BATCH_ROWS = 16_384
_ROW_IN_MESSAGE = re.compile(r" in row (\d+)$")
_CHANGED = re.compile(r"Column\(([^)]*)\) changed from (\w+) to (\w+)")
_KINDS = {"array": "a list", "object": "an object", "boolean": "true/false"}


class ImportProblem(ValueError):
    """A file that cannot be imported as it is; the message names the line or row."""


@dataclass
class Block:
    table: pa.Table
    where: Callable[[int], str]  # the i-th row of this block as the user finds it in the file
    done: float  # fraction of the input read once this block is in


def arrow_allocator() -> None:
    """Use the allocator settings.py names (jemalloc: mimalloc's huge pages cost ~5 s of system
    time per GB read here) even where pyarrow was imported before the settings, which fixes
    its default pool at import."""
    wanted = os.environ.get("ARROW_DEFAULT_MEMORY_POOL", "")
    if wanted == "jemalloc" and pa.default_memory_pool().backend_name != wanted:
        with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc
            pa.set_memory_pool(pa.jemalloc_memory_pool())


def file_format(path: Path, fmt: str = "") -> str:
    """The format named, else the one the path's suffix (or HF folder layout) says."""
    if fmt:
        if fmt not in FORMATS:
            raise ImportProblem(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
        return fmt
    if path.is_dir():
        return "hf"
    found = SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise ImportProblem(
            f"{path.name}: cannot tell the format from the name; import .jsonl, .parquet or "
            ".csv files, or an HF save_to_disk folder"
        )
    return found


def input_bytes(path: Path) -> int:
    """The size of a file, or of every file in a folder."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def file_blocks(path: Path, fmt: str) -> Iterator[Block]:
    arrow_allocator()
    readers = {"jsonl": _jsonl_blocks, "parquet": _parquet_blocks, "csv": _csv_blocks}
    readers["hf"] = _hf_blocks
    return readers[fmt](path)


# --- JSON Lines ------------------------------------------------------------------------------


def _pieces(path: Path) -> Iterator[tuple[bytes, int, float]]:
    """(bytes cut at a line end, number of its first line, fraction read) for the file."""
    size = max(1, path.stat().st_size)
    line = 1
    rest = b""
    with path.open("rb") as fh:
        while True:
            data = fh.read(JSONL_PIECE_BYTES)
            if data:
                piece = rest + data
                cut = piece.rfind(b"\n") + 1
                if cut == 0:
                    rest = piece
                    continue
                piece, rest = piece[:cut], piece[cut:]
            else:
                piece, rest = rest, b""
            if piece:
                yield piece, line, min(1.0, fh.tell() / size)
                line += piece.count(b"\n")
            if not data:
                return


def _line_numbers(piece: bytes, first_line: int) -> list[int]:
    """The line number of each row pyarrow reads from `piece` (it skips blank lines)."""
    return [first_line + i for i, text in enumerate(piece.split(b"\n")) if text.strip() != b""]


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def _bad_line(piece: bytes, first_line: int) -> str | None:
    """What is wrong with the first line `json.loads` refuses or that is not an object."""
    for offset, text in enumerate(piece.split(b"\n")):
        if not text.strip():
            continue
        number = first_line + offset
        try:
            value = json.loads(text)
        except ValueError as exc:
            return f"line {number}: not valid JSON ({exc})"
        if not isinstance(value, dict):
            return (
                f"line {number}: expected one JSON object per line (JSON Lines), "
                f"got a {_json_kind(value)}"
            )
    return None


def _parse_piece(piece: bytes, first_line: int) -> pa.Table:
    options = pjson.ReadOptions(use_threads=False, block_size=len(piece) + 1)
    try:
        table = pjson.read_json(pa.BufferReader(piece), read_options=options)
    except pa.ArrowInvalid as exc:
        raise ImportProblem(_explain(piece, first_line, str(exc))) from None
    # pyarrow reads "2024-01-01" as a timestamp; an import keeps the text as it was written.
    dated = [f for f in table.schema if pa.types.is_temporal(f.type)]
    if dated:
        schema = pa.schema([pa.field(f.name, pa.string()) for f in dated])
        parse = pjson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
        table = pjson.read_json(pa.BufferReader(piece), options, parse)
    return table


def _explain(piece: bytes, first_line: int, message: str) -> str:
    bad = _bad_line(piece, first_line)
    if bad is not None:
        return bad
    message = message.removeprefix("JSON parse error: ")
    row = _ROW_IN_MESSAGE.search(message)
    last_line = first_line + piece.count(b"\n")
    where = f"lines {first_line}-{last_line}"
    if row:
        lines = _line_numbers(piece, first_line)
        index = int(row.group(1))
        where = f"line {lines[index]}" if index < len(lines) else where
        message = message[: row.start()]
    changed = _CHANGED.search(message)
    if changed:
        column = changed.group(1).lstrip("/").replace("/", ".") or "(the row)"
        now, before = (_KINDS.get(k, f"a {k}") for k in (changed.group(3), changed.group(2)))
        return f"{where}: column {column!r} is {now} here but {before} in the lines before"
    return f"{where}: {message}"


def _jsonl_blocks(path: Path) -> Iterator[Block]:
    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="jsonl") as pool:
        for piece, first_line, done in _pieces(path):
            pending.append((pool.submit(_parse_piece, piece, first_line), piece, first_line, done))
            if len(pending) >= 2:
                yield _jsonl_block(*pending.popleft())
        while pending:
            yield _jsonl_block(*pending.popleft())


def _jsonl_block(future: Any, piece: bytes, first_line: int, done: float) -> Block:
    table = future.result()
    lines: list[int] = []

    def where(index: int) -> str:
        if not lines:
            lines.extend(_line_numbers(piece, first_line))
        return f"line {lines[index]}" if index < len(lines) else f"line {first_line}"

    return Block(table=table, where=where, done=done)


# --- Parquet, CSV, HF folders ----------------------------------------------------------------


def _rows_where(first_row: int) -> Callable[[int], str]:
    return lambda index: f"row {first_row + index + 1}"


def _parquet_blocks(path: Path) -> Iterator[Block]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise ImportProblem(f"{path.name}: not a readable Parquet file ({exc})") from None
    total = max(1, parquet.metadata.num_rows)
    first = 0
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        table = pa.Table.from_batches([batch])
        yield Block(table=table, where=_rows_where(first), done=(first + len(table)) / total)
        first += len(table)


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        return next(csv.reader(fh), [])


def _csv_blocks(path: Path) -> Iterator[Block]:
    # Every column as text: CSV has no types, and guessing them per block would make one
    # block's "42" a number and the next block's "n/a" an error.
    names = _csv_header(path)
    convert = pcsv.ConvertOptions(column_types={name: pa.string() for name in names})
    size = max(1, path.stat().st_size)
    first = 0
    with path.open("rb") as fh:
        try:
            reader = pcsv.open_csv(
                fh, read_options=pcsv.ReadOptions(block_size=8 << 20), convert_options=convert
            )
            for batch in reader:
                table = pa.Table.from_batches([batch])
                done = min(1.0, fh.tell() / size)
                yield Block(table=table, where=_rows_where(first), done=done)
                first += len(table)
        except pa.ArrowInvalid as exc:
            message = str(exc).removeprefix("CSV parse error: ")
            raise ImportProblem(f"after row {first}: {message}") from None


def _hf_blocks(path: Path) -> Iterator[Block]:
    import datasets

    if (path / "dataset_dict.json").exists():
        splits = sorted(p.name for p in path.iterdir() if (p / "state.json").exists())
        raise ImportProblem(
            f"{path} holds several splits ({', '.join(splits)}): name one split's folder, "
            f"e.g. {path / (splits[0] if splits else 'train')}"
        )
    if not (path / "state.json").exists():
        raise ImportProblem(f"{path} is not an HF save_to_disk folder (no state.json)")
    try:
        dataset = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many kinds; the user needs its words
        raise ImportProblem(f"{path}: cannot be read as an HF dataset ({exc})") from None
    table = dataset.data.table
    if dataset._indices is not None:  # a saved selection: the rows it names, in its order
        table = table.take(dataset._indices.column(0))
    total = max(1, table.num_rows)
    first = 0
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        block = pa.Table.from_batches([batch])
        yield Block(table=block, where=_rows_where(first), done=(first + len(block)) / total)
        first += len(block)


# --- the preview -----------------------------------------------------------------------------


def file_head(path: Path, fmt: str, rows: int = 10) -> pa.Table:
    """The first `rows` rows, reading only the head of the file."""
    if fmt == "jsonl":
        head = io.BytesIO()
        with path.open("rb") as fh:
            for count, line in enumerate(fh):
                head.write(line)
                if count + 1 >= rows or head.tell() > 8 * JSONL_PIECE_BYTES:
                    break
        piece = head.getvalue()
        return _parse_piece(piece if piece.endswith(b"\n") else piece + b"\n", 1)
    if fmt == "csv":
        names = _csv_header(path)
        convert = pcsv.ConvertOptions(column_types={name: pa.string() for name in names})
        with path.open("rb") as fh:
            try:
                reader = pcsv.open_csv(
                    fh, read_options=pcsv.ReadOptions(block_size=1 << 20), convert_options=convert
                )
                batch = reader.read_next_batch()
            except StopIteration:
                return pa.table({name: pa.array([], pa.string()) for name in names})
            except pa.ArrowInvalid as exc:
                raise ImportProblem(str(exc).removeprefix("CSV parse error: ")) from None
        return pa.Table.from_batches([batch]).slice(0, rows)
    for block in file_blocks(path, fmt):
        return block.table.slice(0, rows)
    return pa.table({})
