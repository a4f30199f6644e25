"""Fixtures for the pipeline tests: one test-size toy folder per session, stage runs, events.

The toy (tiny Qwen3 models, char tokenizer, arithmetic data) is built once per session with
``size="test"`` and shared; tests that change a config write their own copy. Stages run
in-process through ``run_stage`` (the same lifecycle the CLI uses) unless a test is about the
CLI itself, which saves a few seconds of imports per run.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import pipeline  # noqa: F401  (sets OMP_WAIT_POLICY before torch is imported)

REPO = Path(__file__).resolve().parents[2]


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def toy_config(toy_dir: Path) -> Callable[..., dict]:
    """A deep copy of ``configs/<kind>.yaml`` (or ``recipe/<name>.yaml``) to modify freely."""

    def load(name: str) -> dict:
        folder = "recipe" if name[:2].isdigit() else "configs"
        return copy.deepcopy(load_yaml(toy_dir / folder / f"{name}.yaml"))

    return load


def read_events(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def events_of(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]


def statuses(events: list[dict]) -> list[str]:
    return [e["state"] for e in events_of(events, "status")]


def metric_names(events: list[dict]) -> set[str]:
    return {name for e in events_of(events, "metrics") for name in e["values"]}


def run_stage_dict(data: dict, run_dir: Path, resume: bool = False) -> int:
    """Parse and run a stage config in-process; returns the exit code the CLI would."""
    from pipeline.config import parse_config
    from pipeline.reporting import clear_stop
    from pipeline.stages import run_stage

    clear_stop()
    return run_stage(parse_config(data), run_dir, resume=resume)


def run_cli(*args: str, timeout: float = 300, **kwargs: Any) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        **kwargs,
    )


def heldout_figures(model_dir: Path, heldout: Path, limit: int = 64) -> dict[str, float]:
    """Greedy accuracy (pass@1) and think-first rate of a saved model on held-out problems."""
    from pipeline.stages.evaluate import heldout_figures as figures

    rows = [json.loads(line) for line in heldout.read_text().splitlines()][:limit]
    return figures(model_dir, rows)


@pytest.fixture(scope="session")
def grpo_run(toy_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy R1-Zero GRPO config run once per session (several tests read its outputs)."""
    run_dir = tmp_path_factory.mktemp("grpo-run")
    data = load_yaml(toy_dir / "configs" / "grpo.yaml")
    assert run_stage_dict(data, run_dir) == 0, read_events(run_dir)[-1]
    return run_dir


@pytest.fixture(scope="session")
def sft_run(toy_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy SFT config (base model on hand-written think traces), run once per session."""
    run_dir = tmp_path_factory.mktemp("sft-run")
    data = load_yaml(toy_dir / "configs" / "sft.yaml")
    assert run_stage_dict(data, run_dir) == 0, read_events(run_dir)[-1]
    return run_dir


class Events:
    """Helpers to read a run's ``events.jsonl`` (given to tests as the ``events`` fixture)."""

    read = staticmethod(read_events)
    of = staticmethod(events_of)
    statuses = staticmethod(statuses)
    metric_names = staticmethod(metric_names)


@pytest.fixture
def events() -> type[Events]:
    return Events


@pytest.fixture
def run_stage() -> Callable[..., int]:
    return run_stage_dict


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    return run_cli


@pytest.fixture
def heldout() -> Callable[..., dict[str, float]]:
    return heldout_figures
