"""The four stage kinds of the R1 recipe, each a ``run(config, reporter, *, resume)`` function.

``run_stage`` wraps one stage in the run lifecycle the supervisor reads from ``events.jsonl``:
``started`` → ``running`` (from the stage) → ``finished`` | ``failed`` (with the traceback) |
``cancelled`` (after a graceful stop), and maps the outcome to the CLI's exit code.
"""

from __future__ import annotations

import importlib
import os
import traceback
from pathlib import Path
from typing import Any

from pipeline.stages.common import StageCancelled, StageError

EXIT_FINISHED, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143

__all__ = ["StageCancelled", "StageError", "run", "run_stage"]


# kind -> the module whose `run` does it; imported when a stage runs (each pulls in TRL).
STAGE_MODULES = {
    "grpo": "pipeline.stages.grpo",
    "sft": "pipeline.stages.sft",
    "generate": "pipeline.stages.generate",
    "evaluate": "pipeline.stages.evaluate",
}


def run(config: Any, reporter: Any, *, resume: bool = False) -> dict:
    """Run the stage module of ``config.kind``; returns its summary."""
    module = importlib.import_module(STAGE_MODULES[config.kind])
    return module.run(config, reporter, resume=resume)


def run_stage(
    config: Any, run_dir: str | Path, *, resume: bool = False, cancel_code: int = EXIT_TERMINATED
) -> int:
    """Run one stage into ``run_dir`` with status events; returns the process exit code."""
    from pipeline.reporting import NullReporter

    # Under `accelerate launch` every rank runs this; only the main one writes events.
    main = os.environ.get("RANK", "0") == "0"
    reporter = stage_reporter(run_dir) if main else NullReporter(run_dir)
    try:
        return _lifecycle(config, reporter, resume, cancel_code)
    finally:
        reporter.close()


# Set by the studio on a job it submits to a Ray cluster (r1studio/runs/ray_executor.py): the
# studio does not read that machine's disk, so the stage sends its events over HTTP.
REPORT_ENV = ("R1STUDIO_URL", "R1STUDIO_RUN_ID", "R1STUDIO_RUN_TOKEN")


def stage_reporter(run_dir: str | Path) -> Any:
    """``events.jsonl`` in the run folder; sent to the studio as well (``HttpReporter``, which
    spools in that same file while the studio is away) when $R1STUDIO_URL, $R1STUDIO_RUN_ID and
    $R1STUDIO_RUN_TOKEN say where to."""
    from pipeline.http_reporter import HttpReporter
    from pipeline.reporting import JsonlReporter

    url, run_id, token = (os.environ.get(name, "").strip() for name in REPORT_ENV)
    if url and run_id.isdigit() and token:
        return HttpReporter(run_dir, url=url, token=token, run_id=int(run_id))
    return JsonlReporter(run_dir)


def _lifecycle(config: Any, reporter: Any, resume: bool, cancel_code: int) -> int:
    from pipeline.environment import environment
    from pipeline.reporting import stop_requested
    from pipeline.stages.common import quiet_libraries

    # The versions this machine runs with: the studio records them on the run (lineage).
    reporter.status(
        "started",
        f"{config.kind} stage" + (" (resume)" if resume else ""),
        environment=environment(),
    )
    try:
        quiet_libraries()
        from transformers import set_seed

        set_seed(config.seed)
        summary = run(config, reporter, resume=resume)
    except StageCancelled as exc:
        reporter.status("cancelled", str(exc))
        return cancel_code
    except KeyboardInterrupt:
        reporter.status("cancelled", "interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if stop_requested():
            reporter.status("cancelled", f"stopped: {exc}")
            return cancel_code
        from pipeline.data import DataError

        user_facing = isinstance(exc, StageError | DataError)
        message = str(exc) if user_facing else traceback.format_exc()
        reporter.status("failed", message)
        return EXIT_FAILED
    reporter.status("finished", _summary_text(summary))
    return EXIT_FINISHED


def _summary_text(summary: Any) -> str:
    if not isinstance(summary, dict) or not summary:
        return ""
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, dict):  # evaluate: {benchmark: metrics}
            flat.update({f"{key} {k}": v for k, v in value.items() if k != "n_problems"})
        else:
            flat[key] = value
    parts = []
    for key, value in list(flat.items())[:12]:
        if isinstance(value, float):
            parts.append(f"{key}={value:.4g}")
        elif isinstance(value, int | str):
            parts.append(f"{key}={value}")
    return ", ".join(parts)
