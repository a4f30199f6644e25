"""Repetition penalty: punish completions that loop over the same phrases.

Small models under RL often collapse into repeating a sentence until the length limit. The
penalty is the share of word n-grams that are repeats, scaled to ``max_penalty``: 0 for text
with no repeated n-gram, ``max_penalty`` for text that is one n-gram over and over.
"""

from __future__ import annotations

from typing import Any

from pipeline.template import TAGS, completion_text

from ._registry import RewardFunc, per_sample, register


def repeated_ngram_share(text: str, ngram_size: int = 3) -> float:
    """1 - distinct n-grams / all n-grams over lowercase words (0.0 when too short).

    >>> repeated_ngram_share("a b c d e f", 3)
    0.0
    >>> round(repeated_ngram_share("go on go on go on go on", 2), 3)
    0.714
    """
    for tag in TAGS:
        text = text.replace(tag, " ")
    words = text.lower().split()
    if len(words) < ngram_size:
        return 0.0
    ngrams = [tuple(words[i : i + ngram_size]) for i in range(len(words) - ngram_size + 1)]
    return 1.0 - len(set(ngrams)) / len(ngrams)


@register(
    "repetition",
    "N-gram repetition penalty: max_penalty times the share of repeated word n-grams "
    "(0 for no repetition). Params: ngram_size (default 3), max_penalty (<= 0, default -1).",
)
def repetition_reward(*, ngram_size: int = 3, max_penalty: float = -1.0) -> RewardFunc:
    """Penalty in ``[max_penalty, 0]``.

    >>> f = repetition_reward(ngram_size=2, max_penalty=-1.0)
    >>> [round(x, 3) for x in f(None, ["one two three four", "la la la la la"])]
    [0.0, -0.75]
    """
    if ngram_size < 1:
        raise ValueError("ngram_size must be at least 1")
    if max_penalty > 0:
        raise ValueError("max_penalty must be <= 0 (it is a penalty)")

    def score(prompt: Any, completion: Any, row: dict, ids: Any) -> float:
        share = repeated_ngram_share(completion_text(completion), ngram_size)
        return max_penalty * share + 0.0  # + 0.0 turns -0.0 into 0.0

    return per_sample("repetition", score)
