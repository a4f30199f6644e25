"""Curation jobs: a version's rows through a list of operations into a new version.

The operations are `pipeline.curation`'s (the R1 rejection filters, exact and near duplicates,
decontamination, mixing, sampling, a train/validation split), the same code the `generate`
stage filters with. `curation_start` checks them (an unknown op or a bad param names the
operation and the field; a tokenizer or benchmark file must lie inside the folders runs may
read; a version to mix in must exist) and queues a job. The worker runs `curate_run`: it checks
the operations again (a job row may come from elsewhere), streams the source version's Parquet
file batch by batch through them and writes the kept rows through `version_write` with the
source as parent, the funnel, the dropped rows with their reasons and the provenance
`{job, operations, source, mixed}`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from django.core.exceptions import PermissionDenied

from pipeline.access import path_error
from pipeline.curation import OperationError, apply_operations, parse_operations
from pipeline.data import PRESET_FILES
from r1studio.core.roles import RESEARCHER, user_has_role
from r1studio.curation import jobs, storage
from r1studio.curation.models import DatasetJob, DatasetVersion, ProvenanceType
from r1studio.curation.services import DatasetError, version_write
from r1studio.runs.services import config_roots

# Rows read from the source at a time.
BATCH_ROWS = 8192
# Reading and filtering is this share of the job; hashing and writing the version the rest.
FILTER_SHARE = 0.85


def _path_problem(op: Any, field: str, value: str, roots: Any) -> str:
    benchmark = op.op == "decontaminate" and value not in PRESET_FILES
    if benchmark and not Path(value).expanduser().exists():
        presets = ", ".join(PRESET_FILES)
        return f"{value!r} is neither a benchmark preset ({presets}) nor a file"
    errors = path_error(value, field, roots)
    return errors[0]["msg"] if errors else ""


def _paths(op: Any) -> list[tuple[str, str]]:
    if op.op == "length" and op.tokenizer:
        return [("tokenizer", op.tokenizer)]
    if op.op == "decontaminate":
        return [(f"benchmarks.{j}", name) for j, name in enumerate(op.benchmarks)]
    return []


def operations_check(operations: Any) -> list[dict[str, Any]]:
    """The operations with their defaults filled in, checked; `DatasetError` names the
    operation (counting from 1) and the field at fault."""
    try:
        ops = parse_operations(operations)
        roots = config_roots()
        for i, op in enumerate(ops):
            for field, value in _paths(op):
                problem = _path_problem(op, field, value, roots)
                if problem:
                    raise OperationError(problem, i, op.op, field)
            for j, part in enumerate(getattr(op, "parts", [])):
                if part.version == "input":
                    continue
                if not DatasetVersion.objects.filter(pk=part.version).exists():
                    message = f"there is no dataset version {part.version}"
                    raise OperationError(message, i, op.op, f"parts.{j}.version")
    except OperationError as exc:
        raise DatasetError(str(exc)) from None
    return [op.model_dump(mode="json") for op in ops]


def curation_start(*, user: Any, version: DatasetVersion, operations: Any) -> DatasetJob:
    """Queue a curation of `version`; raises `DatasetError` for bad operations (nothing made)."""
    if not user_has_role(user, RESEARCHER):
        raise PermissionDenied("Datasets need the researcher role.")
    checked = operations_check(operations)
    return jobs.job_create(
        kind="curate",
        dataset=version.dataset,
        user=user,
        source=version,
        params={"operations": checked},
    )


def _version_rows(pk: int) -> pa.Table:
    version = DatasetVersion.objects.filter(pk=pk).first()
    if version is None:
        raise LookupError(f"there is no dataset version {pk}")
    return storage.parquet_open(version.path).read()


def curate_run(job: DatasetJob, progress: Any) -> DatasetVersion:
    """The job handler (`jobs.HANDLERS["curate"]`): filter the source, write the new version."""
    source = job.source
    if source is None:
        raise jobs.JobError("this curation has no input version")
    try:
        operations = operations_check((job.params or {}).get("operations"))
    except DatasetError as exc:
        raise jobs.JobError(exc.messages[0]) from None
    parquet = storage.parquet_open(source.path)
    total = max(parquet.metadata.num_rows, 1)

    def read(rows: int, message: str) -> None:
        progress(FILTER_SHARE * rows / total, message)

    progress(0.0, f"curating {source.ref}", force=True)
    try:
        result = apply_operations(
            parquet.iter_batches(batch_size=BATCH_ROWS),
            operations,
            versions=_version_rows,
            schema=parquet.schema_arrow,
            progress=read,
        )
    except OperationError as exc:
        raise jobs.JobError(str(exc)) from None
    kept = result.kept.num_rows
    progress(
        FILTER_SHARE, f"writing {kept:,} rows ({result.dropped.num_rows:,} dropped)", force=True
    )
    mixed = [
        p["version"] for op in operations for p in op.get("parts", []) if p["version"] != "input"
    ]
    provenance = {
        "job": job.pk,
        "operations": operations,
        "source": source.ref,
        "mixed": [v.ref for v in DatasetVersion.objects.filter(pk__in=mixed)],
    }
    return version_write(
        dataset=job.dataset,
        table=result.kept,
        user=job.created_by,
        provenance_type=ProvenanceType.CURATION,
        provenance=provenance,
        parent=source,
        funnel=result.funnel,
        dropped=result.dropped,
    )
