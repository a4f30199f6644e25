"""Rewards on the shape of a completion: the strict R1 format and partial tag credit."""

from __future__ import annotations

from typing import Any

from pipeline.template import THINK_OPEN, parse_completion, tag_counts

from ._registry import RewardFunc, per_sample, register


@register(
    "format",
    "1.0 when the completion is exactly <think>…</think> <answer>…</answer> (each tag once, "
    "nothing around them), else 0.0. Param think_prefilled: the prompt already opened <think>.",
)
def format_reward(*, think_prefilled: bool = False) -> RewardFunc:
    """Strict R1 format reward.

    >>> f = format_reward()
    >>> f(None, ["<think>a</think>\\n<answer>b</answer>", "<answer>b</answer>"])
    [1.0, 0.0]
    """

    def score(prompt: Any, completion: Any, row: dict, ids: Any) -> float:
        return 1.0 if parse_completion(completion, think_prefilled).well_formed else 0.0

    return per_sample("format", score)


@register(
    "tag_count",
    "Partial format credit: 0.25 for each of <think>, </think>, <answer>, </answer> that appears "
    "exactly once (a dense signal before the strict format is learnt). Param think_prefilled.",
)
def tag_count_reward(*, think_prefilled: bool = False) -> RewardFunc:
    """0.25 per tag present exactly once.

    >>> tag_count_reward()(None, ["<think>x</think>", "<think>a</think><answer>b</answer>"])
    [0.5, 1.0]
    """

    def score(prompt: Any, completion: Any, row: dict, ids: Any) -> float:
        counts = tag_counts(completion)
        if think_prefilled:
            counts[THINK_OPEN] += 1
        return 0.25 * sum(1 for c in counts.values() if c == 1)

    return per_sample("tag_count", score)
