"""Statistics of a benchmark score: pass@1 with its uncertainty, and cons@k's majority vote.

pass@1 is the mean over problems of each problem's pass rate (correct samples / k). Its
standard error is the sample standard deviation of those rates over sqrt(number of problems):
how far the score would move on another draw of problems of the same kind, with sampling noise
included. A bootstrap over problems gives a 95 % interval that needs no normality assumption
(useful near 0 % or 100 %). Both are pure Python (numpy only for the resampling) so the stage,
RL's periodic eval and the studio compute them the same way.

>>> round(pass_at_1_se([1.0, 0.5, 0.0]), 4)
0.2887
>>> majority_vote(["4", "5", "5", "4"])
(0, 2)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

BOOTSTRAP_RESAMPLES = 2000


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def pass_at_1_se(rates: Sequence[float]) -> float | None:
    """Standard error of the mean of per-problem pass rates (``None`` for fewer than 2)."""
    n = len(rates)
    if n < 2:
        return None
    m = mean(rates)
    variance = sum((r - m) ** 2 for r in rates) / (n - 1)  # sample variance (ddof=1)
    return math.sqrt(variance / n)


def bootstrap_ci(
    rates: Sequence[float],
    *,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean pass rate, resampling problems.

    Deterministic for a given ``seed``; ``None`` for fewer than 2 problems.
    """
    import numpy as np

    if len(rates) < 2:
        return None
    values = np.asarray(rates, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    means = values[picks].mean(axis=1)
    tail = (1.0 - level) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def majority_vote(
    answers: Sequence[str | None],
    same: Callable[[str, str], bool] | None = None,
) -> tuple[int | None, int]:
    """The majority answer of k samples: ``(index of its first sample, votes)``.

    Samples without an answer do not vote (``(None, 0)`` when none has one). Answers are
    grouped by exact text, then groups whose first answers ``same`` says are equal merge (a
    math-verify check: ``1/2`` and ``0.5`` are one answer). Ties go to the answer sampled
    first, so the vote never depends on dictionary order or on which answer is right.

    >>> majority_vote(["7", None, "3", "3", "7"])  # a tie: 7 came first
    (0, 2)
    """
    groups: list[list[int]] = []  # sample indices, in order of first appearance
    by_text: dict[str, int] = {}
    for index, answer in enumerate(answers):
        if answer is None or not answer.strip():
            continue
        key = answer.strip()
        if key in by_text:
            groups[by_text[key]].append(index)
        else:
            by_text[key] = len(groups)
            groups.append([index])
    if same is not None and len(groups) > 1:
        groups = _merge(groups, answers, same)
    if not groups:
        return None, 0
    best = max(groups, key=lambda g: (len(g), -g[0]))
    return best[0], len(best)


def _merge(
    groups: list[list[int]], answers: Sequence[str | None], same: Callable[[str, str], bool]
) -> list[list[int]]:
    """Groups whose representatives are equivalent, merged (into the earlier one)."""
    merged: list[list[int]] = []
    for group in groups:
        text = str(answers[group[0]])
        for target in merged:
            if same(str(answers[target[0]]), text):
                target.extend(group)
                break
        else:
            merged.append(list(group))
    return [sorted(g) for g in merged]
