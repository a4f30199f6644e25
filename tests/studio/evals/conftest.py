"""Fixtures for the evals tests: the run factory of the metrics tests, the runs tests' toy
stage configs (and their fast timings), and `eval` events."""

from __future__ import annotations

from typing import Any

from tests.studio.metrics.conftest import make_run  # noqa: F401
from tests.studio.runs.conftest import fast_run_timings, toy_config  # noqa: F401


def eval_event(
    *,
    benchmark: str = "aime24",
    step: int = 0,
    solved: list[int] | None = None,
    k: int = 2,
    n: int = 3,
    answer: str = "7",
) -> dict[str, Any]:
    """An `eval` event as the evaluate stage writes it: `n` problems with ids p0.., the ones
    in `solved` answered right k of k, the others wrong k of k."""
    solved = solved or []
    items, problems, rates = [], [], []
    for i in range(n):
        right = i in solved
        rates.append(1.0 if right else 0.0)
        majority = str(i) if right else answer
        items.append(
            {
                "id": f"p{i}",
                "problem": f"Problem {i}: what is {i}?",
                "reference": str(i),
                "pass@1": rates[-1],
                "cons": right,
                "majority_answer": majority,
                "correct": [right] * k,
                "completions": [f"<answer>{majority}</answer>"] * k,
            }
        )
        problems.append(
            {
                "id": f"p{i}",
                "n_correct": k if right else 0,
                "n": k,
                "majority_answer": majority,
                "correct": right,
            }
        )
    mean = sum(rates) / n
    return {
        "type": "eval",
        "step": step,
        "benchmark": benchmark,
        "metrics": {
            "pass@1": mean,
            f"cons@{k}": mean,
            "pass@1_se": 0.1,
            "pass@1_ci_low": max(0.0, mean - 0.2),
            "pass@1_ci_high": min(1.0, mean + 0.2),
            "n_problems": float(n),
        },
        "n_samples": k,
        "decoding": {"temperature": 0.6, "top_p": 0.95, "n_samples": k, "max_new_tokens": 64},
        "problems": problems,
        "items": items,
    }
