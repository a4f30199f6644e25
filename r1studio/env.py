"""Typed readers for the environment variables that configure R1 Studio.

Every reader fails loudly with an `EnvError` whose message is one line that starts with the
variable's name, so a typo in `DATABASE_URL` stops start-up with a sentence the user can act on
instead of a stack trace from deep inside a database driver. `manage.py` prints that line and
exits with status 2.

URLs are parsed here rather than with a third-party helper: we support exactly two database
schemes (SQLite and PostgreSQL) and the Redis schemes redis-py understands.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql"}
REDIS_SCHEMES = {"redis", "rediss", "unix"}


class EnvError(ImproperlyConfigured):
    """A malformed environment variable; `str(error)` is one line naming the variable."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        super().__init__(f"{name}: {problem}")


def load_env_file(path: Path) -> None:
    """Copy `KEY=VALUE` lines of a `.env` file into os.environ; variables already set win.

    Blank lines and `#` comments are skipped, `export ` prefixes and matching quotes removed.
    """
    if not path.is_file():
        return
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key.replace("_", "").isalnum():
            raise EnvError(str(path.name), f"line {number}: expected KEY=VALUE, got {raw!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key, value)


def env_str(name: str, default: str = "") -> str:
    """Return the variable's value, or `default` when it is unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_bool(name: str, default: bool = False) -> bool:
    """Read a yes/no switch: 1/true/yes/on or 0/false/no/off (any case)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise EnvError(name, f"expected true or false, got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """Read an integer, refusing anything below `minimum`."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise EnvError(name, f"expected a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise EnvError(name, f"must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated list; blank items are dropped."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_header(name: str) -> tuple[str, str] | None:
    """Read `Header-Name: value` into Django's form (`("HTTP_HEADER_NAME", "value")`), or None.

    Used for SECURE_PROXY_SSL_HEADER: `X-Forwarded-Proto: https`.
    """
    raw = env_str(name)
    if not raw:
        return None
    header, sep, value = raw.partition(":")
    header, value = header.strip(), value.strip()
    if not sep or not value or not header or not header.replace("-", "").isalnum():
        expected = "expected HEADER-NAME: VALUE, e.g. X-Forwarded-Proto: https"
        raise EnvError(name, f"{expected}; got {raw!r}")
    return "HTTP_" + header.upper().replace("-", "_"), value


def env_path(name: str, default: Path, *, base: Path) -> Path:
    """Read a filesystem path; relative paths are taken from `base` (the repository root)."""
    raw = env_str(name)
    path = Path(raw).expanduser() if raw else default
    return path if path.is_absolute() else (base / path)


def _mask(url: str) -> str:
    """Hide a password inside a URL before echoing it in an error message."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable>"
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def parse_database_url(name: str, url: str, *, base: Path) -> dict[str, Any]:
    """Turn `sqlite:///path` or `postgres://user:pass@host:port/db?opt=v` into a DATABASES entry.

    `sqlite:///var/db.sqlite3` is relative to `base`; `sqlite:////abs/db.sqlite3` is absolute.
    SQLite gets WAL mode and IMMEDIATE transactions because the web server and the worker write
    to the same file at the same time.
    """
    expected = "expected sqlite:///PATH or postgres://USER:PASSWORD@HOST:PORT/NAME"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EnvError(name, f"{expected}, got {_mask(url)!r}") from None
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if parts.netloc or not parts.path or parts.path == "/":
            raise EnvError(name, f"{expected}, got {_mask(url)!r}")
        raw_path = unquote(parts.path[1:])  # sqlite:///rel -> "rel", sqlite:////abs -> "/abs"
        path = Path(raw_path)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(path if path.is_absolute() else base / path),
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    if scheme in POSTGRES_SCHEMES:
        db_name = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not db_name or "/" in db_name:
            raise EnvError(name, f"{expected}, got {_mask(url)!r}")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": db_name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname,
            "PORT": str(port or ""),
            "CONN_MAX_AGE": 0,
            "OPTIONS": dict(parse_qsl(parts.query)),
        }
    raise EnvError(name, f"{expected}, got {_mask(url)!r}")


def check_redis_url(name: str, url: str) -> str:
    """Validate a Redis URL (`redis://[:password@]host[:port][/db]`) and return it unchanged."""
    expected = "expected redis://HOST:PORT/DB (or rediss:// or unix://)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError:
        raise EnvError(name, f"{expected}, got {_mask(url)!r}") from None
    if parts.scheme not in REDIS_SCHEMES:
        raise EnvError(name, f"{expected}, got {_mask(url)!r}")
    if parts.scheme == "unix":
        if not parts.path:
            raise EnvError(name, f"{expected}, got {_mask(url)!r}")
        return url
    if not parts.hostname:
        raise EnvError(name, f"{expected}, got {_mask(url)!r}")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise EnvError(name, f"the database number must be a whole number, got {db!r}")
    return url


def check_ray_address(name: str, url: str) -> str:
    """Validate the address of a Ray cluster's dashboard (`http://HOST:8265`, where its Jobs API
    answers); "" (unset) means no cluster. Returned without a trailing slash."""
    if not url:
        return ""
    expected = "expected the Ray dashboard's address, http://HOST:8265 (or https://)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError:
        raise EnvError(name, f"{expected}, got {_mask(url)!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EnvError(name, f"{expected}, got {_mask(url)!r}")
    return url.rstrip("/")


def secret_key(name: str, key_file: Path) -> str:
    """Return SECRET_KEY from the environment, else from `key_file`, creating it once.

    The file is created atomically (written aside, then hard-linked into place) so two
    processes starting together agree on one key.
    """
    value = env_str(name)
    if value:
        return value
    if key_file.exists():
        return key_file.read_text().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    aside = key_file.with_name(f".{key_file.name}.{os.getpid()}")
    aside.write_text(secrets.token_urlsafe(50) + "\n")
    aside.chmod(0o600)
    try:
        os.link(aside, key_file)
    except FileExistsError:
        pass  # another process won the race; use its key
    finally:
        aside.unlink(missing_ok=True)
    return key_file.read_text().strip()
