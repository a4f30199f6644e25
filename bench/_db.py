"""What the database benches share: a fresh database per run, a child interpreter, timings.

A bench script's `main()` calls `run_on_databases(...)`, which re-runs the script with `--child`
in a fresh interpreter whose DATABASE_URL points at an empty database: a temp SQLite file, or a
PostgreSQL database created and dropped on `--pg-url`'s server. The child calls `django_setup()`
for a migrated database with a `bench` user.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
PG_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000


def timed(func: Callable[[], Any], n: int) -> list[float]:
    """Seconds per call over `n` calls, after one call that warms caches and connections."""
    func()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        func()
        samples.append(time.perf_counter() - t0)
    return samples


def django_setup() -> Any:
    """In the child: Django on the empty database, migrated; returns the `bench` user."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "r1studio.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from r1studio.core.services import user_create

    call_command("migrate", verbosity=0)
    return user_create(username="bench", role="researcher", password="bench-password-1").user


def run_child(script: str, label: str, database_url: str, args: list[str]) -> int:
    """Run `script --child label *args` in a fresh interpreter on `database_url`."""
    with tempfile.TemporaryDirectory(prefix="r1studio-bench-data-") as data_dir:
        env = dict(os.environ, DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
        env["R1STUDIO_DATA_DIR"] = data_dir
        argv = [sys.executable, script, "--child", label, *args]
        return subprocess.run(argv, env=env, cwd=ROOT).returncode


def with_postgres(pg_url: str, name: str, body: Callable[[str], int]) -> int:
    """Create database `name` on the server of `pg_url`, run `body(url)`, drop it."""
    import psycopg

    parts = urlsplit(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        return body(urlunsplit(parts._replace(path=f"/{name}")))
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_on_databases(script: str, db: str, pg_url: str, bench_db: str, args: list[str]) -> int:
    """The child run on SQLite and/or PostgreSQL (`db`: sqlite, postgres or both)."""
    status = 0
    if db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="r1studio-bench-") as tmp:
            status |= run_child(script, "SQLite", f"sqlite:///{tmp}/bench.sqlite3", args)
    if db in ("postgres", "both"):
        status |= with_postgres(
            pg_url, bench_db, lambda url: run_child(script, "PostgreSQL", url, args)
        )
    return status
