"""Reading a version's Parquet file without loading it: pages, one row, histograms, diffs.

DuckDB does the work (SQL over Parquet; MIT; its Parquet reader is built in, and the
connection refuses to install or load any extension, so nothing is ever downloaded).

A version holds long text (reasoning of 2-8k characters): filtering on a length, or showing
the first words of each column, would decompress all of it on every page. So the first time a
version file is browsed, one pass writes its *browse file*, a cache under
`<data dir>/cache/browse/` (safe to delete: it is rebuilt when missing): each row's position,
every text column's length and first PREVIEW_CHARS characters, and the small columns (source,
correct, split, ...) as they are, about 6% of the version's size; beside it a JSON summary
(the columns, the values a filter menu offers, the language mix of a sample). Counts,
filters, pages and histograms read only the browse file; a page is two queries: the
positions of the rows that pass the filters (small columns only), then those rows'
previews (row groups outside the positions' range skipped by their min/max).

A text search has to read the text itself: it scans the version file once per (query,
filters) and returns up to SEARCH_CAP matching positions, which the caller keeps and pages.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from r1studio.curation.storage import data_root, version_file

PREVIEW_CHARS = 200
ROW = "#row"  # the row's position in the version file (0-based)
LEN = "len:"  # prefix of a text column's length in characters
BROWSE_DIR = "cache/browse"
SEARCH_CAP = 10_000
# A column whose values are at most this many short strings (or booleans, small integers)
# gets a menu in the filters.
MAX_CHOICES = 50
MAX_CHOICE_CHARS = 80
# The text whose length the table shows and filters on: the reasoning when there is one.
LENGTH_PREFERENCE = ("think", "completion", "answer", "problem", "prompt", "reference")
SEARCH_PREFERENCE = ("problem", "think", "answer", "completion", "prompt")
LANGUAGE_SAMPLE_ROWS = 2000
HISTOGRAM_BINS = 40

_local = threading.local()
_build_lock = threading.Lock()


class BrowseError(ValueError):
    """A request the rows cannot answer as asked (unknown column, bad value); shown as is."""


def connection() -> duckdb.DuckDBPyConnection:
    """This thread's DuckDB connection: in memory, no extension ever installed or loaded."""
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect()
        for setting in (
            "autoinstall_known_extensions=false",
            "autoload_known_extensions=false",
            "allow_community_extensions=false",
            "parquet_metadata_cache=true",
            "memory_limit='2GB'",
            "lock_configuration=true",
        ):
            con.execute(f"SET {setting}")
        _local.con = con
    return con


def ident(name: str) -> str:
    """A column name as a quoted SQL identifier (names come from imported files)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _kind(t: pa.DataType) -> str | None:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    return None  # lists, structs (`messages`), binary: shown on the row page only


# --- the browse file -----------------------------------------------------------------------


def _browse_base(relative: str) -> Path:
    return data_root() / BROWSE_DIR / relative.replace("/", "__")


def browse_files(relative: str) -> tuple[Path, Path]:
    """The browse file and its summary for a version file (they may not exist yet)."""
    base = _browse_base(relative)
    return base.with_name(base.name + ".browse.parquet"), base.with_name(base.name + ".json")


def browse_files_remove(relative: str) -> None:
    for path in browse_files(relative):
        with contextlib.suppress(OSError):
            path.unlink()


def browse_file(relative: str) -> tuple[Path, dict[str, Any]]:
    """The browse file of a version file and its summary, built on first use."""
    target, summary_path = browse_files(relative)
    if not target.exists():
        with _build_lock:  # one build per process; another process's build is only wasted work
            if not target.exists():
                _build(version_file(relative), target, summary_path)
    return target, json.loads(summary_path.read_text())


def _atomic_path(final: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=".building-", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    return Path(tmp)


def _build(source: Path, target: Path, summary_path: Path) -> None:
    if not source.exists():
        raise BrowseError(f"the version file {source.name} is missing")
    target.parent.mkdir(parents=True, exist_ok=True)
    schema = pq.read_schema(source)
    kinds = {f.name: _kind(f.type) for f in schema}
    select = [f"file_row_number::BIGINT AS {ident(ROW)}"]
    for name, kind in kinds.items():
        if kind == "text":
            select.append(f"length({ident(name)})::INTEGER AS {ident(LEN + name)}")
            select.append(f"left({ident(name)}, {PREVIEW_CHARS}) AS {ident(name)}")
        elif kind is not None:
            select.append(ident(name))
    tmp = _atomic_path(target)
    try:
        connection().execute(
            f"COPY (SELECT {', '.join(select)} FROM read_parquet({literal(source)}, "
            f"file_row_number=true)) TO {literal(tmp)} "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 8192)"
        )
        summary = {
            "kinds": kinds,
            "rows": pq.ParquetFile(tmp).metadata.num_rows,
            "choices": _choices(tmp, kinds),
            "language": _language_sample(source, kinds),
        }
        summary_tmp = _atomic_path(summary_path)
        summary_tmp.write_text(json.dumps(summary))
        os.replace(summary_tmp, summary_path)
        os.replace(tmp, target)  # last: the browse file's presence means both are complete
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _choices(path: Path, kinds: dict[str, str | None]) -> dict[str, list[list[Any]]]:
    """{column: [[value, rows], ...]} for the columns with few distinct, short values."""
    con = connection()
    src = f"read_parquet({literal(path)})"
    out: dict[str, list[list[Any]]] = {}
    for name, kind in kinds.items():
        if kind not in ("text", "bool", "int"):
            continue
        col = ident(name)
        if kind == "text":
            longest = con.execute(f"SELECT max({ident(LEN + name)}) FROM {src}").fetchone()[0]
            if longest is None or longest > MAX_CHOICE_CHARS:
                continue
        counts = con.execute(
            f"SELECT {col}, count(*) AS n FROM {src} GROUP BY {col} ORDER BY n DESC, {col} "
            f"LIMIT {MAX_CHOICES + 1}"
        ).fetchall()
        if len(counts) <= MAX_CHOICES:
            out[name] = [[value, n] for value, n in counts]
    return out


_SCRIPTS = {
    "Latin": re.compile(r"[A-Za-z\u00c0-\u024f]"),
    "CJK": re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"),
    "Cyrillic": re.compile(r"[\u0400-\u04ff]"),
    "Arabic": re.compile(r"[\u0600-\u06ff]"),
}
# Roughly one word per 5 Latin (Cyrillic, Arabic) letters and per CJK character: a script
# is "in" a text when it has 3% of its words (R1's language-mixing problem: one sentence of
# Chinese in English reasoning), so that variable names in Chinese reasoning do not count.
_WORD_CHARS = {"Latin": 5, "CJK": 1, "Cyrillic": 5, "Arabic": 5}


def text_script(text: str) -> str:
    """The script a text is written in (`Latin`, `CJK`, ...), `mixed`, or `none`.

    >>> text_script("So 2+3 = 5, let me check."), text_script("我们先计算 so x = 5")
    ('Latin', 'CJK')
    """
    words = {name: len(p.findall(text)) / _WORD_CHARS[name] for name, p in _SCRIPTS.items()}
    total = sum(words.values())
    if total == 0:
        return "none"
    present = [name for name, n in words.items() if n >= 3 and n >= 0.03 * total]
    if len(present) > 1:
        return "mixed"
    return present[0] if present else max(words, key=words.__getitem__)


def _language_sample(source: Path, kinds: dict[str, str | None]) -> dict[str, Any]:
    """The scripts of the main text in up to LANGUAGE_SAMPLE_ROWS rows, read from a few
    row groups spread over the file (reading one whole text column costs seconds)."""
    column = next((c for c in LENGTH_PREFERENCE if kinds.get(c) == "text"), None)
    if column is None:
        return {}
    file = pq.ParquetFile(source)
    groups = file.metadata.num_row_groups
    if not groups:
        return {}
    picks = sorted({round(i * (groups - 1) / 3) for i in range(4)})
    per_group = LANGUAGE_SAMPLE_ROWS // len(picks)
    counts: dict[str, int] = {}
    sampled = 0
    for group in picks:
        values = file.read_row_group(group, columns=[column]).column(0)
        step = max(1, len(values) // per_group)
        for text in values.to_pylist()[::step][:per_group]:
            script = text_script(text or "")
            counts[script] = counts.get(script, 0) + 1
            sampled += 1
    return {"column": column, "sampled": sampled, "counts": counts}


# --- filters --------------------------------------------------------------------------------


def length_column(summary: dict[str, Any]) -> str | None:
    kinds = summary["kinds"]
    return next((c for c in LENGTH_PREFERENCE if kinds.get(c) == "text"), None) or next(
        (c for c, k in kinds.items() if k == "text"), None
    )


def _coerce(kind: str | None, name: str, value: Any) -> Any:
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes"):
                return True
            if text in ("false", "0", "no"):
                return False
            raise ValueError(value)
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise BrowseError(f"{value!r} is not a value of column {name!r}") from None


def where(
    summary: dict[str, Any], filters: dict[str, Any] | None, *, on_version: bool = False
) -> tuple[str, list[Any]]:
    """SQL for `filters` over the browse file (or, `on_version`, over the version file
    itself), with its parameters.

    `filters`: {column: value} keeps the rows whose column equals the value (given as text or
    typed; `correct=true`), `min_length` / `max_length` bound the characters of
    `length_column` (default: `think`, else the first text column of LENGTH_PREFERENCE).
    """

    def length(column: str) -> str:
        return f"length({ident(column)})" if on_version else ident(LEN + column)

    kinds = summary["kinds"]
    clauses, params = ["true"], []
    for key, value in (filters or {}).items():
        if value in (None, ""):
            continue
        if key in ("min_length", "max_length"):
            column = (filters or {}).get("length_column") or length_column(summary)
            if kinds.get(column) != "text":
                raise BrowseError(f"no text column {column!r} to measure")
            op = ">=" if key == "min_length" else "<="
            clauses.append(f"{length(column)} {op} ?")
            params.append(_coerce("int", key, value))
        elif key == "length_column":
            continue
        elif key not in kinds or kinds[key] is None:
            raise BrowseError(f"no column {key!r} to filter on")
        else:
            kind = kinds[key]
            if kind == "text" and not on_version:  # the browse file keeps a prefix
                text = _coerce(kind, key, value)
                clauses.append(f"{ident(key)} = ? AND {length(key)} = ?")
                params += [text[:PREVIEW_CHARS], len(text)]
            else:
                clauses.append(f"{ident(key)} = ?")
                params.append(_coerce(kind, key, value))
    return " AND ".join(clauses), params


# --- reads ---------------------------------------------------------------------------------


def count(relative: str, filters: dict[str, Any] | None = None) -> int:
    path, summary = browse_file(relative)
    sql, params = where(summary, filters)
    query = f"SELECT count(*) FROM read_parquet({literal(path)}) WHERE {sql}"
    return connection().execute(query, params).fetchone()[0]


def positions(
    relative: str, filters: dict[str, Any] | None, *, offset: int, limit: int
) -> list[int]:
    """The positions of the rows passing `filters`, in file order, from `offset`."""
    path, summary = browse_file(relative)
    sql, params = where(summary, filters)
    # No ORDER BY: DuckDB keeps a scan's order (preserve_insertion_order) and can stop early.
    query = f"SELECT {ident(ROW)} FROM read_parquet({literal(path)}) WHERE {sql} LIMIT ? OFFSET ?"
    return [r[0] for r in connection().execute(query, [*params, limit, offset]).fetchall()]


def search(relative: str, q: str, filters: dict[str, Any] | None) -> list[int]:
    """Positions (file order) of up to SEARCH_CAP + 1 rows passing `filters` whose problem,
    think or answer contains `q`, case-insensitive: one scan of the version file's text,
    which stops once it has found enough."""
    _, summary = browse_file(relative)
    kinds = summary["kinds"]
    columns = [c for c in SEARCH_PREFERENCE if kinds.get(c) == "text"][:3] or [
        c for c, k in kinds.items() if k == "text"
    ]
    if not columns or not q:
        return []
    sql, params = where(summary, filters, on_version=True)
    if q.lower() == q.upper():  # nothing to fold (digits, symbols): the faster exact match
        match = " OR ".join(f"contains({ident(c)}, ?)" for c in columns)
        args = [q] * len(columns)
    else:
        match = " OR ".join(f"{ident(c)} ILIKE ? ESCAPE '\\'" for c in columns)
        args = ["%" + re.sub(r"([\\%_])", r"\\\1", q) + "%"] * len(columns)
    query = (
        f"SELECT file_row_number FROM read_parquet({literal(version_file(relative))}, "
        f"file_row_number=true) WHERE {sql} AND ({match}) LIMIT {SEARCH_CAP + 1}"
    )
    return [r[0] for r in connection().execute(query, params + args).fetchall()]


def _in_list(rows: list[int]) -> str:
    return ", ".join(str(int(r)) for r in rows)


def _records(result: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in result.description]
    return [dict(zip(names, values, strict=True)) for values in result.fetchall()]


def previews(relative: str, rows: list[int]) -> list[dict[str, Any]]:
    """The browse file's record (previews, lengths, small columns) of each position, in the
    order given."""
    if not rows:
        return []
    path, _ = browse_file(relative)
    query = (
        f"SELECT * FROM read_parquet({literal(path)}) WHERE {ident(ROW)} BETWEEN ? AND ? "
        f"AND {ident(ROW)} IN ({_in_list(rows)})"
    )
    found = {r[ROW]: r for r in _records(connection().execute(query, [min(rows), max(rows)]))}
    return [found[r] for r in rows if r in found]


def full_rows(relative: str, rows: list[int]) -> list[dict[str, Any]]:
    """Whole rows of the version file at these positions (each with its position as ROW)."""
    if not rows:
        return []
    query = (
        f"SELECT file_row_number AS {ident(ROW)}, * FROM read_parquet("
        f"{literal(version_file(relative))}, file_row_number=true) "
        f"WHERE file_row_number BETWEEN ? AND ? AND file_row_number IN ({_in_list(rows)})"
    )
    found = {r[ROW]: r for r in _records(connection().execute(query, [min(rows), max(rows)]))}
    for record in found.values():
        record.pop("file_row_number", None)
    return [found[r] for r in rows if r in found]


def neighbours(
    relative: str, index: int, filters: dict[str, Any] | None
) -> tuple[int | None, int | None]:
    """The positions just before and after `index` among the rows passing `filters`."""
    path, summary = browse_file(relative)
    sql, params = where(summary, filters)
    src = f"read_parquet({literal(path)})"
    before = connection().execute(
        f"SELECT max({ident(ROW)}) FROM {src} WHERE {sql} AND {ident(ROW)} < ?", [*params, index]
    )
    previous = before.fetchone()[0]
    after = connection().execute(
        f"SELECT min({ident(ROW)}) FROM {src} WHERE {sql} AND {ident(ROW)} > ?", [*params, index]
    )
    return previous, after.fetchone()[0]


def _nice_width(span: int, bins: int) -> int:
    raw = max(1, -(-span // bins))
    for scale in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000):
        if scale >= raw:
            return scale
    return raw


def length_histogram(
    relative: str, column: str, *, bins: int = HISTOGRAM_BINS, filters: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Character lengths of a text column as `{column, width, bins: [[start, rows], ...]}`,
    counted by DuckDB over the browse file (no text is read)."""
    path, summary = browse_file(relative)
    if summary["kinds"].get(column) != "text":
        raise BrowseError(f"no text column {column!r}")
    sql, params = where(summary, filters)
    con = connection()
    src = f"read_parquet({literal(path)})"
    length = ident(LEN + column)
    lo, hi = con.execute(
        f"SELECT min({length}), max({length}) FROM {src} WHERE {sql}", params
    ).fetchone()
    if lo is None:
        return {"column": column, "width": 0, "bins": []}
    width = _nice_width(hi - lo + 1, bins)
    start = lo // width * width
    counts = con.execute(
        f"SELECT ({length} - ?) // ? AS b, count(*) FROM {src} WHERE {sql} AND {length} IS NOT NULL "
        "GROUP BY b ORDER BY b",
        [start, width, *params],
    ).fetchall()
    return {"column": column, "width": width, "bins": [[start + b * width, n] for b, n in counts]}
