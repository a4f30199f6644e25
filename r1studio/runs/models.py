"""Runs: one row per execution of one pipeline stage, the source of truth for its state.

A Run is created as a draft (config editable by its owner), queued by `run_launch`, claimed
by the supervisor task (`running`), and ends `finished`, `failed`, `cancelled` or `lost` (its
worker stopped heartbeating). The supervisor is the only writer of a running run's progress
fields; `events_offset` is how many bytes of `<run_dir>/events.jsonl` are already in the
database, advanced in the same transaction as the rows an event batch produced.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class RunStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    FINISHED = "finished", "finished"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"
    LOST = "lost", "lost"


class RunKind(models.TextChoices):
    GRPO = "grpo", "GRPO"
    SFT = "sft", "SFT"
    GENERATE = "generate", "generate"
    EVALUATE = "evaluate", "evaluate"


class RunExecutor(models.TextChoices):
    """Who runs the stage: a local Celery worker (the supervisor spawns it), a script outside the
    studio that reports over HTTP (`external`), or a Ray cluster job the studio submitted."""

    WORKER = "worker", "worker"
    EXTERNAL = "external", "external script"
    RAY = "ray", "Ray cluster"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
ENDED_STATUSES = (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.LOST)


class Run(models.Model):
    """One stage execution: its config, where it runs and how far it got."""

    Status = RunStatus
    Kind = RunKind
    Executor = RunExecutor

    name = models.CharField(max_length=200)
    tags = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="Comma-separated labels, stored as ',a,b,' so that a tag filters exactly",
    )
    preset = models.CharField(
        max_length=64, blank=True, default="", help_text="The preset the config started from"
    )
    # Names the run folder: unique across databases, so a new or reset database can never hand
    # a new run the folder (and checkpoints) of an old one, as a row id would.
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="runs"
    )
    kind = models.CharField(max_length=16, choices=RunKind.choices)
    executor = models.CharField(
        max_length=16, choices=RunExecutor.choices, default=RunExecutor.WORKER
    )
    config = models.JSONField(default=dict, help_text="The stage config (pipeline.config)")
    # A stage on a Ray cluster (r1studio.runs.ray_executor): the job's submission id, and what
    # its watcher last saw (job status and message, cluster, resources, attempt, log read).
    job_id = models.CharField(
        max_length=200, blank=True, default="", help_text="The Ray job's submission id"
    )
    job_state = models.JSONField(default=dict, blank=True, help_text="The Ray job as last seen")
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.DRAFT, db_index=True
    )
    step = models.IntegerField(default=0)
    total_steps = models.IntegerField(null=True, blank=True)
    progress = models.FloatField(default=0.0, help_text="0..1")
    eta_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    worker = models.CharField(max_length=255, blank=True, default="", help_text="Celery node")
    pid = models.IntegerField(null=True, blank=True, help_text="Pipeline process (group) id")
    run_dir = models.TextField(blank=True, default="")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    resume_from = models.TextField(blank=True, default="", help_text="Checkpoint path")
    events_offset = models.BigIntegerField(default=0, help_text="Bytes of events.jsonl ingested")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    # Reproducibility (r1studio.runs.provenance): recorded at launch, and `environment` from
    # the stage's `started` event, i.e. the machine that really ran it.
    config_hash = models.CharField(
        max_length=64, blank=True, default="", db_index=True, help_text="sha256 of the config"
    )
    lineage = models.JSONField(
        default=dict, blank=True, help_text="{seed, inputs: [{loc, ref, sha256...}], model}"
    )
    environment = models.JSONField(
        default=dict, blank=True, help_text="{python, git_commit, packages} the stage ran with"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="runs_owner_created")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_ended(self) -> bool:
        return self.status in ENDED_STATUSES

    @property
    def tag_list(self) -> list[str]:
        return [tag for tag in self.tags.split(",") if tag]

    @property
    def progress_percent(self) -> int:
        return int(round(max(0.0, min(1.0, self.progress or 0.0)) * 100))


class Checkpoint(models.Model):
    """A checkpoint the pipeline reported (`checkpoint` event) for a run."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="checkpoints")
    step = models.IntegerField()
    path = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "step"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step"], name="runs_checkpoint_run_step"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} step {self.step}"


class RunToken(models.Model):
    """A bearer token that may send events to one run over HTTP (`POST /api/runs/<id>/events`)
    and nothing else. Only its SHA-256 hash is stored; the token is shown once, when made.
    Making a new token for a run revokes the older ones (r1studio.runs.remote)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to tell tokens apart")
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… (run {self.run_id})"
