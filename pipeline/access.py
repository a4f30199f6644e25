"""What a stage config may reach on this machine: files inside the allowed roots, and judge
endpoints and API-key variables an admin allow-listed.

A config names local paths (``model.path``, ``data.source``, ``benchmarks.N.path``,
``eval.benchmark``, ``filters.decontaminate.N``, a judge's ``model``) and a judge reward names
a URL and the environment variable holding its API key. Left open, a researcher could read any
file the worker can read (shown back as traces) or send any of the worker's secrets anywhere.
So, before anything is read:

- local paths must resolve (``~``, ``..`` and symlinks followed) inside an allowed root:
  ``$R1STUDIO_DATA_DIR``, the benchmarks folder (``pipeline.data.benchmarks_dir``) and the
  folders an admin lists in ``$R1STUDIO_ALLOWED_ROOTS`` (``:``-separated). Hub ids (``org/name``
  that is not a local path) and benchmark presets are names, not files: they stay allowed; so
  do studio dataset versions (``dataset:NAME@N``), which the studio replaces by their Parquet
  file in the data directory before the stage starts (the stage refuses them unresolved).
  ``${runs}`` stands for ``<data dir>/runs``.
- a judge ``url`` must lie under a prefix listed in ``$R1STUDIO_JUDGE_URLS`` (``,``-separated;
  empty: no remote judge), its ``api_key_env`` must be listed in ``$R1STUDIO_JUDGE_KEY_ENVS``,
  and its ``cache_dir`` is a folder inside the run folder.
- ``model.trust_remote_code`` (a hub model's own Python, run on the worker) needs
  ``$R1STUDIO_ALLOW_REMOTE_CODE=1``; a GRPO ``vllm_server_base_url`` must lie under a prefix in
  ``$R1STUDIO_VLLM_URLS`` (the server receives the model's weights and prompts).

The web process passes its settings to ``allowed_roots(data_dir=..., extra=...)``; the
supervisor puts the same values into the pipeline process's environment, where
``allowed_roots()`` reads them. The CLI run by hand with neither variable set reads what the
person running it can read (``allowed_roots()`` is ``None``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from pipeline.config import RUNS_VAR
from pipeline.data import PRESET_FILES, benchmarks_dir, is_dataset_ref

DATA_DIR_ENV = "R1STUDIO_DATA_DIR"
ROOTS_ENV = "R1STUDIO_ALLOWED_ROOTS"
JUDGE_URLS_ENV = "R1STUDIO_JUDGE_URLS"
JUDGE_KEY_ENVS_ENV = "R1STUDIO_JUDGE_KEY_ENVS"
VLLM_URLS_ENV = "R1STUDIO_VLLM_URLS"
REMOTE_CODE_ENV = "R1STUDIO_ALLOW_REMOTE_CODE"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
OUTSIDE = (
    "is outside the folders runs may read (the data directory, the benchmarks folder and "
    f"those an admin lists in {ROOTS_ENV})"
)


def _err(loc: str, msg: str) -> dict[str, str]:
    return {"loc": loc, "msg": msg}


def resolve(path: str | os.PathLike) -> Path:
    """The absolute path with ``~``, ``..`` and symlinks resolved (the file need not exist)."""
    return Path(os.path.expanduser(os.fspath(path))).resolve()


def split_roots(value: str) -> list[str]:
    """``"/a:/b: "`` → ``["/a", "/b"]``."""
    return [part.strip() for part in (value or "").split(":") if part.strip()]


def split_list(value: str) -> list[str]:
    """``"a, b,"`` → ``["a", "b"]``."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@dataclass(frozen=True)
class Roots:
    """The folders a run may read; ``runs_root`` is what ``${runs}`` stands for."""

    folders: tuple[Path, ...]
    runs_root: Path | None = None

    def allows(self, path: str | os.PathLike) -> bool:
        target = resolve(path)
        return any(target == root or target.is_relative_to(root) for root in self.folders)


def allowed_roots(
    *,
    data_dir: str | os.PathLike | None = None,
    extra: Iterable[str | os.PathLike] | None = None,
    env: Mapping[str, str] | None = None,
) -> Roots | None:
    """The allowed roots: from the arguments (the web process), else from the environment.

    ``None`` when neither argument nor variable is given: nothing is restricted.
    """
    env = os.environ if env is None else env
    if data_dir is None and extra is None:
        data_dir = env.get(DATA_DIR_ENV, "").strip() or None
        extra = split_roots(env.get(ROOTS_ENV, ""))
        if data_dir is None and not extra:
            return None
    folders = [Path(data_dir)] if data_dir else []
    folders += [Path(p) for p in extra or ()]
    folders.append(benchmarks_dir())
    return Roots(
        folders=tuple(dict.fromkeys(resolve(f) for f in folders)),
        runs_root=resolve(Path(data_dir) / "runs") if data_dir else None,
    )


def roots_env(*, data_dir: str | os.PathLike, extra: Iterable[str | os.PathLike]) -> dict:
    """The environment variables that give a pipeline process these roots."""
    return {
        DATA_DIR_ENV: str(resolve(data_dir)),
        ROOTS_ENV: ":".join(str(resolve(p)) for p in extra),
    }


def is_name(value: str) -> bool:
    """A benchmark preset, a hub id (``org/name``) or a studio dataset version
    (``dataset:NAME@N``, resolved by the studio to a file it checks then), not a local path:
    reads no local file."""
    if is_dataset_ref(value):
        return True
    if Path(value).expanduser().exists():
        return False
    if value in PRESET_FILES:
        return True
    return bool(_HUB_ID.match(value)) and not value.startswith((".", "/", "~"))


def path_error(value: Any, loc: str, roots: Roots | None) -> list[dict[str, str]]:
    """``[error]`` when ``value`` is a local path outside ``roots``; ``[]`` otherwise."""
    if roots is None or not isinstance(value, str) or not value.strip() or is_name(value):
        return []
    if RUNS_VAR in value:
        if roots.runs_root is None:
            return []  # the pipeline checks it again once ${runs} is substituted
        value = value.replace(RUNS_VAR, str(roots.runs_root))
    if roots.allows(value):
        return []
    return [_err(loc, f"{value} {OUTSIDE}")]


# ---------------------------------------------------------------------------------------------
# Judge endpoints, API keys and cache


def url_allowed(url: str, prefixes: Iterable[str]) -> bool:
    """``url`` is an http(s) URL under one of ``prefixes``: same scheme, host and port, and a
    path at or below the prefix's path, with no ``..``, credentials, query or fragment.

    >>> url_allowed("http://judge:8000/v1", ["http://judge:8000"])
    True
    >>> url_allowed("http://judge:8000@evil.example/v1", ["http://judge:8000"])
    False
    """
    try:
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            return False
        if u.username or u.password or u.query or u.fragment or ".." in u.path.split("/"):
            return False
        for prefix in prefixes:
            p = urlsplit(prefix)
            if (u.scheme, u.hostname, u.port) != (p.scheme, p.hostname, p.port):
                continue
            base = p.path.rstrip("/")
            if not base or u.path.rstrip("/") == base or u.path.startswith(base + "/"):
                return True
    except ValueError:  # a malformed port or host
        return False
    return False


def judge_url_error(url: Any, env: Mapping[str, str] | None = None) -> str | None:
    """Why the judge may not call ``url`` here, or ``None`` when it may."""
    env = os.environ if env is None else env
    if not isinstance(url, str):
        return "must be a URL string"
    allowed = split_list(env.get(JUDGE_URLS_ENV, ""))
    if not allowed:
        return (
            f"remote judges are off on this studio (an admin lists allowed endpoints in "
            f"{JUDGE_URLS_ENV}); use a local judge model instead"
        )
    if not url_allowed(url, allowed):
        return f"{url} is not an allowed judge endpoint (allowed: {', '.join(allowed)})"
    return None


def judge_key_env_error(name: Any, env: Mapping[str, str] | None = None) -> str | None:
    """Why the judge may not send the variable ``name`` as its API key, or ``None``."""
    env = os.environ if env is None else env
    if name is None or name == "":
        return None
    allowed = split_list(env.get(JUDGE_KEY_ENVS_ENV, ""))
    if not isinstance(name, str) or name not in allowed:
        listed = ", ".join(allowed) or f"none; an admin lists them in {JUDGE_KEY_ENVS_ENV}"
        return f"{name!r} is not a variable judges may use as their API key (allowed: {listed})"
    return None


def judge_cache_error(cache_dir: Any) -> str | None:
    """Why ``cache_dir`` is not a folder inside the run folder, or ``None``."""
    if cache_dir is None or cache_dir == "":
        return None
    if not isinstance(cache_dir, str):
        return "must be a folder name inside the run folder"
    path = PurePosixPath(cache_dir.replace("\\", "/"))
    if path.is_absolute() or cache_dir.startswith("~") or ".." in path.parts:
        return "must be a relative folder inside the run folder (no absolute path, no ..)"
    return None


# ---------------------------------------------------------------------------------------------
# The whole config


def _reward_specs(config: Any) -> Iterator[tuple[str, Any]]:
    for where in ("rewards", "verifiers"):
        for i, spec in enumerate(getattr(config, where, None) or []):
            yield f"{where}.{i}", spec


def _paths(config: Any) -> Iterator[tuple[str, Any]]:
    yield "model.path", config.model.path
    data = getattr(config, "data", None)
    if data is not None:
        yield "data.source", data.source
    if config.kind == "grpo":
        yield "eval.benchmark", config.eval.benchmark
    if config.kind == "generate":
        for i, bench in enumerate(config.filters.decontaminate):
            yield f"filters.decontaminate.{i}", bench
    if config.kind == "evaluate":
        for i, spec in enumerate(config.benchmarks):
            yield f"benchmarks.{i}.path", spec.path
    for where, spec in _reward_specs(config):
        if spec.name == "judge" and spec.params.get("model"):
            yield f"{where}.params.model", spec.params["model"]


def access_errors(
    config: Any, roots: Roots | None, env: Mapping[str, str] | None = None
) -> list[dict[str, str]]:
    """Every path outside ``roots`` and every judge setting the admin did not allow."""
    errors = []
    for loc, value in _paths(config):
        errors += path_error(value, loc, roots)
    for where, spec in _reward_specs(config):
        if spec.name != "judge":
            continue
        params = spec.params
        checks = [
            ("url", judge_url_error(params["url"], env) if params.get("url") else None),
            ("api_key_env", judge_key_env_error(params.get("api_key_env"), env)),
            ("cache_dir", judge_cache_error(params.get("cache_dir"))),
        ]
        errors += [_err(f"{where}.params.{name}", msg) for name, msg in checks if msg]
    errors += _worker_code_errors(config, os.environ if env is None else env)
    return errors


def _worker_code_errors(config: Any, env: Mapping[str, str]) -> list[dict[str, str]]:
    """Settings that would run a stranger's code or send a model to a stranger's server."""
    errors = []
    if config.model.trust_remote_code and env.get(REMOTE_CODE_ENV, "") not in ("1", "true"):
        errors.append(
            _err(
                "model.trust_remote_code",
                "running a model's own code on the workers is off on this studio (an admin "
                f"turns it on with {REMOTE_CODE_ENV}=1)",
            )
        )
    trainer = getattr(config, "trainer", None)
    url = getattr(trainer, "vllm_server_base_url", None)
    if url:
        allowed = split_list(env.get(VLLM_URLS_ENV, ""))
        if not url_allowed(url, allowed):
            listed = ", ".join(allowed) or f"none; an admin lists them in {VLLM_URLS_ENV}"
            errors.append(
                _err(
                    "trainer.vllm_server_base_url",
                    f"{url} is not an allowed vLLM server (allowed: {listed}); leave it empty "
                    "to generate in colocated mode",
                )
            )
    return errors
