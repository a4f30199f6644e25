"""Shaping rewards: language consistency, cosine length, repetition, DAPO soft overlong."""

from __future__ import annotations

import pytest

from pipeline import rewards
from pipeline.rewards.language import language_share, script_words
from pipeline.rewards.length import cosine_scale
from pipeline.rewards.repetition import repeated_ngram_share


def test_it_scores_the_share_of_cot_words_in_the_target_language():
    english = rewards.get("language_consistency")
    completions = [
        "<think>First add the tens, then the ones.</think><answer>42</answer>",
        "<think>先算十位 then the ones</think><answer>42</answer>",
        "<think>先算十位</think><answer>42</answer>",
    ]
    # 先, 算, 十, 位 are four words (one per Han character); then, the, ones three more.
    assert english(None, completions) == [1.0, pytest.approx(3 / 7), 0.0]
    chinese = rewards.get("language_consistency", language="zh")
    assert chinese(None, completions) == [0.0, pytest.approx(4 / 7), 1.0]


def test_it_reads_only_the_cot_and_leaves_math_out():
    english = rewards.get("language_consistency")
    # The answer may be in any language; LaTeX, variables and numbers are not words.
    text = "<think>Let x = \\frac{3}{4} so 4x = 3</think><answer>答案是 3</answer>"
    assert english(None, [text]) == [1.0]
    assert script_words("\\sqrt{x} + y") == []
    assert language_share("12 + 7 = 19") == 1.0


def test_it_tells_scripts_apart_for_other_languages():
    assert language_share("Сначала сложим, then", "ru") == pytest.approx(2 / 3)
    assert language_share("まず 十 を足す", "ja") == 1.0
    assert language_share("まず 十 を足す", "zh") == pytest.approx(2 / 6)  # 十 and 足 only
    with pytest.raises(rewards.RewardError, match="klingon"):
        rewards.get("language_consistency", language="klingon")


def test_it_reads_the_whole_completion_when_there_is_no_think_block():
    english = rewards.get("language_consistency")
    assert english(None, ["just english words", "只有中文"]) == [1.0, 0.0]
    prefilled = rewards.get("language_consistency", think_prefilled=True)
    assert prefilled(None, ["english here</think><answer>中文答案</answer>"]) == [1.0]


def test_it_rewards_short_correct_answers_and_long_wrong_ones():
    cosine = rewards.get("cosine_length", max_len=100)
    right, wrong = "<answer>7</answer>", "<answer>8</answer>"
    ids = [[0] * 10, [0] * 90, [0] * 10, [0] * 90]
    short_right, long_right, short_wrong, long_wrong = cosine(
        None, [right, right, wrong, wrong], answer=["7"] * 4, completion_ids=ids
    )
    assert 0.5 <= long_right < short_right <= 1.0
    assert -1.0 <= short_wrong < long_wrong <= -0.5
    # Beyond max_len the scale is flat at its end values.
    over = cosine(None, [right, wrong], answer=["7", "7"], completion_ids=[[0] * 500] * 2)
    assert over == [pytest.approx(0.5), pytest.approx(-0.5)]
    assert cosine(None, [right], answer=[None]) == [None]


def test_it_follows_a_half_cosine_between_its_end_values():
    assert cosine_scale(0, 10, 1.0, 0.5) == 1.0
    assert cosine_scale(5, 10, 1.0, 0.5) == pytest.approx(0.75)
    assert cosine_scale(10, 10, 1.0, 0.5) == pytest.approx(0.5)


def test_it_penalises_repeated_ngrams():
    repetition = rewards.get("repetition", ngram_size=3, max_penalty=-0.5)
    varied = "<think>add three and four to get seven then double it</think>"
    looping = "<think>" + "and then we add " * 30 + "</think>"
    scores = repetition(None, [varied, looping, "too short"])
    assert scores[0] == 0.0
    assert -0.5 <= scores[1] < -0.45
    assert scores[2] == 0.0
    assert repeated_ngram_share("a b a b", 2) == pytest.approx(1 / 3)


def test_it_applies_dapo_soft_overlong_punishment_in_tokens_or_words():
    overlong = rewards.get("soft_overlong", max_length=20, cache_length=10)
    ids = [[0] * n for n in (5, 10, 15, 20, 25)]
    assert overlong(None, ["x"] * 5, completion_ids=ids) == [0.0, 0.0, -0.5, -1.0, -1.0]
    words = ["w " * 5, "w " * 15, "w " * 30]
    assert overlong(None, words) == [0.0, -0.5, -1.0]
    with pytest.raises(rewards.RewardError):
        rewards.get("soft_overlong", max_length=10, cache_length=20)
