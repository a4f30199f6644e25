"""A run's reproducibility bundle: one zip with all it takes to run the same stage again.

    config.json          the config as the stage read it (references resolved to files)
    config.yaml          the same, as YAML
    config.studio.json   the config as stored in the studio (`dataset:NAME@N` references)
    versions.json        python, git commit, torch, transformers, trl, vllm, datasets (the worker's)
    inputs.json          config hash, seed, the model it started from, each input's hash
    reproduce.sh         the exact command, with the environment variables it needs
    README.txt           how to reproduce, and how to check the inputs are the same

Built from what the run recorded (r1studio.runs.provenance) and its run folder, in memory: a
bundle is a few kilobytes.
"""

from __future__ import annotations

import io
import json
import shlex
import zipfile
from pathlib import Path
from typing import Any

from django.conf import settings

from pipeline import safeyaml
from pipeline.access import roots_env
from r1studio.runs.models import Run
from r1studio.runs.provenance import config_hash
from r1studio.runs.supervisor import pipeline_command

SCRIPT = """#!/usr/bin/env bash
# Reproduce run #{pk} ({name}): the same stage, config, seed and inputs.
# Run from a checkout of the R1 Studio code at the commit in versions.json.
set -euo pipefail
{exports}
python - <<'CHECK'
import hashlib, json
for entry in json.load(open("inputs.json"))["inputs"]:
    path, want = entry.get("path") or entry.get("ref"), entry.get("sha256")
    if entry.get("kind") == "file" and want:
        got = hashlib.sha256(open(path, "rb").read()).hexdigest()
        print(("ok      " if got == want else "CHANGED ") + path)
CHECK
{command}
"""

README = """Reproducibility bundle of run #{pk} "{name}" ({kind}), exported from R1 Studio.

What it ran
  config hash   sha256 {config_hash} (of the canonical JSON of config.studio.json)
  seed          {seed}
  starts from   {model}
  code          {code}
  libraries     {packages}

Inputs (inputs.json has them all, with their hashes)
{inputs}

How to reproduce
  1. Check out the R1 Studio code at the commit above and install the same library versions
     (versions.json), e.g. pip install torch=={torch} transformers=={transformers} trl=={trl}.
  2. Make the inputs available at the paths in config.json. A dataset version of the studio
     (dataset:NAME@N) is one Parquet file: export it from the version's page, or run this on a
     machine that shares the studio's data directory; its sha256 above identifies its rows.
  3. Run ./reproduce.sh (it checks the input files' hashes, then runs):
       {command}
  The stage writes its events, checkpoints and final model under ./reproduced.

Or in the studio: open run #{pk} and use "Clone and edit" (the same config, a new run).
"""


def _inputs_text(lineage: dict[str, Any]) -> str:
    lines = []
    for entry in lineage.get("inputs") or []:
        what = entry.get("version") or entry.get("ref")
        digest = entry.get("sha256") or entry.get("fingerprint") or entry.get("kind", "")
        lines.append(f"  {entry.get('loc')}: {what} ({digest})")
    return "\n".join(lines) or "  (none recorded)"


def _model_text(model: dict[str, Any]) -> str:
    if not model.get("path"):
        return "(not recorded)"
    if model.get("kind") == "checkpoint":
        return f"{model.get('what')} of run #{model.get('run')} ({model['path']})"
    return f"{model.get('kind')} model {model['path']}"


def _stage_config(run: Run) -> dict[str, Any]:
    """The config the stage read (the run folder's config.json), else the stored one."""
    written = Path(run.run_dir) / "config.json" if run.run_dir else None
    if written is not None and written.is_file():
        try:
            return json.loads(written.read_text())
        except (OSError, ValueError):
            pass
    return run.config or {}


def _command(run: Run) -> tuple[str, str]:
    """(the command line, its `export` lines) as the supervisor starts the stage."""
    argv = pipeline_command(run.kind, Path("config.json"), Path("reproduced"))
    command = " ".join(shlex.quote(a) for a in ["python", *argv[1:]])
    env = {
        "PYTHONUNBUFFERED": "1",
        **roots_env(data_dir=settings.R1STUDIO_DATA_DIR, extra=settings.R1STUDIO_ALLOWED_ROOTS),
    }
    exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
    return command, exports


def run_bundle_zip(*, run: Run) -> bytes:
    """The zip's bytes (see the module docstring)."""
    stage_config = _stage_config(run)
    lineage = run.lineage or {}
    environment = run.environment or {}
    packages = environment.get("packages") or {}
    command, exports = _command(run)
    inputs = {
        "run": run.pk,
        "config_hash": run.config_hash or config_hash(run.config or {}),
        "seed": lineage.get("seed", (run.config or {}).get("seed")),
        "model": lineage.get("model") or {},
        "parent_checkpoint": (lineage.get("model") or {}).get("path") or run.resume_from,
        "inputs": lineage.get("inputs") or [],
    }
    readme = README.format(
        pk=run.pk,
        name=run.name,
        kind=run.kind,
        config_hash=inputs["config_hash"],
        seed=inputs["seed"],
        model=_model_text(inputs["model"]),
        code=environment.get("git_commit") or "(not recorded: the run has not started yet)",
        packages=", ".join(f"{k} {v}" for k, v in packages.items()) or "(not recorded)",
        inputs=_inputs_text(lineage),
        command=command,
        torch=packages.get("torch", "?"),
        transformers=packages.get("transformers", "?"),
        trl=packages.get("trl", "?"),
    )
    files = {
        "config.json": json.dumps(stage_config, indent=2),
        "config.yaml": safeyaml.dump(stage_config),
        "config.studio.json": json.dumps(run.config or {}, indent=2),
        "versions.json": json.dumps(environment, indent=2),
        "inputs.json": json.dumps(inputs, indent=2),
        "reproduce.sh": SCRIPT.format(pk=run.pk, name=run.name, exports=exports, command=command),
        "README.txt": readme,
    }
    buffer = io.BytesIO()
    folder = f"run-{run.pk}-bundle"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name.endswith(".sh") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
    return buffer.getvalue()
