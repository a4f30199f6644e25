"""Length-shaping rewards: cosine-scaled correctness and DAPO's soft overlong punishment.

Length is counted in tokens when TRL passes ``completion_ids``, otherwise in whitespace words
(so the same config behaves sensibly in a unit test or on pre-generated text).
"""

from __future__ import annotations

import math
from typing import Any

from pipeline.template import completion_text

from ._registry import (
    RewardFunc,
    completion_ids_at,
    logger,
    per_sample,
    register,
    row_columns,
)
from .accuracy import extract_answer, grade_batch


def completion_length(completion: Any, ids: list[int] | None = None) -> int:
    """Tokens when ``ids`` are given, else whitespace-separated words.

    >>> completion_length("a b  c"), completion_length("whatever", [5, 6])
    (3, 2)
    """
    if ids is not None:
        return len(ids)
    return len(completion_text(completion).split())


def cosine_scale(length: int, max_len: int, shortest: float, longest: float) -> float:
    """Half a cosine from ``shortest`` (length 0) to ``longest`` (length >= ``max_len``).

    >>> cosine_scale(0, 100, 1.0, 0.5), cosine_scale(100, 100, 1.0, 0.5)
    (1.0, 0.5)
    """
    progress = min(max(length, 0) / max_len, 1.0)
    return longest + 0.5 * (shortest - longest) * (1.0 + math.cos(progress * math.pi))


@register(
    "cosine_length",
    "Correctness scaled by length on a cosine: correct answers earn more the shorter they are, "
    "wrong ones are punished less the longer they think. Params: min_value_correct, "
    "max_value_correct, min_value_wrong, max_value_wrong, max_len, answer_column.",
)
def cosine_length_reward(
    *,
    min_value_correct: float = 0.5,
    max_value_correct: float = 1.0,
    min_value_wrong: float = -1.0,
    max_value_wrong: float = -0.5,
    max_len: int = 1000,
    answer_column: str = "answer",
    boxed_fallback: bool = True,
) -> RewardFunc:
    """Correct: ``max_value_correct`` at length 0 down to ``min_value_correct`` at ``max_len``.
    Wrong: ``min_value_wrong`` at length 0 up to ``max_value_wrong`` at ``max_len``.
    An unparsable reference scores ``None``.

    >>> f = cosine_length_reward(max_len=10)
    >>> right, wrong = "<answer>4</answer>", "<answer>5</answer>"
    >>> f(None, [right, right, wrong], answer=["4"] * 3, completion_ids=[[], [0] * 10, [0] * 10])
    [1.0, 0.5, -0.5]
    """
    if max_len <= 0:
        raise ValueError("max_len must be positive")

    def reward(prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float | None]:
        completions = list(completions or [])
        n = len(completions)
        pairs, lengths = [], []
        for i, completion in enumerate(completions):
            try:
                gold = row_columns(kwargs, i, n).get(answer_column)
                pairs.append((gold, extract_answer(completion, boxed_fallback)))
                lengths.append(completion_length(completion, completion_ids_at(kwargs, i)))
            except Exception:
                logger.exception("cosine_length: could not read completion %d", i)
                pairs.append((None, None))
                lengths.append(0)
        scores: list[float | None] = []
        for correct, length in zip(grade_batch(pairs, processes=1), lengths, strict=True):
            if correct is None:
                scores.append(None)
            elif correct:
                scores.append(cosine_scale(length, max_len, max_value_correct, min_value_correct))
            else:
                scores.append(cosine_scale(length, max_len, min_value_wrong, max_value_wrong))
        return scores

    return reward


@register(
    "soft_overlong",
    "DAPO's soft overlong punishment: 0 up to max_length - cache_length, then a linear penalty "
    "down to -1 at max_length, -1 beyond. Params: max_length, cache_length (tokens when TRL "
    "passes completion_ids, else words).",
)
def soft_overlong_reward(*, max_length: int = 1024, cache_length: int = 256) -> RewardFunc:
    """Penalise completions that run into the length limit, gently first.

    >>> f = soft_overlong_reward(max_length=10, cache_length=4)
    >>> f(None, ["x"] * 3, completion_ids=[[0] * 6, [0] * 8, [0] * 11])
    [0.0, -0.5, -1.0]
    """
    if not 0 < cache_length <= max_length:
        raise ValueError("need 0 < cache_length <= max_length")
    safe = max_length - cache_length

    def score(prompt: Any, completion: Any, row: dict, ids: list[int] | None) -> float:
        length = completion_length(completion, ids)
        if length <= safe:
            return 0.0
        if length <= max_length:
            return (safe - length) / cache_length
        return -1.0

    return per_sample("soft_overlong", score)
