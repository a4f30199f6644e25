"""pass@1's standard error and bootstrap interval, and cons@k's majority vote."""

from __future__ import annotations

import math

from pipeline import evalstats
from pipeline.stages.evaluate import problem_results, score_completions, vote


def test_it_computes_the_standard_error_of_pass_at_1_by_hand() -> None:
    # 3 problems, k=2: pass rates 2/2, 1/2, 0/2 = 1, 0.5, 0.
    rates = [1.0, 0.5, 0.0]
    # mean = 1.5 / 3 = 0.5
    # sample variance (ddof=1) = ((0.5)^2 + 0^2 + (-0.5)^2) / (3 - 1) = 0.5 / 2 = 0.25
    # sample std = 0.5; SE = 0.5 / sqrt(3) = 0.288675...
    assert evalstats.mean(rates) == 0.5
    assert math.isclose(evalstats.pass_at_1_se(rates), 0.5 / math.sqrt(3))
    assert math.isclose(evalstats.pass_at_1_se(rates), 0.2886751, rel_tol=1e-6)


def test_it_has_no_standard_error_for_a_single_problem() -> None:
    assert evalstats.pass_at_1_se([1.0]) is None
    assert evalstats.bootstrap_ci([1.0]) is None


def test_the_bootstrap_interval_contains_the_mean_and_repeats_with_its_seed() -> None:
    rates = [1.0, 0.5, 0.0, 0.25, 1.0, 0.75, 0.0, 0.5, 1.0, 0.25]
    low, high = evalstats.bootstrap_ci(rates, seed=7)
    assert low < evalstats.mean(rates) < high
    assert low >= 0.0 and high <= 1.0
    assert evalstats.bootstrap_ci(rates, seed=7) == (low, high)
    assert evalstats.bootstrap_ci(rates, seed=8) != (low, high)
    # A 95 % interval is about mean ± 2 SE for a sample this size.
    se = evalstats.pass_at_1_se(rates)
    assert math.isclose(high - low, 4 * se, rel_tol=0.35)


def test_the_majority_vote_breaks_ties_by_the_first_sampled_answer() -> None:
    assert evalstats.majority_vote(["5", "4", "4", "5"]) == (0, 2)
    assert evalstats.majority_vote(["4", "5", "5", "4"]) == (0, 2)
    assert evalstats.majority_vote(["4", "5", "5"]) == (1, 2)
    assert evalstats.majority_vote([None, "", None]) == (None, 0)
    assert evalstats.majority_vote([None, "3"]) == (1, 1)


def test_the_majority_vote_merges_equivalent_answers() -> None:
    same = lambda a, b: float(eval(a)) == float(eval(b))  # noqa: E731, S307 (test literals)
    assert evalstats.majority_vote(["7", "7", "1/2", "0.5", "2/4"], same) == (2, 3)
    assert evalstats.majority_vote(["7", "7", "1/2", "0.5", "2/4"]) == (0, 2)  # by text only
    assert evalstats.majority_vote(["1/2", "7", "7", "0.5"], same) == (0, 2)  # a tie: 1/2 first


def test_cons_at_k_counts_correct_answers_as_one_whatever_their_text() -> None:
    # \frac{1}{2} and 0.5 are both right: two votes against the wrong 3's two... and they came
    # second, so the tie goes to 3 unless math-verify merges the right ones (it does).
    answers = ["3", "\\frac{1}{2}", "0.5", "3", "0.5"]
    grades = [False, True, True, False, True]
    first, votes = vote(answers, grades, math_answers=True)
    assert (first, votes) == (1, 3)
    # wrong answers that are equal for math-verify vote together too: 6/2 and 3 against 2 right
    first, votes = vote(["1", "6/2", "3", "1"], [True, False, False, True], math_answers=True)
    assert (first, votes) == (0, 2)  # 2 against 2: the first sampled (right) answer wins


def test_scores_report_se_interval_and_per_problem_results() -> None:
    from pipeline import rewards

    problems = [
        {"problem": "1+1?", "answer": "2", "id": 11},
        {"problem": "2+2?", "answer": "4", "id": 12},
        {"problem": "3+3?", "answer": "6", "id": 13},
    ]
    completions = [
        ["<answer>2</answer>", "<answer>2</answer>"],
        ["<answer>4</answer>", "<answer>5</answer>"],
        ["<answer>1</answer>", "<answer>1</answer>"],
    ]
    metrics, items = score_completions(
        problems, ["p1", "p2", "p3"], completions, rewards.get("accuracy")
    )
    assert metrics["pass@1"] == 0.5
    assert math.isclose(metrics["pass@1_se"], 0.5 / math.sqrt(3))
    assert metrics["pass@1_ci_low"] <= 0.5 <= metrics["pass@1_ci_high"]
    assert metrics["cons@2"] == 2 / 3  # 4 and 5 tie: 4 came first
    assert problem_results(items) == [
        {"id": "11", "n_correct": 2, "n": 2, "majority_answer": "2", "correct": True},
        {"id": "12", "n_correct": 1, "n": 2, "majority_answer": "4", "correct": True},
        {"id": "13", "n_correct": 0, "n": 2, "majority_answer": "1", "correct": False},
    ]
