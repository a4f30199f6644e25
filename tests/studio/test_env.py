"""Settings come from the environment and a malformed value stops start-up with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from r1studio.env import (
    EnvError,
    check_redis_url,
    env_bool,
    env_int,
    env_list,
    load_env_file,
    parse_database_url,
    secret_key,
)

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "r1studio.settings", **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_reads_a_relative_sqlite_url_from_the_repository_root() -> None:
    db = parse_database_url("DATABASE_URL", "sqlite:///var/db.sqlite3", base=Path("/srv/app"))
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == "/srv/app/var/db.sqlite3"
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_it_reads_an_absolute_sqlite_url() -> None:
    db = parse_database_url("DATABASE_URL", "sqlite:////tmp/x/db.sqlite3", base=Path("/srv"))
    assert db["NAME"] == "/tmp/x/db.sqlite3"


def test_it_reads_a_postgres_url_with_credentials_and_options() -> None:
    db = parse_database_url(
        "DATABASE_URL",
        "postgres://r1:p%40ss@db.internal:6543/studio?sslmode=require",
        base=Path("/srv"),
    )
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("studio", "r1", "p@ss")
    assert (db["HOST"], db["PORT"]) == ("db.internal", "6543")
    assert db["OPTIONS"] == {"sslmode": "require"}


@pytest.mark.parametrize(
    "url",
    ["mysql://u@h/db", "postgres://u:p@/db", "postgres://u@host:5432/", "sqlite://", "nonsense"],
)
def test_it_refuses_malformed_database_urls(url: str) -> None:
    with pytest.raises(EnvError) as caught:
        parse_database_url("DATABASE_URL", url, base=Path("/srv"))
    assert str(caught.value).startswith("DATABASE_URL: ")
    assert "\n" not in str(caught.value)


def test_it_hides_the_password_of_a_malformed_url() -> None:
    with pytest.raises(EnvError) as caught:
        parse_database_url("DATABASE_URL", "postgres://u:hunter2@:5432/db", base=Path("/"))
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "redis://:pw@redis:6379", "rediss://h/3", "unix:///s"]
)
def test_it_accepts_redis_urls(url: str) -> None:
    assert check_redis_url("REDIS_URL", url) == url


@pytest.mark.parametrize(
    "url", ["http://h:6379/0", "redis://h:port/0", "redis://h:6379/zero", "redis://", ""]
)
def test_it_refuses_malformed_redis_urls(url: str) -> None:
    with pytest.raises(EnvError, match=r"^REDIS_URL: "):
        check_redis_url("REDIS_URL", url)


def test_it_reads_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BOOL", "Yes")
    monkeypatch.setenv("X_INT", "12")
    monkeypatch.setenv("X_LIST", "a.example, b.example,")
    assert env_bool("X_BOOL") is True
    assert env_int("X_INT", 3) == 12
    assert env_list("X_LIST", []) == ["a.example", "b.example"]
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(EnvError, match=r"^X_BOOL: "):
        env_bool("X_BOOL")
    monkeypatch.setenv("X_INT", "0")
    with pytest.raises(EnvError, match=r"^X_INT: must be at least 1"):
        env_int("X_INT", 3, minimum=1)


def test_it_reads_a_dot_env_file_without_overriding_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("R1_TEST_SET", "from-environment")
    monkeypatch.delenv("R1_TEST_NEW", raising=False)
    monkeypatch.delenv("R1_TEST_QUOTED", raising=False)
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# a comment\n\nR1_TEST_SET=from-file\nexport R1_TEST_NEW=yes\nR1_TEST_QUOTED='a b'\n"
    )
    load_env_file(dotenv)
    assert os.environ["R1_TEST_SET"] == "from-environment"
    assert os.environ["R1_TEST_NEW"] == "yes"
    assert os.environ["R1_TEST_QUOTED"] == "a b"
    dotenv.write_text("not a variable\n")
    with pytest.raises(EnvError, match=r"^\.env: line 1"):
        load_env_file(dotenv)


def test_it_generates_the_secret_key_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("R1_TEST_SECRET", raising=False)
    key_file = tmp_path / "var" / "secret_key"
    first = secret_key("R1_TEST_SECRET", key_file)
    assert len(first) >= 50
    assert secret_key("R1_TEST_SECRET", key_file) == first
    assert key_file.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("R1_TEST_SECRET", "from-the-environment")
    assert secret_key("R1_TEST_SECRET", key_file) == "from-the-environment"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DATABASE_URL", "mysql://root@localhost/r1"), ("REDIS_URL", "redis://localhost:port/0")],
)
def test_it_stops_start_up_with_one_line_naming_the_variable(variable: str, value: str) -> None:
    result = run_manage("check", **{variable: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr
