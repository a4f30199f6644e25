"""What a run was made of, recorded so it can be reproduced: config hash, inputs, parent, seed.

At launch (`services.run_launch`) the run gets `config_hash` (sha256 of the canonical JSON of
its config: sorted keys, no spaces, so key order never changes it) and `lineage`:

    {"seed": 42,
     "model": {"path": ..., "kind": "base" | "checkpoint" | "hub", "run": 12, "what": ...},
     "inputs": [{"loc": "data.source", "kind": "dataset" | "file" | "folder" | "hub",
                 "ref": ..., "sha256": ..., ...}]}

A `dataset:NAME@N` input is described by the app that owns it (curation sits above runs), which
registers `input_describer_register(prefix=..., describe=...)` in its `AppConfig.ready`;
`describe(*, value) -> dict` gives at least `sha256` (the version's content hash). A file is
hashed when it is small enough to read at once, else fingerprinted by size and mtime.
`environment` (library versions, git commit) comes from the stage itself (`status` started
event, r1studio.runs.ingest), so it is the worker's, not the web server's.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.data import PRESET_FILES, benchmarks_dir, looks_like_hub_id
from r1studio.runs.models import Run

# Files up to this size are hashed at launch; larger ones get a size+mtime fingerprint (a 10 GB
# Parquet file must not hold a Launch click for a minute).
HASH_MAX_BYTES = 64 * 2**20
FOLDER_MAX_FILES = 2000
_CHUNK = 2**20

_describers: dict[str, Callable[..., dict[str, Any]]] = {}


def input_describer_register(*, prefix: str, describe: Callable[..., dict[str, Any]]) -> None:
    """Describe config values starting with `prefix` (`describe(*, value) -> dict`)."""
    _describers[prefix] = describe


def config_hash(config: dict) -> str:
    """sha256 of the config's canonical JSON: the same config in any key order, the same hash.

    >>> config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    True
    """
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def file_fingerprint(path: Path) -> dict[str, Any]:
    """`{sha256}` of a file up to HASH_MAX_BYTES, else `{size, mtime, fingerprint}`."""
    stat = path.stat()
    if stat.st_size <= HASH_MAX_BYTES:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        return {"sha256": digest.hexdigest(), "size": stat.st_size}
    return {
        "size": stat.st_size,
        "mtime": int(stat.st_mtime),
        "fingerprint": f"size {stat.st_size}, mtime {int(stat.st_mtime)}",
    }


def folder_fingerprint(path: Path) -> dict[str, Any]:
    """A hash of a folder's file names, sizes and mtimes (an HF `save_to_disk` folder, a run's
    dataset folder): changes when any file does, without reading gigabytes."""
    digest = hashlib.sha256()
    count = 0
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            file = Path(root) / name
            try:
                stat = file.stat()
            except OSError:
                continue
            relative = file.relative_to(path).as_posix()
            digest.update(f"{relative}\0{stat.st_size}\0{int(stat.st_mtime)}\n".encode())
            count += 1
            if count >= FOLDER_MAX_FILES:
                break
    return {"fingerprint": digest.hexdigest(), "files": count}


def run_for_path(path: str) -> tuple[Run | None, str]:
    """The run whose folder holds `path` (a checkpoint, a final model, a dataset folder) and the
    part inside it (`final`, `checkpoints/checkpoint-40`); (None, "") when no run wrote it."""
    if not path.startswith("/"):
        return None, ""
    target = Path(path)
    ancestors = [str(p) for p in (target, *target.parents)][:-1]
    runs = {r.run_dir: r for r in Run.objects.filter(run_dir__in=ancestors).exclude(run_dir="")}
    for ancestor in ancestors:
        if ancestor in runs:
            return runs[ancestor], target.relative_to(ancestor).as_posix()
    return None, ""


def _describe_path(value: str) -> dict[str, Any]:
    path = Path(value).expanduser()
    if path.is_file():
        entry = {"kind": "file", **file_fingerprint(path)}
    elif path.is_dir():
        entry = {"kind": "folder", **folder_fingerprint(path)}
    else:
        return {"kind": "missing"}
    run, inside = run_for_path(str(path))
    if run is not None:
        entry.update(run=run.pk, run_name=run.name, inside=inside)
    return entry


def input_describe(value: str) -> dict[str, Any]:
    """What one input value is, with its hash or fingerprint (see the module docstring)."""
    for prefix, describe in _describers.items():
        if value.startswith(prefix):
            try:
                return {"kind": "dataset", **describe(value=value)}
            except Exception as exc:  # a version deleted meanwhile: say so, do not fail
                return {"kind": "dataset", "error": str(exc)[:300]}
    if value in PRESET_FILES:
        file = benchmarks_dir() / PRESET_FILES[value]
        if file.is_file():
            return {"kind": "file", "preset": value, "path": str(file), **file_fingerprint(file)}
        return {"kind": "preset", "preset": value}
    if Path(value).expanduser().exists():
        return _describe_path(value)
    if looks_like_hub_id(value):
        return {"kind": "hub"}
    return {"kind": "missing"}


def input_values(config: dict) -> list[tuple[str, str]]:
    """(loc, value) of the config's data inputs (the fields pipeline.access checks)."""
    found: list[tuple[str, str]] = []
    data = config.get("data") or {}
    if isinstance(data, dict) and data.get("source"):
        found.append(("data.source", str(data["source"])))
    evaluation = config.get("eval") or {}
    if isinstance(evaluation, dict) and evaluation.get("benchmark"):
        found.append(("eval.benchmark", str(evaluation["benchmark"])))
    for i, bench in enumerate(config.get("benchmarks") or []):
        if isinstance(bench, dict) and (bench.get("path") or bench.get("name")):
            found.append((f"benchmarks.{i}.path", str(bench.get("path") or bench["name"])))
    filters = config.get("filters") or {}
    for i, value in enumerate((filters.get("decontaminate") or []) if filters else []):
        found.append((f"filters.decontaminate.{i}", str(value)))
    return found


def model_describe(path: str) -> dict[str, Any]:
    """The model a stage starts from: a base model folder, a hub id, or an earlier run's
    checkpoint (then its run and what it is: `final`, `checkpoints/checkpoint-40`)."""
    if not path:
        return {}
    run, inside = run_for_path(path)
    if run is not None:
        return {"path": path, "kind": "checkpoint", "run": run.pk, "run_name": run.name,
                "what": inside}  # fmt: skip
    if Path(path).expanduser().exists():
        return {"path": path, "kind": "base"}
    return {"path": path, "kind": "hub" if looks_like_hub_id(path) else "missing"}


def launch_record(config: dict) -> dict[str, Any]:
    """The Run fields recorded at launch: `config_hash` and `lineage` (module docstring)."""
    model = config.get("model") or {}
    inputs = [
        {"loc": loc, "ref": value, **input_describe(value)} for loc, value in input_values(config)
    ]
    lineage = {
        "seed": config.get("seed"),
        "model": model_describe(str(model.get("path") or "")) if isinstance(model, dict) else {},
        "inputs": inputs,
    }
    return {"config_hash": config_hash(config), "lineage": lineage}


def environment_clean(value: Any) -> dict[str, Any]:
    """The `environment` of a started event, kept to known keys and short strings (it comes
    from a process, or over HTTP from a script: never trusted to be small or well formed)."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, Any] = {}
    for key in ("python", "platform", "git_commit"):
        if isinstance(value.get(key), str):
            out[key] = value[key][:200]
    packages = value.get("packages")
    if isinstance(packages, dict):
        out["packages"] = {
            str(name)[:60]: str(version)[:60]
            for name, version in list(packages.items())[:20]
            if isinstance(version, str)
        }
    return out
