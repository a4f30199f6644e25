"""A dataset version from the trace browser's selection (issue 10, "From traces").

The trace browser's filters (run, step range, reward, correct, word search, source) select
traces; `version_from_traces` writes them as a new version: one row per trace with the
problem (the user's message of the prompt, the chat template parsed away), `think` and
`answer` parsed from the completion, the `reference`, the `reward`, `correct` and the source
`trace:<run id>`. Provenance: the filters, the runs and the count.

It runs in the request, so it is bounded: up to MAX_TRACES traces (a few seconds); a larger
selection is refused with a message that says how to narrow it. "Append" puts the rows
after those of the dataset's latest version (its parent), read whole, so that version may
have up to APPEND_MAX_ROWS rows.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipeline.template import parse_completion, prompt_prefills_think
from r1studio.curation import storage
from r1studio.curation.models import Dataset, DatasetKind, DatasetVersion, ProvenanceType
from r1studio.curation.services import (
    DatasetError,
    dataset_create,
    dataset_name_check,
    version_write,
)
from r1studio.traces.selectors import traces_filtered
from r1studio.traces.text import conversation

MAX_TRACES = 50_000
APPEND_MAX_ROWS = 200_000
CHUNK = 2_000
SCHEMA = pa.schema(
    [
        ("problem", pa.string()),
        ("think", pa.string()),
        ("answer", pa.string()),
        ("reference", pa.string()),
        ("reward", pa.float64()),
        ("correct", pa.bool_()),
        ("source", pa.string()),
    ]
)


def problem_text(prompt: str) -> str:
    """The problem a prompt asks: its last user message, or the whole text outside a chat
    template."""
    messages = conversation(prompt or "")
    users = [m["text"] for m in messages if m["role"] == "user"]
    return users[-1] if users else (prompt or "").strip()


def trace_row(
    prompt: str, completion: str, reference: str, reward: Any, correct: Any, run_id: int
) -> dict:
    parsed = parse_completion(completion, think_prefilled=prompt_prefills_think(prompt))
    return {
        "problem": problem_text(prompt),
        "think": parsed.think,
        "answer": parsed.answer,
        "reference": reference or None,
        "reward": reward,
        "correct": correct,
        "source": f"trace:{run_id}",
    }


def _json_safe(filters: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in filters.items() if isinstance(v, str | int | float | bool)}


def version_from_traces(
    *,
    user: Any,
    dataset_name: str,
    kind: str = DatasetKind.OTHER,
    append: bool = False,
    run: Any = None,
    filters: dict[str, Any],
) -> DatasetVersion:
    """A new version of dataset `dataset_name` (created with `kind` when new) holding the
    traces `user` may read that pass `filters` (`traces_filtered`'s keyword arguments) —
    after the latest version's rows when `append`. DatasetError when there are none, more
    than MAX_TRACES, or too many rows to append to."""
    name = dataset_name_check(dataset_name)
    qs = traces_filtered(user=user, run=run, **filters)
    count = qs.count()
    if count == 0:
        raise DatasetError("No traces match these filters: nothing to add.")
    if count > MAX_TRACES:
        raise DatasetError(
            f"These filters select {count:,} traces; a dataset version is made from at most "
            f"{MAX_TRACES:,} at a time. Narrow them (a run, a step range, correct only) and "
            "add the rest as another version."
        )
    dataset = Dataset.objects.filter(name=name).first()
    parent = dataset.versions.order_by("-number").first() if dataset and append else None
    if parent is not None and parent.rows > APPEND_MAX_ROWS:
        raise DatasetError(
            f"{parent} has {parent.rows:,} rows, more than the {APPEND_MAX_ROWS:,} a version "
            "made from traces can append to: add the traces as a version of their own."
        )

    # --- the rows, a chunk at a time (completions are long) -----------------------------
    batches, run_ids, rows = [], set(), []
    fields = ("run_id", "prompt", "completion", "reference", "reward", "correct")
    for run_id, prompt, completion, reference, reward, correct in (
        qs.order_by("run_id", "step", "id").values_list(*fields).iterator(chunk_size=CHUNK)
    ):
        run_ids.add(run_id)
        rows.append(trace_row(prompt, completion, reference, reward, correct, run_id))
        if len(rows) == CHUNK:
            batches.append(pa.RecordBatch.from_pylist(rows, schema=SCHEMA))
            rows = []
    if rows:
        batches.append(pa.RecordBatch.from_pylist(rows, schema=SCHEMA))
    table = pa.Table.from_batches(batches, schema=SCHEMA)
    added = table.num_rows
    if parent is not None:
        previous = storage.parquet_open(parent.path).read()
        table = pa.concat_tables([previous, table], promote_options="permissive")

    # --- the version ----------------------------------------------------------------------
    if dataset is None:
        dataset = dataset_create(user=user, name=name, kind=kind)
    provenance = {
        "filters": {**_json_safe(filters), **({"run": run.pk} if run is not None else {})},
        "run_ids": sorted(run_ids),
        "count": added,
        "appended_to": parent.number if parent else None,
    }
    return version_write(
        dataset=dataset,
        table=table,
        user=user,
        provenance_type=ProvenanceType.TRACES,
        provenance=provenance,
        parent=parent,
    )
