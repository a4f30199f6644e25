"""The web server's PostgreSQL connection pool: on in the ASGI app, off in the workers, and
really reusing connections (on the test database's server when the suite runs on PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

SHOW_POOL = (
    "import sys; sys.path.insert(0, {root!r}); {imp}; from django.conf import settings; "
    "print(settings.DATABASES['default']['OPTIONS'].get('pool'))"
)


def _pool_seen_by(imp: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "R1STUDIO_DB_POOL"}
    environ.update(DATABASE_URL="postgres://u@db.example:5432/r1", **env)
    environ["DJANGO_SETTINGS_MODULE"] = "r1studio.settings"
    code = SHOW_POOL.format(root=str(ROOT), imp=imp)
    done = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_the_asgi_app_pools_and_the_worker_does_not():
    assert "'max_size': 20" in _pool_seen_by("import r1studio.asgi")
    assert "'max_size': 5" in _pool_seen_by("import r1studio.asgi", R1STUDIO_DB_POOL_SIZE="5")
    assert _pool_seen_by("import r1studio.asgi", R1STUDIO_DB_POOL="0") == "None"
    assert _pool_seen_by("from r1studio.celery import app; import django; django.setup()") == "None"


@pytest.mark.django_db
def test_a_pooled_connection_is_reused_across_requests():
    if connection.vendor != "postgresql":
        pytest.skip("the pool is PostgreSQL's (the suite runs on SQLite here)")
    from django.db.backends.postgresql.base import DatabaseWrapper

    settings_dict = {**connection.settings_dict}
    settings_dict["OPTIONS"] = {**settings_dict["OPTIONS"], "pool": {"min_size": 1, "max_size": 4}}
    pooled = DatabaseWrapper(settings_dict, alias="pooled")
    try:
        for _ in range(10):  # ten requests, each opening and closing its connection
            with pooled.cursor() as cursor:
                cursor.execute("SELECT 1")
                assert cursor.fetchone() == (1,)
            pooled.close()
        stats = pooled.pool.get_stats()
        assert stats["requests_num"] == 10 and stats["connections_num"] <= 2
    finally:
        pooled.close_pool()
