"""The R1 checks on a trace (pipeline.checks_text): what annotators see and what flags an edit."""

from __future__ import annotations

from pipeline.checks_text import checks_regressed, r1_checks, r1_checks_batch


class Tokenizer:
    def encode(self, text, add_special_tokens=False):
        return text.split()


def test_it_checks_a_well_formed_correct_completion():
    c = r1_checks(
        completion="<think>First add.\n\nThen check.</think> <answer>4</answer>", reference="4"
    )
    assert c["format_valid"] is True
    assert c["summary_present"] is True
    assert c["verifier"] == 1.0
    assert c["language_consistent"] is True
    assert c["longest_paragraph"] == len("Then check.")
    assert c["tokens_estimated"] is True


def test_it_flags_a_broken_format_and_a_missing_summary():
    c = r1_checks(completion="<think>I ran out of tokens")
    assert c["format_valid"] is False
    assert c["summary_present"] is False
    assert c["verifier"] is None  # no reference: nothing to verify


def test_it_counts_code_blocks_in_the_reasoning_only():
    think = "Try it:\n```python\nprint(1)\n```\nand\n~~~\nx\n~~~"
    c = r1_checks(think=think, answer="```not counted```")
    assert c["code_blocks"] == 2


def test_it_measures_language_mixing():
    c = r1_checks(think="we add them 所以 答案 是 四", answer="4", language="en")
    assert c["language_consistent"] is False
    assert 0 < c["language_share"] < 1


def test_it_counts_tokens_with_a_tokenizer():
    c = r1_checks(think="a b c", answer="d", tokenizer=Tokenizer())
    assert c["tokens_estimated"] is False
    assert c["tokens"] == 8  # <think> a b c </think> <answer> d </answer>


def test_an_edit_that_breaks_the_answer_or_the_format_is_flagged():
    before = r1_checks(think="2+2", answer="4", reference="4")
    wrong = r1_checks(think="2+2", answer="5", reference="4")
    broken = r1_checks(think="2+2 </think> oops", answer="4", reference="4")
    assert checks_regressed(before, wrong) == ["verifier"]
    assert checks_regressed(before, broken) == ["format_valid"]
    assert checks_regressed(before, before) == []


def test_the_batch_gives_the_same_checks_as_one_by_one():
    rows = [
        {"completion": "<think>x</think><answer>\\frac{1}{2}</answer>", "reference": "0.5"},
        {"think": "y", "answer": "3", "reference": "#### 4"},
        {"completion": "no tags"},
    ]
    assert r1_checks_batch(rows) == [r1_checks(**row) for row in rows]
