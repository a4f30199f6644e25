"""Imports: a JSONL, Parquet or CSV file, or an HF `save_to_disk` folder, becomes a version.

The flow: `upload_save` stores an upload in chunks under `<data dir>/uploads/staged/<token>/`
(never whole in memory); `import_preview` shows its first rows and a suggested column mapping;
`import_start` checks the size limit (R1STUDIO_MAX_IMPORT_BYTES) and the mapping, reads small
files through at once so a malformed one is refused in the request (nothing is created),
moves the upload to `uploads/<job id>/` and queues an import job. The worker runs
`import_run`: it reads the file block by block (`readers`), maps and checks each block
(`mapping`), reports progress per block and calls `version_write` only once every row has
passed: all or nothing. The upload is removed when the job ends.

A server path (a file or an HF folder) must lie inside the folders runs may read
(`runs.services.config_roots`); it is read where it is, never copied.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import transaction
from django.utils.text import get_valid_filename

from pipeline.access import OUTSIDE
from r1studio.core.roles import RESEARCHER, require_role
from r1studio.curation import jobs, storage
from r1studio.curation.mapping import (
    TARGETS,
    ColumnMapping,
    block_map,
    mapping_parse,
    mapping_resolve,
    mapping_suggest,
)
from r1studio.curation.models import Dataset, DatasetJob, DatasetVersion, ProvenanceType
from r1studio.curation.readers import (
    ImportProblem,
    file_blocks,
    file_format,
    file_head,
    input_bytes,
)
from r1studio.curation.services import version_write
from r1studio.runs.services import config_roots

__all__ = ["ImportProblem", "import_preview", "import_run", "import_start", "upload_save"]

UPLOADS_DIR = "uploads"
STAGED_DIR = "uploads/staged"
# Files up to this size are read through in the request that starts the import, so a
# malformed one is refused at once (the API's 422) instead of by a failed job.
CHECK_NOW_BYTES = 20 * 1024 * 1024
# Reading is about this share of the job's time; hashing and writing the version the rest.
READ_SHARE = 0.35


def _require_researcher(user: Any) -> None:
    require_role(user, RESEARCHER, "Datasets")


def _human(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def size_check(size: int, name: str) -> None:
    """Refuse an input over R1STUDIO_MAX_IMPORT_BYTES, saying so."""
    limit = settings.R1STUDIO_MAX_IMPORT_BYTES
    if size > limit:
        raise ImportProblem(
            f"{name} is {_human(size)}; imports are limited to {_human(limit)} "
            f"(R1STUDIO_MAX_IMPORT_BYTES = {limit} bytes)"
        )


# --- uploads and server paths ----------------------------------------------------------------


def upload_save(*, user: Any, uploaded_file: Any) -> str:
    """Store an upload in chunks; returns its path relative to the data directory."""
    _require_researcher(user)
    name = get_valid_filename(Path(uploaded_file.name or "").name) or "upload"
    size_check(uploaded_file.size or 0, name)
    file_format(Path(name))  # an unknown kind of file is refused before it is stored
    relative = f"{STAGED_DIR}/{secrets.token_hex(8)}/{name}"
    target = storage.version_file(relative)
    target.parent.mkdir(parents=True)
    written = 0
    try:
        with target.open("wb") as fh:
            for chunk in uploaded_file.chunks(1024 * 1024):
                written += len(chunk)
                size_check(written, name)  # the declared size may not be the real one
                fh.write(chunk)
    except BaseException:
        shutil.rmtree(target.parent, ignore_errors=True)
        raise
    return relative


def _upload_path(relative: str) -> Path:
    """An upload's file, only from the uploads folder (a path cannot climb out of it)."""
    root = storage.version_file(UPLOADS_DIR).resolve()
    path = storage.version_file(relative or "").resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise ImportProblem("the uploaded file is gone: upload it again")
    return path


def _server_path(raw: str) -> Path:
    raw = (raw or "").strip()
    if not raw or "\x00" in raw:
        raise ImportProblem("name a file or an HF save_to_disk folder on the server")
    roots = config_roots()
    if not roots.allows(raw):
        raise ImportProblem(f"{raw} {OUTSIDE}")
    path = Path(raw).expanduser().resolve()
    if not path.exists():
        raise ImportProblem(f"{raw} does not exist on the server")
    return path


def _remove_upload(relative: str) -> None:
    with contextlib.suppress(ImportProblem):
        shutil.rmtree(_upload_path(relative).parent, ignore_errors=True)


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def import_preview(
    *, upload: str = "", server_path: str = "", fmt: str = "", rows: int = 10
) -> dict[str, Any]:
    """The first rows and the columns of an upload or a server path, with a suggested mapping:
    `{"format", "columns": [{name, type}], "rows": [...], "suggested": {target: column}}`."""
    path = _upload_path(upload) if upload else _server_path(server_path)
    fmt = file_format(path, fmt)
    head = file_head(path, fmt, rows)
    return {
        "format": fmt,
        "columns": storage.table_columns(head),
        "rows": _json_safe(head.to_pylist()),
        "suggested": mapping_suggest(head.column_names),
        "targets": list(TARGETS),
    }


# --- reading ---------------------------------------------------------------------------------


def _unify(schema: pa.Schema | None, table: pa.Table, where: Any) -> pa.Schema:
    """The schema so far, widened by this block's (null → text, int → float); a column whose
    type changes beyond that is a problem, named at this block's first value."""
    if schema is None:
        return table.schema
    try:
        return pa.unify_schemas([schema, table.schema], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    for name in table.column_names:
        if name not in schema.names:
            continue
        before = schema.field(name).type
        try:
            pa.unify_schemas(
                [pa.schema([(name, before)]), pa.schema([table.schema.field(name)])],
                promote_options="permissive",
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            column = table.column(name)
            row = column.null_count and int(pc.index(column.is_valid(), True).as_py())
            raise ImportProblem(
                f"{where(max(0, row))}: column {name!r} is {column.type} here but {before} "
                "in the rows before"
            ) from None
    raise ImportProblem("the file's columns change type from one part of it to the next")


def table_read(
    path: Path, fmt: str, mapping: ColumnMapping, progress: Any = None
) -> tuple[pa.Table, ColumnMapping, list[str]]:
    """Every row of the file, mapped and checked; the mapping used and the derived columns."""
    tables: list[pa.Table] = []
    schema = None
    derived: list[str] = []
    rows = 0
    for block in file_blocks(path, fmt):
        if block.table.num_rows == 0:
            continue
        if not tables:
            mapping = mapping_resolve(mapping, block.table.column_names)
        table, derived = block_map(block.table, mapping, block.where)
        schema = _unify(schema, table, block.where)
        tables.append(table)
        rows += table.num_rows
        if progress is not None:
            progress(block.done * READ_SHARE, f"read {rows:,} rows")
    if not rows:
        raise ImportProblem(f"{path.name} has no rows")
    return pa.concat_tables(tables, promote_options="permissive"), mapping, derived


# --- the job ---------------------------------------------------------------------------------


def import_start(
    *,
    user: Any,
    dataset: Dataset,
    uploaded_file: Any = None,
    upload: str = "",
    server_path: str = "",
    mapping: Any = None,
    keep_other: bool = True,
    fmt: str = "",
    check_now: bool | None = None,
) -> DatasetJob:
    """Queue the import of an uploaded file (`uploaded_file`, or `upload` that `upload_save`
    returned) or of a server path into `dataset`.

    Raises `ImportProblem` (nothing created, the upload removed) for a file over the size
    limit, a path outside the allowed folders, a bad mapping, or, for files up to
    CHECK_NOW_BYTES (or `check_now=True`), any malformed line or row.
    """
    _require_researcher(user)
    if sum(map(bool, (uploaded_file, upload, server_path))) != 1:
        raise ImportProblem("import one thing: an uploaded file or a server path")
    column_mapping = mapping_parse(mapping, keep_other=keep_other)
    if uploaded_file is not None:
        upload = upload_save(user=user, uploaded_file=uploaded_file)
    try:
        path = _upload_path(upload) if upload else _server_path(server_path)
        fmt = file_format(path, fmt)
        size = input_bytes(path)
        size_check(size, path.name)
        if check_now if check_now is not None else size <= CHECK_NOW_BYTES:
            table_read(path, fmt, column_mapping)
        params = {
            "format": fmt,
            "file_name": path.name,
            "bytes": size,
            "mapping": column_mapping.columns,
            "keep_other": column_mapping.keep_other,
        }
        if server_path:
            params["server_path"] = str(path)
        with transaction.atomic():
            job = jobs.job_create(kind="import", dataset=dataset, user=user, params=params)
            if upload:
                folder = storage.version_file(f"{UPLOADS_DIR}/{job.pk}")
                shutil.rmtree(folder, ignore_errors=True)  # a leftover of a deleted job's id
                path.parent.rename(folder)
                job.params["upload"] = f"{UPLOADS_DIR}/{job.pk}/{path.name}"
                job.save(update_fields=["params"])
        return job
    except BaseException:
        if upload:
            _remove_upload(upload)
        raise


def import_run(job: DatasetJob, progress: Any) -> DatasetVersion:
    """The job handler (`jobs.HANDLERS["import"]`): read, map, check, then write the version."""
    params = job.params
    upload = params.get("upload", "")
    try:
        try:
            path = _upload_path(upload) if upload else _server_path(params.get("server_path", ""))
            fmt = file_format(path, params.get("format", ""))
            size_check(input_bytes(path), path.name)
            mapping = mapping_parse(
                params.get("mapping"), keep_other=params.get("keep_other", True)
            )
            progress(0.0, f"reading {path.name}", force=True)
            table, mapping, derived = table_read(path, fmt, mapping, progress)
        except ImportProblem as exc:
            raise jobs.JobError(str(exc)) from None
        progress(READ_SHARE, f"hashing and writing {table.num_rows:,} rows", force=True)
        provenance = {
            "job": job.pk,
            "file": params.get("file_name", path.name),
            "format": fmt,
            "bytes": params.get("bytes"),
            "mapping": mapping.columns,
            "keep_other": mapping.keep_other,
            "derived": derived,
        }
        if params.get("server_path"):
            provenance["server_path"] = params["server_path"]
        return version_write(
            dataset=job.dataset,
            table=table,
            user=job.created_by,
            provenance_type=ProvenanceType.IMPORT,
            provenance=provenance,
        )
    finally:
        if upload:
            _remove_upload(upload)
