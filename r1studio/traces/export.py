"""Traces as downloadable files: CSV and JSON Lines, written chunk by chunk.

`export_lines(chunks, fmt)` turns the chunks of `traces_export_chunks` into encoded pieces of
the file, one piece per chunk, so a response can stream an export of any size. Completions and
prompts are model and user text: in CSV, a cell that a spreadsheet would read as a formula
(`=`, `+`, `-`, `@` first) is prefixed with `'`, OWASP's advice against CSV injection; JSON
Lines keeps every text exact.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from r1studio.traces.models import Trace

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
FIELDS = (
    "id", "run_id", "run_name", "step", "source", "benchmark", "position", "prompt",
    "completion", "think", "answer", "reference", "rewards", "reward", "advantage", "length",
    "correct", "well_formed", "created_at",
)  # fmt: skip
TEXT_FIELDS = {"run_name", "benchmark", "prompt", "completion", "think", "answer", "reference"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def trace_record(trace: Trace) -> dict[str, Any]:
    """One trace as the export's flat record (FIELDS, in order)."""
    return {
        "id": trace.pk,
        "run_id": trace.run_id,
        "run_name": trace.run.name,
        "step": trace.step,
        "source": trace.source,
        "benchmark": trace.benchmark,
        "position": trace.position,
        "prompt": trace.prompt,
        "completion": trace.completion,
        "think": trace.think,
        "answer": trace.answer,
        "reference": trace.reference,
        "rewards": trace.rewards or {},
        "reward": trace.reward,
        "advantage": trace.advantage,
        "length": trace.length,
        "correct": trace.correct,
        "well_formed": trace.well_formed,
        "created_at": trace.created_at.isoformat(),
    }


def _csv_cell(field: str, value: Any) -> Any:
    if value is None:
        return ""
    if field == "rewards":
        return json.dumps(value, ensure_ascii=False)
    if field in TEXT_FIELDS and isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def export_lines(chunks: Iterable[list[Trace]], fmt: str) -> Iterator[bytes]:
    """The file `fmt` (csv | jsonl) as encoded pieces: the CSV header, then one piece a chunk."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if fmt == "csv":
        writer.writerow(FIELDS)
        yield buffer.getvalue().encode("utf-8")
    for chunk in chunks:
        buffer.seek(0)
        buffer.truncate()
        for trace in chunk:
            record = trace_record(trace)
            if fmt == "csv":
                writer.writerow([_csv_cell(f, record[f]) for f in FIELDS])
            else:
                buffer.write(json.dumps(record, ensure_ascii=False) + "\n")
        yield buffer.getvalue().encode("utf-8")
