"""Studio dataset versions in configs (`dataset:NAME@N`) and the Parquet files they resolve to.

The web process accepts the reference as a name (the studio checks the version exists and
resolves it to its file when the run starts); the pipeline refuses to run with one unresolved.
A version's Parquet file trains an SFT stage whether its rows hold chat `messages` (as structs,
or as JSON text) or `problem` + `think` + `answer` columns.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import access
from pipeline.checks import validate_config
from pipeline.config import parse_config
from pipeline.data import DataError, load_sft_examples, load_source, source_kind
from pipeline.stages.common import load_tokenizer
from pipeline.template import parse_completion


def sft(source: str, model: str = "org/model") -> dict:
    return {"kind": "sft", "model": {"path": model}, "data": {"source": source}}


def test_it_takes_a_dataset_reference_for_a_name_not_a_path(tmp_path):
    roots = access.allowed_roots(data_dir=tmp_path, extra=[])

    assert source_kind("dataset:cold-start@3") == "dataset"
    assert source_kind("dataset:cold-start") == "dataset"
    assert access.is_name("dataset:cold-start@3")
    # Allowed where the web process checks paths: not a file outside the roots.
    assert validate_config(sft("dataset:cold-start@3"), roots, machine=False) == []


def test_it_refuses_to_run_a_stage_on_an_unresolved_reference(tmp_path):
    roots = access.allowed_roots(data_dir=tmp_path, extra=[])

    errors = validate_config(sft("dataset:cold-start@3"), roots)

    assert [e["loc"] for e in errors] == ["data.source"]
    assert "studio dataset version" in errors[0]["msg"]
    assert "Parquet file's path" in errors[0]["msg"]
    with pytest.raises(DataError, match="studio dataset version"):
        load_source("dataset:cold-start@3")


def _section(toy_dir: Path, source: Path, **data) -> object:
    config = parse_config(
        {
            "kind": "sft",
            "model": {"path": str(toy_dir / "models" / "base")},
            "data": {"source": str(source), **data},
        }
    )
    return config.data


def _toy_rows(toy_dir: Path, n: int = 8) -> list[dict]:
    lines = (toy_dir / "data" / "sft.jsonl").read_text().splitlines()[:n]
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("shape", ["messages", "messages as JSON text", "problem/think/answer"])
def test_it_trains_sft_on_a_parquet_version_of_any_common_shape(toy_dir, tmp_path, shape):
    rows = _toy_rows(toy_dir)
    if shape == "messages":
        table = pa.Table.from_pylist(rows)
    elif shape == "messages as JSON text":
        table = pa.Table.from_pylist([{"messages": json.dumps(r["messages"])} for r in rows])
    else:
        parts = [parse_completion(r["messages"][-1]["content"]) for r in rows]
        table = pa.Table.from_pylist(
            [
                {"problem": r["messages"][0]["content"], "think": p.think, "answer": p.answer}
                for r, p in zip(rows, parts, strict=True)
            ]
        )
    path = tmp_path / "version.parquet"
    pq.write_table(table, path)
    tokenizer = load_tokenizer(str(toy_dir / "models" / "base"))

    examples = load_sft_examples(_section(toy_dir, path), tokenizer)

    assert len(examples) == len(rows)
    for example, row in zip(examples, rows, strict=True):
        assert row["messages"][0]["content"] in example["prompt"]
        # the same target whichever shape stored it
        assert example["completion"] == row["messages"][-1]["content"]


def test_it_trains_a_row_without_reasoning_on_its_answer_alone(toy_dir, tmp_path):
    path = tmp_path / "mixed.parquet"
    pq.write_table(
        pa.Table.from_pylist([{"problem": "Capital of France?", "think": None, "answer": "Paris"}]),
        path,
    )
    tokenizer = load_tokenizer(str(toy_dir / "models" / "base"))

    [example] = load_sft_examples(_section(toy_dir, path), tokenizer)

    assert example["completion"] == "<answer>Paris</answer>"


def test_it_names_the_shapes_it_accepts_when_none_fits(toy_dir, tmp_path):
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": "1+1?", "solution": "2"}]), path)
    tokenizer = load_tokenizer(str(toy_dir / "models" / "base"))

    with pytest.raises(DataError, match="'think'"):
        load_sft_examples(_section(toy_dir, path), tokenizer)
