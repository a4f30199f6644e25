"""Fixtures for the runs tests: toy assets built once, small stage configs, fast timings.

The toy models and data (`python -m pipeline toy DIR --size test`) take a minute or two to
build, so they are built once and cached in the temp dir under a key derived from the toy
builder's source (a changed `pipeline/toy.py` builds afresh); a file lock keeps two test
sessions from building the same cache at once.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


def _toy_key() -> str:
    return hashlib.sha256((ROOT / "pipeline" / "toy.py").read_bytes()).hexdigest()[:12]


@pytest.fixture(scope="session")
def toy_dir() -> Path:
    """The test-size toy assets (models, data, configs, recipe), built once and cached."""
    override = os.environ.get("R1STUDIO_TEST_TOY_DIR")
    if override:
        return Path(override)
    target = Path(tempfile.gettempdir()) / f"r1studio-toy-test-{_toy_key()}"
    with open(f"{target}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "configs" / "grpo.yaml").is_file():
            building = target.with_name(target.name + ".building")
            shutil.rmtree(building, ignore_errors=True)
            subprocess.run(
                [sys.executable, "-m", "pipeline", "toy", str(building), "--size", "test"],
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            shutil.rmtree(target, ignore_errors=True)
            building.rename(target)
            # configs name absolute paths: point them at the final folder
            for config in list((target / "configs").glob("*.yaml")) + list(
                (target / "recipe").glob("*.yaml")
            ):
                config.write_text(config.read_text().replace(str(building), str(target)))
    return target


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
