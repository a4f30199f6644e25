"""How far a pass@1 can be trusted: its standard error and the warning for too few samples.

The rule (one place, shown on the result page and the leaderboard): a result is flagged when

- its benchmark has fewer than `SMALL_BENCHMARK` problems and fewer than `MIN_SAMPLES`
  completions were sampled per problem (AIME 2024's 30 problems at k=1 leave pass@1 about
  ±8 points; the R1 paper samples 4 to 64 per problem by benchmark size, open-r1 evaluates
  AIME with many samples; 16 is the least we suggest), or
- its standard error is above `MAX_SE` (2.5 points), whatever k: then the benchmark itself is
  too small to tell apart checkpoints closer than about two standard errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from r1studio.evals.reference import BENCHMARK_TITLES, benchmark_key

MAX_SE = 0.025
MIN_SAMPLES = 16
SMALL_BENCHMARK = 500


def result_se(result: Any) -> float | None:
    """pass@1's standard error over problems: the stored one, else (results stored before it
    was reported) the exact value for one sample per problem, where each problem's pass rate
    is 0 or 1 and the sample variance is n/(n-1)·p(1-p); `None` when it cannot be known."""
    if result.pass_at_1_se is not None:
        return result.pass_at_1_se
    n, p = result.n_problems, result.pass_at_1
    if result.n_samples == 1 and n and n >= 2 and p is not None and 0 <= p <= 1:
        return math.sqrt(p * (1 - p) / (n - 1))
    return None


@dataclass(frozen=True)
class PrecisionWarning:
    """Why a result's pass@1 is imprecise, and what to do about it."""

    kind: str  # "few_samples" or "wide"
    text: str


def result_warning(result: Any) -> PrecisionWarning | None:
    """The warning for `result` under the module's rule, or `None` when it is precise enough."""
    se = result_se(result)
    n = result.n_problems or len(result.problems or []) or None
    k = result.n_samples or 1
    title = BENCHMARK_TITLES.get(benchmark_key(result.benchmark), result.benchmark)
    spread = f"pass@1 is ±{se * 100:.1f} points (one standard error)" if se is not None else ""
    if n is not None and n < SMALL_BENCHMARK and k < MIN_SAMPLES:
        samples = f"{k} sample{'s' if k != 1 else ''} per problem"
        return PrecisionWarning(
            "few_samples",
            f"Too few samples: {title} has {n} problems and this result has {samples}"
            + (f", so {spread}." if spread else ".")
            + f" Sample at least {MIN_SAMPLES} completions per problem (temperature 0.6,"
            " top-p 0.95), as the R1 paper (up to 64) and open-r1 do, and average them.",
        )
    if se is not None and se > MAX_SE:
        return PrecisionWarning(
            "wide",
            f"{spread[0].upper()}{spread[1:]} over {n or 'the'} problems: checkpoints less than"
            f" about {2 * se * 100:.0f} points apart on {title} cannot be told apart.",
        )
    return None
