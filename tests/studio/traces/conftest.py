"""Fixtures for the traces tests: the run factory of the metrics tests, and a trace factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.studio.metrics.conftest import make_run  # noqa: F401 - a fixture


def sample(
    prompt: str = "What is 2+3?",
    completion: str = "<think>2+3 is 5</think> <answer>5</answer>",
    *,
    accuracy: float | None = 1.0,
    reward: float | None = None,
    advantage: float | None = 0.5,
) -> dict[str, Any]:
    """One item of a `samples` event, as the GRPO stage reports it."""
    rewards = {"format": 1.0}
    if accuracy is not None:
        rewards["accuracy"] = accuracy
    return {
        "prompt": prompt,
        "completion": completion,
        "reference": "5",
        "rewards": rewards,
        "reward": reward if reward is not None else sum(v for v in rewards.values()),
        "advantage": advantage,
    }


@pytest.fixture
def add_samples() -> Callable[..., int]:
    """`add_samples(run, step, [items])` → how many traces `traces_ingest` stored."""
    from r1studio.traces.services import traces_ingest

    def add(run: Any, step: int, items: list[dict[str, Any]]) -> int:
        return traces_ingest(run=run, events=[{"type": "samples", "step": step, "items": items}])

    return add
