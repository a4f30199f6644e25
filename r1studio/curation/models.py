"""Datasets and their immutable versions, and the jobs that make them.

A `Dataset` is a name and a kind (cold-start, reasoning, ...). Its rows live in `DatasetVersion`s:
each version is one Parquet file under `R1STUDIO_DATA_DIR/datasets/`, written once (see
`storage.py`) and never changed, identified by the sha256 of a canonical encoding of its rows,
with a parent version, column schema, length statistics and **provenance** (the run, import,
curation job, trace selection or annotation queue that made it). A `DatasetJob` is a long piece
of work (an import, a curation) as a row with a status, progress and ETA; the UI reads only the
row. `DatasetUse` records which runs trained on which version, so that a used version can never
be deleted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from r1studio.runs.models import Run


class DatasetKind(models.TextChoices):
    COLD_START = "cold-start", "cold-start"
    REASONING = "reasoning", "reasoning"
    NON_REASONING = "non-reasoning", "non-reasoning"
    DISTILLATION = "distillation", "distillation"
    PROMPTS = "prompts", "prompts"
    OTHER = "other", "other"


class Dataset(models.Model):
    """A named set of rows with versions; the name is what stages refer to (`dataset:NAME@N`)."""

    Kind = DatasetKind

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=DatasetKind.choices, default=DatasetKind.OTHER)
    description = models.TextField(blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="datasets"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProvenanceType(models.TextChoices):
    RUN = "run", "run"
    IMPORT = "import", "import"
    CURATION = "curation", "curation"
    TRACES = "traces", "traces"
    ANNOTATION = "annotation", "annotation"


class DatasetVersion(models.Model):
    """One immutable version: its Parquet file, content hash, schema, stats and provenance."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.TextField(help_text="The Parquet file, relative to the data directory")
    sha256 = models.CharField(max_length=64, db_index=True)
    rows = models.BigIntegerField()
    size_bytes = models.BigIntegerField()
    columns = models.JSONField(default=list, help_text="[{name, type}]")
    stats = models.JSONField(default=dict, help_text="Lengths, language mix, correctness, sources")
    provenance_type = models.CharField(max_length=20, choices=ProvenanceType.choices)
    provenance = models.JSONField(default=dict)
    funnel = models.JSONField(default=list, help_text="[{step, rows_in, rows_out}] of a curation")
    dropped_path = models.TextField(blank=True, default="", help_text="Dropped rows with reasons")
    source_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="dataset_versions"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="curation_version_number"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name}@{self.number}"

    @property
    def ref(self) -> str:
        """How a stage config names this version (`data.source: dataset:NAME@N`)."""
        return f"dataset:{self.dataset.name}@{self.number}"

    def save(self, *args, **kwargs) -> None:
        # Immutable once written: a version is only ever inserted (see storage.version_write).
        if self.pk is not None and not kwargs.pop("force_update_allowed", False):
            raise ValueError(f"dataset version {self} is immutable")
        super().save(*args, **kwargs)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    FINISHED = "finished", "finished"
    FAILED = "failed", "failed"


class DatasetJob(models.Model):
    """An import or a curation, as a row with a status the UI reads (STYLE.md 3)."""

    class Kind(models.TextChoices):
        IMPORT = "import", "import"
        CURATE = "curate", "curate"
        RUN = "run", "from a run"  # a generate run's dataset (curation.run_datasets)

    Status = JobStatus

    kind = models.CharField(max_length=16, choices=Kind.choices)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="jobs")
    source = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    result = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    params = models.JSONField(default=dict, help_text="Mapping, operations, upload path...")
    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    progress = models.FloatField(default=0.0)
    eta_seconds = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} job #{self.pk} ({self.status})"


class DatasetUse(models.Model):
    """A run that trained on (or read) a version; such a version cannot be deleted."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="uses")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="dataset_uses")
    field = models.CharField(max_length=100, default="data.source")
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "run", "field"], name="curation_use_once"),
        ]


# The annotation models live beside the datasets' (r1studio/curation/annotation/models.py).
from r1studio.curation.annotation.models import (  # noqa: E402, F401
    AnnotationItem,
    AnnotationQueue,
    Guideline,
    Label,
    LabelStatus,
    Lease,
    Verdict,
)
