"""Fixtures for the runs tests: toy assets built once, small stage configs, fast timings.

The toy models and data come from the session-wide `toy_dir` fixture of tests/conftest.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


# Small enough to finish in seconds on a shared CPU, big enough to log, sample and checkpoint.
FAST = {
    "grpo": {
        "trainer": {
            "max_steps": 6,
            "logging_steps": 1,
            "per_device_train_batch_size": 16,
            "warmup_steps": 0,
        },
        "output": {"save_steps": 2, "save_total_limit": 2},
        "log_samples_every": 2,
        "log_samples_count": 8,
        "eval": {"benchmark": "", "every_steps": 0},
    },
    "sft": {
        "trainer": {"max_steps": 4, "logging_steps": 1, "per_device_train_batch_size": 8},
        "output": {"save_steps": 2, "save_total_limit": 2},
    },
    "evaluate": {"limit": 8, "sampling": {"k": 2}},
    "generate": {"data": {"limit": 8}, "sampling": {"k": 2}},
}


def merge(base: dict, extra: dict) -> dict:
    """`base` with `extra` merged in, nested dicts merged key by key."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture
def toy_config(toy_dir: Path) -> Callable[..., dict]:
    """Factory: `toy_config("grpo", trainer={"max_steps": 40})` → a fast toy stage config."""

    def make(kind: str, **overrides: Any) -> dict:
        base = yaml.safe_load((toy_dir / "configs" / f"{kind}.yaml").read_text())
        return merge(merge(base, FAST.get(kind, {})), overrides)

    return make


@pytest.fixture(autouse=True)
def fast_run_timings(settings: Any) -> Iterator[None]:
    """Beats every second, lost after 4 s without one, SIGKILL 10 s after SIGTERM."""
    settings.R1STUDIO_RUN_HEARTBEAT_SECONDS = 1
    settings.R1STUDIO_LOST_AFTER_SECONDS = 4
    settings.R1STUDIO_CANCEL_GRACE_SECONDS = 10
    yield
