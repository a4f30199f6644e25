"""Real files for the import, export and API tests: JSONL, Parquet and CSV rows, and a helper
that runs an import job to its end on the real Celery worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from r1studio.curation.models import DatasetJob, JobStatus
from tests.conftest import wait_for


def reasoning_rows(n: int = 20) -> list[dict[str, Any]]:
    """Rows with the common columns, some non-ASCII text and an extra column."""
    return [
        {
            "problem": f"What is {i} + {i}?",
            "think": f"Adding {i} to itself gives {2 * i}. Überprüfung: ok ✓",
            "answer": str(2 * i),
            "reference": str(2 * i),
            "source": "synthetic",
            "difficulty": i % 3,
        }
        for i in range(n)
    ]


def jsonl_bytes(rows: list[Any]) -> bytes:
    return b"".join(json.dumps(row, ensure_ascii=False).encode() + b"\n" for row in rows)


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_bytes(jsonl_bytes(rows))
    return path


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def job_ended(job: DatasetJob) -> DatasetJob | None:
    job.refresh_from_db()
    return job if job.status in (JobStatus.FINISHED, JobStatus.FAILED) else None


def wait_for_job(job: DatasetJob, timeout: float = 60) -> DatasetJob:
    return wait_for(lambda: job_ended(job), timeout=timeout)
