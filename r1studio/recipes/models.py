"""Recipes: a graph of stages launched as one (the DeepSeek-R1 recipe and its parts).

A `Recipe` is an ordered list of `RecipeStage`s. A stage is one stage config (`grpo`, `sft`,
`generate`, `evaluate`) or a human `gate`; its `inputs` name what earlier stages make:

    {"field": "model.path",  "stage": "01-r1-zero"}            the checkpoint stage 01 trained
    {"field": "data.source", "stage": "02-cold-start-data"}    the dataset version 02 generated
    {"field": "data.source", "stage": "02-cold-start-gate"}    the version the gate promoted
    {"field": "data.source", "ref": "dataset:cold-start@3"}    a fixed dataset version

(`output` — "checkpoint" or "dataset" — is implied by the field and may be given.) The scheduler
(r1studio.recipes.scheduler) writes the concrete value into `field` of the stage's config when it
creates the stage's Run. The database is the truth: a stage's status, its current run, its gate's
queue and promoted version are rows, so a restarted worker or web server carries on from them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class RecipeStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    RUNNING = "running", "running"
    WAITING = "waiting", "waiting for a person"
    FINISHED = "finished", "finished"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


class StageKind(models.TextChoices):
    GRPO = "grpo", "GRPO"
    SFT = "sft", "SFT"
    GENERATE = "generate", "generate"
    EVALUATE = "evaluate", "evaluate"
    GATE = "gate", "human gate"


class StageStatus(models.TextChoices):
    PENDING = "pending", "pending"
    READY = "ready", "ready"
    RUNNING = "running", "running"
    WAITING = "waiting", "waiting for a person"
    FINISHED = "finished", "finished"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"
    SKIPPED = "skipped", "skipped"
    BLOCKED = "blocked", "blocked"


ACTIVE_RECIPE = (RecipeStatus.RUNNING, RecipeStatus.WAITING)
DONE_STAGE = (StageStatus.FINISHED, StageStatus.SKIPPED)
STOPPED_STAGE = (StageStatus.FAILED, StageStatus.CANCELLED, StageStatus.BLOCKED)


class Recipe(models.Model):
    """A graph of stages with one status; `preset` is the preset it was made from ("" if none)."""

    Status = RecipeStatus

    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recipes"
    )
    status = models.CharField(
        max_length=16, choices=RecipeStatus.choices, default=RecipeStatus.DRAFT, db_index=True
    )
    preset = models.CharField(max_length=64, blank=True, default="")
    description = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RECIPE


class RecipeStage(models.Model):
    """One node of the graph: a stage config (or a gate), its inputs and where it got to."""

    Kind = StageKind
    Status = StageStatus

    recipe = models.ForeignKey(Recipe, on_delete=models.CASCADE, related_name="stages")
    key = models.CharField(max_length=64, help_text='Unique in the recipe, e.g. "01-r1-zero"')
    name = models.CharField(max_length=200, blank=True, default="")
    order = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=16, choices=StageKind.choices)
    config = models.JSONField(
        default=dict, blank=True, help_text="The stage config; a gate's: guidelines, limit"
    )
    inputs = models.JSONField(default=list, blank=True, help_text="See the module docstring")
    status = models.CharField(
        max_length=16, choices=StageStatus.choices, default=StageStatus.PENDING
    )
    run = models.ForeignKey(
        "runs.Run",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="recipe_stages",
        help_text="The stage's current run (a retry replaces it; the old one is its parent)",
    )
    gate_enabled = models.BooleanField(
        default=True, help_text="A gate switched off passes its input dataset straight on"
    )
    gate_queue = models.ForeignKey(
        "curation.AnnotationQueue",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="recipe_stages",
    )
    output_version = models.ForeignKey(
        "curation.DatasetVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="recipe_stages",
        help_text="The dataset version the stage made (generate) or promoted (gate)",
    )
    attempts = models.PositiveIntegerField(
        default=0, help_text="Runs started for the stage, automatic resumes included"
    )
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["recipe", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["recipe", "key"], name="recipes_stage_key"),
        ]

    def __str__(self) -> str:
        return f"{self.recipe_id}/{self.key} ({self.status})"

    @property
    def label(self) -> str:
        return self.name or self.key

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return max(0.0, (end - self.started_at).total_seconds())
