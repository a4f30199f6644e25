"""Curation operations (pipeline.curation, pipeline.dedup): every filter keeps or drops with a
reason, duplicates and benchmark overlaps are found, mixing, sampling and the split are seeded,
and the funnel adds up."""

from __future__ import annotations

import doctest
import importlib
import json
import random

import numpy as np
import pyarrow as pa
import pytest

from pipeline.curation import OperationError, apply_operations, filter_rows, parse_operations
from pipeline.curation_filters import field_texts, joined_texts
from pipeline.data import benchmarks_dir
from pipeline.dedup import BenchmarkIndex, ExactDuplicates, NearDuplicates, _KeyStore

WORDS = [
    "we",
    "add",
    "the",
    "two",
    "numbers",
    "then",
    "carry",
    "the",
    "one",
    "so",
    "the",
    "sum",
    "is",
    "check",
    "again",
    "because",
    "each",
    "term",
    "counts",
    "twice",
    "hence",
    "divide",
    "by",
    "two",
    "and",
    "the",
    "result",
    "follows",
    "from",
    "the",
    "previous",
    "step",
    "wait",
]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) + str(rng.randint(0, 99)) for _ in range(words))


def _row(problem: str, think: str, answer: str = "4", reference: str = "4") -> dict:
    return {"problem": problem, "think": think, "answer": answer, "reference": reference}


def _math500(index: int) -> str:
    with (benchmarks_dir() / "math500.jsonl").open() as fh:
        return [json.loads(line) for line in fh][index]["problem"]


def _funnel_adds_up(result, rows_in: int) -> None:
    kept, dropped, funnel = result
    assert funnel[0]["rows_in"] == rows_in
    for before, after in zip(funnel, funnel[1:], strict=False):
        assert after["rows_in"] == before["rows_out"]
    for step in funnel:
        assert step["rows_out"] == step["rows_in"] - step["dropped"] + step.get("added", 0)
        reasons = dropped.column("reason").to_pylist() if dropped.num_rows else []
        assert reasons.count(step["step"]) == step["dropped"]
    assert funnel[-1]["rows_out"] == kept.num_rows
    assert dropped.num_rows == sum(s["dropped"] for s in funnel)


@pytest.mark.parametrize(
    "module", ["pipeline.curation", "pipeline.curation_filters", "pipeline.dedup"]
)
def test_it_keeps_its_docstring_examples_true(module):
    assert doctest.testmod(importlib.import_module(module)).failed == 0


# ---------------------------------------------------------------------------------------------
# The R1 rejection filters


def test_it_verifies_answers_against_the_reference_with_math_verify():
    rows = [
        _row("a", "x", answer="\\frac{1}{2}", reference="0.5"),
        _row("b", "x", answer="7", reference="8"),
        _row("c", "x", answer="7", reference="\\frac{"),
    ]
    reasons = filter_rows(rows, {"op": "verify"})
    assert reasons[0] is None
    assert reasons[1] == "answer '7' is not the reference '8'"
    assert "cannot be read" in reasons[2]
    assert filter_rows(rows, {"op": "verify", "keep_unjudged": True})[2] is None


def test_it_reads_the_answer_out_of_a_completion_when_there_is_no_answer_column():
    rows = [
        {"completion": "<think>2 and 2</think><answer>4</answer>", "reference": "4"},
        {"completion": "so it is \\boxed{5}", "reference": "4"},
    ]
    assert filter_rows(rows, {"op": "verify"}) == [None, "answer '5' is not the reference '4'"]


def test_it_drops_reasoning_that_mixes_languages():
    english = "we add the numbers and check the result twice before we answer"
    mixed = english + " 我们先计算这个数的平方然后再检查"
    reasons = filter_rows([_row("p", english), _row("p", mixed)], {"op": "language"})
    assert reasons[0] is None
    assert reasons[1].endswith("of the words are in en (needs 95%)")


def test_it_drops_long_paragraphs_and_code_blocks_in_the_reasoning():
    short = "first step.\n\nsecond step."
    long = "first step.\n\n" + "a long stretch " * 300
    code = "let me check.\n```python\nprint(2 + 2)\n```\nok"
    paragraphs = filter_rows([_row("p", short), _row("p", long)], {"op": "long_paragraphs"})
    assert paragraphs == [None, "a paragraph of 4,499 characters (max 3,000)"]
    blocks = filter_rows([_row("p", short), _row("p", code)], {"op": "code_blocks"})
    assert blocks == [None, "1 code block in the reasoning"]


def test_it_measures_length_in_estimated_tokens_or_with_a_real_tokenizer(toy_dir):
    rows = [{"completion": "x" * 40}, {"completion": "x" * 400}]
    estimated = filter_rows(rows, {"op": "length", "max_tokens": 50})
    assert estimated == [None, "100 tokens (chars / 4), over 50"]
    assert filter_rows(rows, {"op": "length", "max_tokens": 0, "min_tokens": 20})[0] == (
        "10 tokens (chars / 4), under 20"
    )
    words = [{"completion": "1 + 2 = 3"}, {"completion": " ".join(["1 + 2 = 3"] * 40)}]
    tokenizer = str(toy_dir / "models" / "base")
    counted = filter_rows(words, {"op": "length", "max_tokens": 60, "tokenizer": tokenizer})
    assert counted[0] is None and counted[1].endswith("tokens, over 60")


def test_it_drops_repetitive_text():
    rng = random.Random(0)
    varied = _text(rng, 200)
    looping = "so the answer is four " * 50
    reasons = filter_rows(
        [{"completion": varied}, {"completion": looping}], {"op": "repetition", "max_share": 0.3}
    )
    assert reasons[0] is None and reasons[1].startswith("98% of its word 3-grams repeat")


def test_it_finds_fields_in_chats_and_tagged_completions():
    batch = pa.RecordBatch.from_pylist(
        [
            {
                "messages": json.dumps(
                    [
                        {"role": "user", "content": "What is 2+2?"},
                        {"role": "assistant", "content": "<think>2+2=4</think><answer>4</answer>"},
                    ]
                )
            }
        ]
    )
    assert field_texts(batch, "problem").to_pylist() == ["What is 2+2?"]
    assert field_texts(batch, "think").to_pylist() == ["2+2=4"]
    assert field_texts(batch, "answer").to_pylist() == ["4"]
    rows = pa.RecordBatch.from_pylist([_row("p", "t", answer="a")])
    assert field_texts(rows, "completion").to_pylist() == [
        "<think>\nt\n</think>\n<answer>\na\n</answer>"
    ]
    # Joined with other fields, the completion's pieces go straight into the joined text.
    both = pa.RecordBatch.from_pylist([_row("p", "t", answer="a"), _row("q", None, answer="b")])
    expected = [
        f"{problem}\n{completion}"
        for problem, completion in zip(
            field_texts(both, "problem").to_pylist(),
            field_texts(both, "completion").to_pylist(),
            strict=True,
        )
    ]
    assert joined_texts(both, ["problem", "completion"]).to_pylist() == expected
    assert expected[1] == "q\n<think>\n\n</think>\n<answer>\nb\n</answer>"


# ---------------------------------------------------------------------------------------------
# Duplicates and decontamination


def test_it_finds_exact_duplicates_up_to_whitespace_only():
    texts = ["the sum is 4", "the  sum\nis 4 ", "The sum is 4", "the sum is 5", "the sum is 4"]
    assert ExactDuplicates().check(texts).tolist() == [-1, 0, -1, -1, 0]


def test_it_finds_near_duplicates_and_leaves_different_texts_alone():
    rng = random.Random(1)
    originals = [_text(rng, 600) for _ in range(50)]
    edited = []
    for text in originals[:25]:
        words = text.split()
        for i in rng.sample(range(len(words)), 2):  # Jaccard about 0.97
            words[i] = "changed"
        edited.append(" ".join(words))
    near = NearDuplicates(threshold=0.8)
    assert near.check(originals).tolist() == [-1] * 50
    later = near.check(edited + [_text(rng, 600) for _ in range(25)])
    assert later.tolist() == list(range(25)) + [-1] * 25


def test_it_compares_only_within_a_group_when_asked():
    texts = ["same completion text here"] * 4
    assert NearDuplicates().check(texts, groups=["p1", "p2", "p1", "p2"]).tolist() == [-1, -1, 0, 1]


def test_it_estimates_jaccard_similarity_with_its_minhash():
    rng = random.Random(2)
    a = [f"w{rng.randint(0, 10**6)}" for _ in range(2000)]
    b = a[:1500] + [f"v{i}" for i in range(500)]  # 1496 shared 5-shingles of 2496: J = 0.6
    near = NearDuplicates(num_perm=256)
    sig = near.signatures([" ".join(a), " ".join(b)])
    assert abs((sig[0] == sig[1]).mean() - 1496 / 2496) < 0.08


def test_its_key_store_remembers_first_rows_across_many_batches():
    store, truth = _KeyStore(), {}
    rng = np.random.default_rng(0)
    row = 0
    for _ in range(60):
        keys = rng.integers(0, 5000, 200).astype(np.uint64)
        rows = np.arange(row, row + len(keys))
        expected = []
        for key, r in zip(keys.tolist(), rows.tolist(), strict=True):
            expected.append(truth.get(key, -1))
            truth.setdefault(key, r)
        assert store.first_seen(keys, rows).tolist() == expected
        row += len(keys)
    assert len(store) == len(truth) and len(store.runs) < 12


def test_it_decontaminates_against_a_real_math500_problem():
    leaked = _math500(42)
    rows = [
        {"problem": "Please help: " + leaked + " Show your work."},
        {"problem": "What is the sum of the first ten positive integers?"},
    ]
    reasons = filter_rows(rows, {"op": "decontaminate", "benchmarks": ["math500"]})
    assert reasons[0].startswith('overlaps math500 problem 42 ("The solution to $-4 < 2(x - 1)')
    assert reasons[1] is None


def test_it_matches_short_benchmark_problems_whole(tmp_path):
    bench = tmp_path / "tiny.jsonl"
    bench.write_text(json.dumps({"problem": "Compute 2+3.", "answer": "5"}) + "\n")
    index = BenchmarkIndex([str(bench)], n=8)
    assert index.check(["compute 2 + 3", "Compute 2+3 and 4+5", ""]) == [0, None, None]


# ---------------------------------------------------------------------------------------------
# Mixing, sampling, split and the funnel


def test_it_mixes_versions_in_the_given_ratios():
    reasoning = [_row(f"r{i}", "t") for i in range(60)]
    other = pa.Table.from_pylist([{"problem": f"n{i}", "source": "chat"} for i in range(50)])
    parts = [{"version": "input", "ratio": 3}, {"version": 7, "ratio": 1}]
    versions = {7: other}.__getitem__

    # As many rows as the ratios allow: all 60 input rows and 20 of the other version's.
    kept, dropped, funnel = apply_operations(
        [reasoning], [{"op": "mix", "parts": parts}], versions=versions
    )
    problems = kept.column("problem").to_pylist()
    assert (len(problems), sum(p.startswith("n") for p in problems)) == (80, 20)
    assert kept.column("source").null_count == 60 and dropped.num_rows == 0

    # A set size: 30 input rows and 10 others; the 30 input rows left out are dropped rows.
    mix = {"op": "mix", "parts": parts, "rows": 40, "seed": 1}
    kept, dropped, funnel = apply_operations([reasoning], [mix], versions=versions)
    assert sum(p.startswith("r") for p in kept.column("problem").to_pylist()) == 30
    assert funnel == [
        {"step": "mix", "op": "mix", "rows_in": 60, "rows_out": 40, "dropped": 30, "added": 10}
    ]
    assert set(dropped.column("reason").to_pylist()) == {"mix"}
    assert apply_operations([reasoning], [mix], versions=versions).kept.equals(kept)


def test_it_says_which_part_of_a_mix_is_too_small():
    mix = {
        "op": "mix",
        "rows": 100,
        "parts": [{"version": "input", "ratio": 1}, {"version": 7, "ratio": 1}],
    }
    other = pa.Table.from_pylist([{"problem": "n"}] * 10)
    with pytest.raises(OperationError, match=r"operation 1 \(mix\), parts.0: the input has 3"):
        apply_operations([[_row("p", "t")] * 3], [mix], versions={7: other}.__getitem__)


def test_it_samples_with_a_seed_by_count_or_fraction():
    rows = [_row(f"p{i}", "t") for i in range(1000)]

    def sample(**params):
        return apply_operations([rows], [{"op": "sample", **params}]).kept.column("problem")

    assert len(sample(n=100, seed=1)) == 100 and len(sample(fraction=0.25)) == 250
    assert sample(n=100, seed=1).equals(sample(n=100, seed=1))
    assert not sample(n=100, seed=1).equals(sample(n=100, seed=2))
    numbers = [int(p[1:]) for p in sample(n=100, seed=1).to_pylist()]
    assert numbers == sorted(numbers)  # the rows keep their order


def test_it_splits_off_a_seeded_validation_set():
    rows = [_row(f"p{i}", "t") for i in range(200)]
    kept, dropped, funnel = apply_operations([rows], [{"op": "split", "fraction": 0.1, "seed": 3}])
    split = kept.column("split").to_pylist()
    assert split.count("validation") == 20 and split.count("train") == 180
    assert dropped.num_rows == 0 and funnel[0]["rows_out"] == 200
    again = apply_operations([rows], [{"op": "split", "n": 20, "seed": 3}]).kept
    assert again.column("split").to_pylist() == split


def test_its_funnel_adds_up_and_every_dropped_row_keeps_its_reason():
    rng = random.Random(3)
    thinks = [_text(rng, 300) for _ in range(40)]
    rows = [_row(f"problem {i}", thinks[i]) for i in range(40)]
    rows += [dict(rows[i]) for i in range(5)]  # exact copies
    rows += [_row(f"problem {i}", thinks[i] + " and done") for i in range(5, 10)]  # near copies
    rows += [_row("p", "```\ncode\n```"), _row(_math500(3), "t"), _row("q", "t", answer="5")]
    batches = [rows[:20], pa.Table.from_pylist(rows[20:])]
    operations = [
        {"op": "verify"},
        {"op": "code_blocks"},
        {"op": "exact_dedup"},
        {"op": "near_dedup"},
        {"op": "decontaminate", "benchmarks": ["math500"]},
        {"op": "sample", "n": 30},
        {"op": "split", "n": 3},
    ]
    result = apply_operations(batches, operations)
    _funnel_adds_up(result, len(rows))
    counts = {s["step"]: s["dropped"] for s in result.funnel}
    assert counts == {
        "verify": 1,
        "code_blocks": 1,
        "exact_dedup": 5,
        "near_dedup": 5,
        "decontaminate": 1,
        "sample": 40 - 30,
        "split": 0,
    }
    dropped = result.dropped.to_pylist()
    assert all(row["reason"] and row["detail"] for row in dropped)
    exact = [r for r in dropped if r["reason"] == "exact_dedup"]
    assert [(r["input_row"], r["detail"]) for r in exact][0] == (40, "exact duplicate of row 0")
    assert "__curation_row" not in result.kept.column_names
    assert result.kept.column_names == ["problem", "think", "answer", "reference", "split"]


def test_it_names_a_bad_operation_and_its_field():
    with pytest.raises(OperationError, match=r"operation 2, op: unknown op 'shuffle'"):
        parse_operations([{"op": "verify"}, {"op": "shuffle"}])
    with pytest.raises(OperationError, match=r"operation 1 \(sample\): give either n or fraction"):
        parse_operations([{"op": "sample"}])
    with pytest.raises(OperationError, match=r"operation 1 \(near_dedup\), treshold: Extra inputs"):
        parse_operations([{"op": "near_dedup", "treshold": 0.9}])
    with pytest.raises(OperationError, match=r"operation 1 \(mix\), parts: .*input once"):
        parse_operations([{"op": "mix", "parts": [{"version": 3, "ratio": 1}]}])
    with pytest.raises(
        OperationError, match=r"1 \(language\), field: .*'summary' \(columns: problem\)$"
    ):
        apply_operations([[{"problem": "x"}]], [{"op": "language", "field": "summary"}])
    with pytest.raises(OperationError, match=r"operation 2 \(verify\), reference: rows have no"):
        apply_operations([[{"think": "x"}]], [{"op": "code_blocks"}, {"op": "verify"}])
