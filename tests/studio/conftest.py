"""Fixtures for tests that start the whole studio (`manage.py studio`) in a subprocess."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def studio_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)  # exercise the embedded Redis
    env.update(
        DJANGO_SETTINGS_MODULE="r1studio.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'studio.sqlite3'}",
        R1STUDIO_DATA_DIR=str(tmp_path / "data"),
        R1STUDIO_ADMIN_PASSWORD_FILE=str(tmp_path / "admin-password.txt"),
        SECRET_KEY="launcher-test-secret-key",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def studios() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for studio in started:  # a failed test must not leave a studio running
        if studio.process.poll() is None:
            studio.kill_everything()
