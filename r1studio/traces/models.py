"""Traces: every completion a run reported, with its think/answer split and its rewards.

A trace comes from a `samples` event (a GRPO step: `source="train"`; one of the run's fixed
probe prompts answered greedily: `source="probe"`) or from the per-problem items of an `eval`
event (`source="eval"`, one trace per sampled completion). Completions are
model output, i.e. untrusted text: templates show them through Django's auto-escaping only.

Indexes serve the pages: keyset pagination newest-first by (step, id) within a run and across
runs, a prompt's group at one step and the same prompt over time (`prompt_hash`).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class TraceSource(models.TextChoices):
    TRAIN = "train", "training sample"
    PROBE = "probe", "probe prompt"
    EVAL = "eval", "evaluation"


class Trace(models.Model):
    """One sampled completion with its rewards (see the module docstring)."""

    Source = TraceSource

    # No index of its own: (run, step, id) and (run, uid) start with the run already.
    run = models.ForeignKey(
        "runs.Run", on_delete=models.CASCADE, related_name="traces", db_index=False
    )
    step = models.IntegerField()
    source = models.CharField(max_length=8, choices=TraceSource.choices, default=TraceSource.TRAIN)
    benchmark = models.CharField(max_length=200, blank=True, default="")
    position = models.IntegerField(default=0, help_text="Index of the item in its event")
    uid = models.CharField(max_length=40, help_text="Content hash: re-ingesting stores nothing")
    prompt_hash = models.CharField(max_length=16, help_text="Groups a prompt's completions")
    prompt = models.TextField()
    completion = models.TextField()
    think = models.TextField(null=True, blank=True)
    answer = models.TextField(null=True, blank=True)
    reference = models.TextField(blank=True, default="")
    rewards = models.JSONField(default=dict, blank=True, help_text="{reward function: score}")
    reward = models.FloatField(null=True, blank=True, help_text="Weighted total")
    advantage = models.FloatField(null=True, blank=True)
    length = models.IntegerField(default=0, help_text="Completion length in characters")
    correct = models.BooleanField(
        null=True, blank=True, help_text="accuracy reward ≥ 1 (unknown without one)"
    )
    well_formed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-step", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "uid"], name="traces_trace_run_uid"),
        ]
        indexes = [
            models.Index(fields=["run", "step", "id"], name="traces_run_step_id"),
            models.Index(fields=["step", "id"], name="traces_step_id"),
            models.Index(fields=["run", "prompt_hash", "step"], name="traces_run_prompt_step"),
            models.Index(
                fields=["run", "benchmark", "step"],
                name="traces_run_bench_step",
                condition=models.Q(source="eval"),
            ),
        ]

    def __str__(self) -> str:
        return f"trace {self.pk} of run {self.run_id} at step {self.step}"
