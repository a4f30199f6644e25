"""Factories shared by the annotation queue tests: a dataset version, a queue, submitted labels."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from r1studio.curation.annotation.models import AnnotationItem, AnnotationQueue, Label
from r1studio.curation.annotation.queues import queue_create
from r1studio.curation.annotation.services import guideline_current, label_save
from r1studio.curation.services import dataset_create, version_write
from r1studio.runs.models import Run
from r1studio.traces.services import traces_ingest

ROWS = [
    {
        "problem": "What is 2+2?",
        "completion": "<think>Two and two.\n\nThat makes 4.</think> <answer>4</answer>",
        "reference": "4",
        "source": "toy",
    },
    {
        "problem": "What is 2+2?",
        "completion": "<think>2 plus 2 is 5</think> <answer>5</answer>",
        "reference": "4",
        "source": "toy",
    },
    {
        "problem": "What is 3+5?",
        "think": "3+5=8",
        "answer": "8",
        "reference": "8",
        "source": "toy",
        "gold_verdict": "accept",
    },
]


def make_run(owner: Any) -> Run:
    return Run.objects.create(owner=owner, name="grpo", kind="grpo", status="running")


def add_samples(run: Run, step: int, items: list[dict[str, Any]]) -> int:
    """Store `items` (see tests.studio.traces.conftest.sample) as the traces of one step."""
    return traces_ingest(run=run, events=[{"type": "samples", "step": step, "items": items}])


def make_version(user: Any, rows: list[dict[str, Any]] = ROWS, name: str = "prompts") -> Any:
    dataset = dataset_create(user=user, name=name)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return version_write(
        dataset=dataset,
        table=pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows]),
        user=user,
        provenance_type="import",
        provenance={"file": "rows.jsonl"},
    )


def make_queue(user: Any, *, annotators: list, overlap: int = 1, **kwargs: Any) -> AnnotationQueue:
    version = kwargs.pop("version", None) or make_version(user)
    return queue_create(
        user=user,
        name=kwargs.pop("name", "cold start"),
        version=version,
        overlap=overlap,
        annotators=annotators,
        **kwargs,
    )


def label_item(item: AnnotationItem, user: Any, **values: Any) -> Label:
    """Submit `user`'s label of `item` under the guidelines in force (no lease needed)."""
    guideline = guideline_current(queue=item.queue)
    label, _ = Label.objects.get_or_create(
        item=item,
        annotator=user,
        defaults={
            "think": item.data.get("think", ""),
            "answer": item.data.get("answer", ""),
            "guideline": guideline.number if guideline else 0,
        },
    )
    seconds = values.pop("seconds", 0.0)
    return label_save(
        label=label, user=user, values=values, version=label.version, submit=True, seconds=seconds
    )
