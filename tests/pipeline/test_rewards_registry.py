"""The reward registry, TRL's calling convention, and the format rewards."""

from __future__ import annotations

import doctest
import importlib
import logging

import pytest

from pipeline import rewards
from pipeline.rewards._registry import per_sample

ALL = [
    "accuracy",
    "code",
    "cosine_length",
    "format",
    "judge",
    "language_consistency",
    "repetition",
    "soft_overlong",
    "tag_count",
]
# Rewards that run with default params (judge needs a model or url).
BUILDABLE = [name for name in ALL if name != "judge"]

GOOD = "<think>7 + 5 = 12</think>\n<answer>12</answer>"


def trl_kwargs(n: int, **columns):
    """What GRPOTrainer passes besides prompts and completions (TRL 1.16)."""
    return {
        "completion_ids": [[1, 2, 3]] * n,
        "trainer_state": object(),
        "log_extra": lambda *a, **k: None,
        "log_metric": lambda *a, **k: None,
        **columns,
    }


def test_it_lists_and_describes_every_reward():
    assert rewards.names() == ALL
    described = rewards.describe()
    assert list(described) == ALL
    assert all(isinstance(h, str) and len(h) > 20 for h in described.values())


@pytest.mark.parametrize("name", BUILDABLE)
def test_it_builds_functions_named_after_the_registry_entry(name):
    func = rewards.get(name)
    assert func.__name__ == name
    assert func.__doc__ is None or isinstance(func.__doc__, str)


@pytest.mark.parametrize("name", BUILDABLE)
def test_it_accepts_everything_trl_passes_and_returns_one_score_per_completion(name):
    completions = [GOOD, "nonsense", "", [{"role": "assistant", "content": GOOD}]]
    n = len(completions)
    scores = rewards.get(name)(
        prompts=["What is 7 + 5?"] * n,
        completions=completions,
        **trl_kwargs(
            n,
            answer=["12"] * n,
            test=[["assert True"]] * n,
            entry_point=[None] * n,
            problem=["What is 7 + 5?"] * n,
        ),
    )
    assert len(scores) == n
    assert all(s is None or isinstance(s, float) for s in scores)


@pytest.mark.parametrize("name", BUILDABLE)
def test_it_never_raises_on_malformed_completions(name):
    junk = [None, 42, b"bytes", {"role": "assistant"}, [None], "<think><answer></think>"]
    scores = rewards.get(name)(None, junk, answer=["1"] * len(junk))
    assert len(scores) == len(junk)


def test_it_rejects_unknown_names_and_params_with_a_message_naming_them():
    with pytest.raises(rewards.RewardError, match="'nope'"):
        rewards.get("nope")
    with pytest.raises(rewards.RewardError, match="'colour'"):
        rewards.get("format", colour="red")
    with pytest.raises(rewards.RewardError, match="max_penalty"):
        rewards.get("repetition", max_penalty=1.0)
    assert rewards.params_of("soft_overlong") == {"max_length": 1024, "cache_length": 256}


def test_it_scores_a_failing_sample_none_logs_it_and_scores_the_rest(caplog):
    def score(prompt, completion, row, ids):
        if completion == "boom":
            raise RuntimeError("bad sample")
        return len(completion)

    func = per_sample("flaky", score)
    with caplog.at_level(logging.ERROR, logger="pipeline.rewards"):
        assert func(None, ["ab", "boom", "abc"]) == [2.0, None, 3.0]
    assert "flaky" in caplog.text and "sample 1" in caplog.text


def test_it_gives_format_credit_only_to_the_strict_template():
    fmt = rewards.get("format")
    completions = [
        GOOD,
        " <think>x</think><answer>1</answer> \n",
        "<think>x</think><answer>1</answer> trailing words",
        "<answer>1</answer>",
        "<think>x</think><think>y</think><answer>1</answer>",
        "x</think><answer>1</answer>",
    ]
    assert fmt(None, completions) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    prefilled = rewards.get("format", think_prefilled=True)
    assert prefilled(None, ["x</think><answer>1</answer>"]) == [1.0]


def test_it_gives_a_quarter_per_tag_present_exactly_once():
    tags = rewards.get("tag_count")
    completions = [
        GOOD,
        "<think>x</think>",
        "<think>x</think><think>y</think><answer>1</answer>",
        "plain",
    ]
    assert tags(None, completions) == [1.0, 0.5, 0.5, 0.0]
    assert rewards.get("tag_count", think_prefilled=True)(None, ["x</think>"]) == [0.5]


@pytest.mark.parametrize(
    "module",
    [
        "pipeline.template",
        "pipeline.rewards",
        "pipeline.rewards.accuracy",
        "pipeline.rewards.formatting",
        "pipeline.rewards.language",
        "pipeline.rewards.length",
        "pipeline.rewards.repetition",
        "pipeline.rewards.coding",
        "pipeline.rewards.judge",
    ],
)
def test_it_keeps_the_docstring_examples_true(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
