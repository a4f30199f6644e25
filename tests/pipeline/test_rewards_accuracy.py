"""The accuracy reward is right on real benchmark data: every gold scores 1, a wrong answer 0."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipeline import rewards
from pipeline.rewards import extract_answer, gold_text, grade, grade_batch

BENCHMARKS = Path(
    os.environ.get(
        "R1STUDIO_BENCHMARKS_DIR", Path(__file__).resolve().parents[3] / "shared" / "benchmarks"
    )
)


def load(name: str) -> list[dict]:
    path = BENCHMARKS / name
    if not path.exists():
        # Missing, it fails CI (which must grade every gold) and skips elsewhere.
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(
            f"benchmark file {path} not found (set R1STUDIO_BENCHMARKS_DIR)"
        )
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def as_completion(answer: str) -> str:
    return f"<think>Working it out.</think>\n<answer>{answer}</answer>"


def wrong_answer(gold: str) -> str:
    """A different answer: gold + 1 for numbers, else the first digit bumped (or '+1')."""
    if re.fullmatch(r"-?\d+", gold):
        return str(int(gold) + 1)
    if re.fullmatch(r"-?\d*\.\d+", gold):
        return str(float(gold) + 1)
    digit = re.search(r"\d", gold)
    if digit:
        bumped = str((int(digit.group()) + 1) % 10)
        return gold[: digit.start()] + bumped + gold[digit.end() :]
    if gold.startswith("\\text{"):
        return "\\text{Somebody else}"
    return gold + "+1"


def score_all(golds: list, answers: list[str]) -> list[float | None]:
    # The reward itself, on every core, the way the generate/evaluate stages use it.
    accuracy = rewards.get("accuracy", processes=None)
    return accuracy(None, [as_completion(a) for a in answers], answer=golds)


@pytest.mark.parametrize(
    "file,field",
    [
        ("math500.jsonl", "answer"),
        ("aime24.jsonl", "answer"),
        ("amc23.jsonl", "answer"),
        ("gsm8k_test.jsonl", "answer"),
    ],
)
def test_it_scores_every_gold_answer_one_and_a_wrong_answer_zero(file, field):
    golds = [row[field] for row in load(file)]
    texts = [gold_text(g) for g in golds]
    assert all(texts), "every benchmark row has a reference answer"

    right = score_all(golds, texts)
    failures = [(t, s) for t, s in zip(texts, right, strict=True) if s != 1.0]
    assert failures == [], f"{len(failures)} golds not accepted: {failures[:10]}"

    wrong = score_all(golds, [wrong_answer(t) for t in texts])
    accepted = [(t, wrong_answer(t)) for t, s in zip(texts, wrong, strict=True) if s != 0.0]
    assert accepted == [], f"{len(accepted)} wrong answers not rejected: {accepted[:10]}"


def test_it_reads_gsm8k_solutions_and_thousands_separators():
    rows = load("gsm8k_test.jsonl")
    with_commas = [r["answer"] for r in rows if "," in r["answer"].rsplit("####", 1)[1]]
    assert len(with_commas) == 14
    raw_finals = [g.rsplit("####", 1)[1].strip() for g in with_commas]
    assert score_all(with_commas, raw_finals) == [1.0] * 14
    assert gold_text("She earns 3 * 2 = <<3*2=6>>6\n#### 1,450,000") == "1450000"


def test_it_compares_aime_and_amc_answers_as_numbers():
    aime = [r["answer"] for r in load("aime24.jsonl")]
    padded = [a for a in aime if a.startswith("0")]
    assert len(padded) == 7
    assert score_all(padded, [str(int(a)) for a in padded]) == [1.0] * 7
    amc = [r["answer"] for r in load("amc23.jsonl")]
    assert all(isinstance(a, float) for a in amc)
    assert score_all(amc, [str(a) for a in amc]) == [1.0] * len(amc)  # "27.0" as written


@pytest.mark.parametrize(
    "gold,answer",
    [
        ("\\frac{14}{3}", "$\\frac{14}{3}$"),
        ("\\frac{14}{3}", "14/3"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)"),
        ("\\text{Evelyn}", "Evelyn"),
        ("90^\\circ", "90"),
        ("x=5", "5"),
        ("52_8", "52_8"),
        ("\\$18.90", "18.90"),
        ("10,\\!080", "10080"),
        ("(-\\infty, 0]", "(-\\infty,0]"),
        ("5", "The final answer is $5$."),
        ("5", "\\boxed{5}"),
    ],
)
def test_it_accepts_equivalent_forms_of_a_latex_gold(gold, answer):
    assert grade(gold, answer) == 1.0


@pytest.mark.parametrize(
    "gold,answer",
    [("\\frac{14}{3}", "14/5"), ("(-2,1)", "[-2,1]"), ("\\text{Evelyn}", "Navin"), ("5", "")],
)
def test_it_rejects_different_answers(gold, answer):
    assert grade(gold, answer) == 0.0


@pytest.mark.parametrize("gold", [None, "", "   ", float("nan"), "#### ", "\\frac{", "}}}"])
def test_it_cannot_judge_without_a_parsable_gold(gold):
    assert grade(gold, "5") is None
    assert rewards.get("accuracy")(None, [as_completion("5")], answer=[gold]) == [None]


def test_it_reads_the_answer_column_the_config_names():
    accuracy = rewards.get("accuracy", answer_column="solution")
    completions = [as_completion("12"), as_completion("13")]
    assert accuracy(None, completions, solution=["12", "12"], answer=["13", "13"]) == [1.0, 0.0]


def test_it_falls_back_to_the_last_boxed_answer_only_when_allowed():
    text = "so first \\boxed{3}, no: the answer is \\boxed{\\frac{1}{2}}"
    assert extract_answer(text) == "\\frac{1}{2}"
    assert rewards.get("accuracy")(None, [text], answer=["0.5"]) == [1.0]
    strict = rewards.get("accuracy", boxed_fallback=False)
    assert strict(None, [text], answer=["0.5"]) == [0.0]


def test_it_grades_off_the_main_thread():
    # math-verify's timeouts use signal.alarm, which raises off the main thread (Celery threads).
    out = {}

    def work():
        out["one"] = grade("\\frac{1}{2}", "0.5")
        out["reward"] = rewards.get("accuracy")(
            None, [as_completion("4"), as_completion("5")], answer=["4", "4"]
        )

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=120)
    assert out == {"one": 1.0, "reward": [1.0, 0.0]}


def test_it_gives_the_same_grades_with_one_process_and_with_all_cores():
    pairs = [("4", "4"), ("\\frac{1}{2}", "0.5"), ("#### 7", "8"), (None, "1"), ("3", None)]
    expected = [1.0, 1.0, 0.0, None, 0.0]
    assert grade_batch(pairs, processes=1) == expected
    assert grade_batch(pairs) == expected


def test_it_still_grades_from_a_script_without_a_main_guard(tmp_path):
    # Pool workers re-import such a script; grading must still come back right. Each process
    # writes its whole line at once, so lines from the parent and the workers never interleave.
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import sys\n"
        "from pipeline.rewards import grade_batch\n"
        "sys.stdout.write(f\"RESULT {grade_batch([('4', '4'), ('4', '5')])}\\n\")\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert results and set(results) == {"RESULT [1.0, 0.0]"}
