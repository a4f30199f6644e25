"""pipeline.data: the short names benchmarks go by in metric names and on the Benchmarks page."""

from __future__ import annotations

import pytest

from pipeline.data import benchmark_label


@pytest.mark.parametrize(
    ("name", "path", "label"),
    [
        ("math500", "", "math500"),
        ("toy-heldout", "/srv/toy/data/heldout.jsonl", "toy-heldout"),
        ("/srv/toy/data/heldout.jsonl", "", "heldout"),
        ("", "/srv/toy/data/heldout.jsonl", "heldout"),
        ("data/test.parquet", "", "test"),
        ("HuggingFaceH4/MATH-500", "", "MATH-500"),
        ("/srv/benchmarks/aime/", "", "aime"),
        ("", "", "benchmark"),
    ],
)
def test_it_names_a_benchmark_by_its_preset_label_or_file_stem(
    name: str, path: str, label: str
) -> None:
    assert benchmark_label(name, path) == label


def test_it_never_puts_a_slash_in_a_label() -> None:
    for source in ("/a/b/c.jsonl", "a\\b\\c.jsonl", "org/name", "x/"):
        assert "/" not in benchmark_label(source)
