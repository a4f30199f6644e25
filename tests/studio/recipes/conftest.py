"""Fixtures for the recipe tests: tiny toy stage configs and fast run timings.

The toy models and data are the session-wide test-size build (`toy_dir`, tests/conftest.py); the
stage settings are the runs tests' fast ones (tests/studio/runs/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.studio.runs.conftest import FAST, merge


@pytest.fixture
def stage_config(toy_dir: Path) -> Callable[..., dict]:
    """Factory: `stage_config("grpo", trainer={"max_steps": 40})` → a fast toy stage config."""

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
