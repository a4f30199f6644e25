"""Versions with known rows for the browsing tests (rows table, row view, stats, diff)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from r1studio.curation.models import Dataset, DatasetVersion
from r1studio.curation.services import dataset_create, version_write

SOURCES = ("gsm8k", "math", "aime")
XSS = "<script>alert(1)</script>"


def known_rows(n: int = 300) -> list[dict[str, Any]]:
    """Row i: source SOURCES[i % 3], correct when i % 4 == 0, a think of 100 + 10*i
    characters, the word "needle" in rows 7, 70 and 170 (in varied case), a split column."""
    rows = []
    for i in range(n):
        think = f"Step {i}: " + "x" * (100 + 10 * i - len(f"Step {i}: "))
        if i in (7, 70, 170):
            think = think[:20] + ("NeEdLe" if i == 70 else "needle") + think[26:]
        rows.append(
            {
                "problem": f"Problem {i}: what is {i} + {i}?",
                "think": think,
                "answer": str(2 * i),
                "reference": str(2 * i),
                "source": SOURCES[i % 3],
                "correct": i % 4 == 0,
                "split": "validation" if i % 10 == 0 else "train",
            }
        )
    return rows


def make_version(
    user: Any,
    rows: list[dict[str, Any]] | None = None,
    *,
    dataset: Dataset | None = None,
    name: str = "reasoning",
    provenance_type: str = "import",
    provenance: dict[str, Any] | None = None,
    **kwargs: Any,
) -> DatasetVersion:
    if dataset is None:
        dataset = dataset_create(user=user, name=name, kind="reasoning")
    return version_write(
        dataset=dataset,
        table=pa.Table.from_pylist(known_rows() if rows is None else rows),
        user=user,
        provenance_type=provenance_type,
        provenance={"file": "rows.jsonl", "mapping": {"problem": "question"}}
        if provenance is None
        else provenance,
        **kwargs,
    )
