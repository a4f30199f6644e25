"""Test settings: the real settings, plus what makes tests fast and isolated.

The database still comes from DATABASE_URL (SQLite by default, PostgreSQL in CI); pytest-django
creates and destroys the test database (`test_<name>` on PostgreSQL). On SQLite the test database
is a file rather than memory, because the embedded Celery worker and the live server write to it
from other threads.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from r1studio.settings import *  # noqa: F403
from r1studio.settings import DATABASES
from r1studio.settings import LOGGING as _LOGGING

_TMP = Path(tempfile.gettempdir())

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(_TMP / f"r1studio-test-{os.getpid()}.sqlite3")}

# Runs, checkpoints and datasets of this test session; the `data_dir` fixture gives each test
# a directory of its own.
R1STUDIO_DATA_DIR = _TMP / f"r1studio-test-data-{os.getpid()}"

# Hashing with PBKDF2 dominates a login test; tests do not need it to be slow.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

R1STUDIO_HEARTBEAT_SECONDS = 1

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": _LOGGING["filters"],
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {name: _LOGGING["loggers"][name] for name in ("django.request", "django.security")},
}
