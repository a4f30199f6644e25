"""Datasets and runs, both ways: a generate run's dataset becomes a version; a stage trains on one.

**What a run wrote.** A `generate` stage ends with a `dataset` event (`{path, rows, kind}`: its
`<run_dir>/dataset` folder, with `data.parquet`). The ingest hands it to
`dataset_events_ingest` (registered in `CurationConfig.ready`) inside the transaction that
advances the run's byte offset, so what is done there is done exactly once, and it must be
cheap: it finds or makes the run's dataset (`<run name>-<run id>`) and queues a `DatasetJob` of
kind `run`, one per (run, path), so an event read twice queues nothing more. The job reads the
run's Parquet file and writes the version through `version_write` on a worker after the commit:
hashing and rewriting 800k long rows takes tens of seconds, which must not hold the ingest
transaction (on SQLite, the whole database). The version's provenance is the run (id, step, the
model it sampled, its sampling, verifiers and filter config, its counts) and its funnel comes
from the counts the stage logs as metrics (`prompts`, `dropped/<filter>`, `samples`, `kept`).

**What a run reads.** `dataset:NAME@N` (or `dataset:NAME`, the latest) in a config is checked on
create, edit, launch and Check, and the supervisor resolves it to the version's Parquet file
before the stage starts (r1studio.runs.inputs). Resolving for a run records a `DatasetUse` with
the version's hash, so that version can no longer be deleted, and a resume reads the same
version again even when `dataset:NAME` has a newer one by then.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from r1studio.core.roles import RESEARCHER, user_has_role
from r1studio.curation import storage
from r1studio.curation.jobs import JobError, Progress, job_create
from r1studio.curation.models import (
    Dataset,
    DatasetJob,
    DatasetKind,
    DatasetUse,
    DatasetVersion,
    ProvenanceType,
)
from r1studio.curation.services import DatasetError, dataset_get_or_create, version_write
from r1studio.metrics.selectors import run_last_values, run_metric_names
from r1studio.runs.inputs import InputError
from r1studio.runs.models import Run
from r1studio.runs.selectors import PickerChoice
from r1studio.runs.services import config_roots

logger = logging.getLogger(__name__)

PREFIX = "dataset:"
_REF = re.compile(r"dataset:(?P<name>[A-Za-z0-9._-]{1,100})(?:@(?P<number>\d{1,9}))?")
# The generate stage's filters in the order it applies them (FilterSection), after sampling.
FILTER_ORDER = (
    "keep_correct",
    "mixed_language",
    "max_length",
    "max_repetition",
    "dedup",
    "max_per_prompt",
)
RUN_CONFIG_KEYS = ("sampling", "verifiers", "filters", "output")

# ---------------------------------------------------------------------------------------------
# A generate run's dataset becomes a version


def _dataset_kind(run: Run, event: dict) -> str:
    # The event's kind is the row shape (messages, prompt_completion); what the rows are for
    # shows in the preset or name the researcher gave the run.
    if event.get("kind") in DatasetKind.values:
        return event["kind"]
    words = f"{run.preset} {run.name}".lower()
    if "cold" in words:
        return DatasetKind.COLD_START
    if "distil" in words:
        return DatasetKind.DISTILLATION
    return DatasetKind.REASONING  # rejection sampling: correct, filtered reasoning


def run_dataset_name(run: Run) -> str:
    """`<run name>-<run id>`, e.g. `rejection-sampling-12`: what configs write as dataset:NAME."""
    slug = slugify(run.name)[:80].strip("-_") or "run"
    return f"{slug}-{run.pk}"


def _run_dataset(run: Run, event: dict) -> Dataset:
    name = run_dataset_name(run)
    existing = Dataset.objects.filter(name=name).first()
    if existing is not None and existing.owner_id != run.owner_id:
        name = f"{name}-run"  # someone took the name for a dataset of their own
    return dataset_get_or_create(user=run.owner, name=name, kind=_dataset_kind(run, event))


def dataset_events_ingest(*, run: Run, events: list[dict]) -> int:
    """Queue one registration job per new dataset the run wrote; returns how many were queued.

    Runs inside the ingest transaction (see the module docstring): nothing slow here, and
    nothing that raises for a dataset that cannot be registered (that would stop the run's
    ingestion): such a dataset is logged and left out.
    """
    queued = 0
    for event in events:
        path = event.get("path")
        rows = event.get("rows")
        if not isinstance(path, str) or not path:
            continue
        if isinstance(rows, int) and rows <= 0:
            logger.info("run %s: its dataset %s is empty, no version made", run.pk, path)
            continue
        if DatasetJob.objects.filter(
            kind=DatasetJob.Kind.RUN, params__run=run.pk, params__path=path
        ).exists():
            continue  # the same event, read again
        try:
            dataset = _run_dataset(run, event)
        except (PermissionDenied, DatasetError) as exc:
            logger.warning("run %s: its dataset %s is not registered: %s", run.pk, path, exc)
            continue
        params = {"run": run.pk, "path": path, "rows": rows, "format": event.get("kind")}
        job_create(kind=DatasetJob.Kind.RUN, dataset=dataset, user=run.owner, params=params)
        queued += 1
    return queued


def _parquet_file(path: str) -> Path:
    target = Path(path)
    if target.is_dir():
        target = target / "data.parquet"
    if not config_roots().allows(target):
        raise JobError(f"{target} is outside the folders runs may read: not registered")
    if not target.is_file():
        raise JobError(f"{target} is not on this worker (the run's folder must be shared)")
    return target


def run_counts(run: Run) -> dict[str, float]:
    """The generate stage's counts as it logged them (`prompts`, `dropped/<filter>`, ...)."""
    names = [
        n
        for n in run_metric_names(run=run)
        if n in ("prompts", "samples", "kept", "keep_rate")
        or n.startswith(("dropped/", "verifiers/"))
    ]
    values = run_last_values(run=run, names=names)
    return {name: values[name] for name in sorted(values) if values[name] is not None}


def _step(step: str, rows_in: int, rows_out: int, op: str = "") -> dict[str, Any]:
    # The shape of a curation job's funnel (pipeline.curation): what the version page charts.
    entry = {"step": step, "op": op or step, "rows_in": rows_in, "rows_out": rows_out}
    if rows_out > rows_in:
        return {**entry, "dropped": 0, "added": rows_out - rows_in}
    return {**entry, "dropped": rows_in - rows_out}


def run_funnel(counts: dict[str, float]) -> list[dict[str, Any]]:
    """`[{step, op, rows_in, rows_out, dropped}]` from a generate stage's counts: the prompts
    decontaminated, the completions sampled for them (`added`), then each filter in the order
    the stage applies them.

    >>> funnel = run_funnel({"prompts": 10, "dropped/decontaminate": 2, "samples": 32,
    ...                      "dropped/keep_correct": 12, "kept": 20})
    >>> [(s["step"], s["rows_in"], s["rows_out"]) for s in funnel]
    [('decontaminate', 10, 8), ('completions', 8, 32), ('keep_correct', 32, 20)]
    """
    if "samples" not in counts:
        return []
    funnel = []
    prompts = int(counts.get("prompts", 0))
    if "dropped/decontaminate" in counts:
        clean = prompts - int(counts["dropped/decontaminate"])
        funnel.append(_step("decontaminate", prompts, clean))
        prompts = clean
    rows = int(counts["samples"])
    funnel.append(_step("completions", prompts, rows, op="generate"))
    dropped = [n.removeprefix("dropped/") for n in counts if n.startswith("dropped/")]
    order = [n for n in FILTER_ORDER if n in dropped]
    order += sorted(n for n in dropped if n not in FILTER_ORDER and n != "decontaminate")
    for name in order:
        out = rows - int(counts[f"dropped/{name}"])
        funnel.append(_step(name, rows, out))
        rows = out
    return funnel


def _provenance(run: Run, params: dict, file: Path, counts: dict) -> dict[str, Any]:
    config = run.config or {}
    model = (config.get("model") or {}).get("path", "")
    return {
        "run": run.pk,
        "run_name": run.name,
        "path": params["path"],
        "file": str(file),
        "step": run.step,
        # the checkpoint or model folder the stage sampled from
        "model": model,
        "data": (config.get("data") or {}).get("source", ""),
        **{key: config[key] for key in RUN_CONFIG_KEYS if key in config},
        "counts": counts,
    }


def run_dataset_register(job: DatasetJob, progress: Progress) -> DatasetVersion:
    """The `run` job: write the version of the dataset a run wrote (see the module docstring)."""
    params = job.params
    run = Run.objects.filter(pk=params.get("run")).first()
    if run is None:
        raise JobError(f"run #{params.get('run')} was deleted: its dataset is not registered")
    done = DatasetVersion.objects.filter(source_run=run, provenance__path=params["path"]).first()
    if done is not None:
        return done
    file = _parquet_file(params["path"])
    progress(0.05, f"reading {file.name} of run #{run.pk}", force=True)
    table = pq.read_table(file)
    progress(0.4, f"hashing and writing {table.num_rows} rows", force=True)
    counts = run_counts(run)
    return version_write(
        dataset=job.dataset,
        table=table,
        user=job.created_by,
        provenance_type=ProvenanceType.RUN,
        provenance=_provenance(run, params, file, counts),
        funnel=run_funnel(counts),
        source_run=run,
    )


# ---------------------------------------------------------------------------------------------
# A stage reads a version: `dataset:NAME@N`


def version_for_ref(value: str) -> DatasetVersion:
    """The version `dataset:NAME@N` names (`dataset:NAME`: the latest); InputError otherwise."""
    match = _REF.fullmatch(value or "")
    if match is None:
        raise InputError(
            f"{value!r} is not a dataset version: write dataset:NAME@VERSION (or dataset:NAME "
            "for the latest)"
        )
    name, number = match["name"], match["number"]
    versions = DatasetVersion.objects.select_related("dataset").filter(dataset__name=name)
    version = versions.filter(number=int(number)).first() if number else versions.first()
    if version is not None:
        return version
    if not Dataset.objects.filter(name=name).exists():
        raise InputError(f"there is no dataset named {name!r} (see the Datasets page)")
    if number:
        latest = versions.first()
        have = f"its latest is @{latest.number}" if latest else "it has no version yet"
        raise InputError(f"dataset {name!r} has no version {number} ({have})")
    raise InputError(f"dataset {name!r} has no version yet")


def dataset_ref_check(*, value: str) -> str | None:
    """Why `value` cannot be trained on, or None (config_parse, through r1studio.runs.inputs)."""
    try:
        version = version_for_ref(value)
    except InputError as exc:
        return str(exc)
    if not storage.version_file(version.path).is_file():
        return f"the file of {version.ref} is missing from the data directory"
    return None


def dataset_ref_resolve(*, value: str, run: Run | None = None, field: str = "data.source") -> str:
    """The Parquet file `value` names; for a run, record the use (once; a resume gets the
    version recorded the first time)."""
    use = None
    if run is not None:
        use = DatasetUse.objects.select_related("version__dataset").filter(run=run, field=field)
        use = use.first()
    version = use.version if use is not None else version_for_ref(value)
    path = storage.version_file(version.path)
    if not path.is_file():
        raise InputError(f"the file of {version.ref} is missing from the data directory")
    if run is not None and use is None:
        try:
            with transaction.atomic():
                DatasetUse.objects.create(
                    version=version, run=run, field=field, sha256=version.sha256
                )
        except IntegrityError:
            pass  # recorded meanwhile by another supervisor of the same run
    return str(path.resolve())


def version_choices(*, user: Any, limit: int = 50) -> list[PickerChoice]:
    """The newest versions, for the config form's dataset picker."""
    if not user_has_role(user, RESEARCHER):
        return []
    versions = DatasetVersion.objects.select_related("dataset").order_by("-created_at", "-pk")
    return [
        PickerChoice(
            v.ref, f"{v.dataset.name} v{v.number}: {v.rows} rows, {v.dataset.kind}", "Datasets"
        )
        for v in versions[:limit]
    ]
