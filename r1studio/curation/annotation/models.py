"""Annotation queues, their items, leases and labels (models of the curation app).

An `AnnotationQueue` holds `AnnotationItem`s made from a dataset version or a trace selection,
the questions asked, how many annotators label each item (`overlap`) and who may. Its
guidelines are versioned (`Guideline`): every label records the version it was made under.
An annotator asks for the next item and gets a `Lease` (expiring); an item is never leased to
more annotators than its overlap (active leases + submitted labels), nor twice to one person.
A `Label` is one annotator's answer for one item; `version` grows by one on every save, and a
save that carries an older version than the stored one is a conflict, never an overwrite.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Verdict(models.TextChoices):
    ACCEPT = "accept", "accept"
    REJECT = "reject", "reject"


class AnnotationQueue(models.Model):
    """A body of items to label, the questions, the overlap and the annotators."""

    name = models.CharField(max_length=200)
    source_version = models.ForeignKey(
        "curation.DatasetVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="annotation_queues",
    )
    source_filters = models.JSONField(
        default=dict, blank=True, help_text="The trace filters the items came from"
    )
    questions = models.JSONField(
        default=dict,
        help_text='{"verdict": true, "edit": true, "rating": true, "tags": [...], "note": true}',
    )
    overlap = models.PositiveSmallIntegerField(default=1)
    lease_seconds = models.PositiveIntegerField(default=1800)
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="annotation_queues"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Guideline(models.Model):
    """One version of a queue's guidelines (Markdown); the newest is the one in force."""

    queue = models.ForeignKey(AnnotationQueue, on_delete=models.CASCADE, related_name="guidelines")
    number = models.PositiveIntegerField()
    text = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["queue", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "number"], name="curation_guideline_number")
        ]


class AnnotationItem(models.Model):
    """One thing to label: a row of a version or a trace, with what the annotator sees."""

    queue = models.ForeignKey(AnnotationQueue, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(help_text="Order in the queue")
    data = models.JSONField(
        help_text="problem, reference, think, answer, completion, source, checks, group"
    )
    source_ref = models.CharField(max_length=200, blank=True, default="")
    group_key = models.CharField(max_length=64, blank=True, default="", db_index=True)
    gold_verdict = models.CharField(max_length=10, blank=True, default="", choices=Verdict.choices)
    labels_done = models.PositiveSmallIntegerField(default=0)
    resolved = models.JSONField(null=True, blank=True, help_text="The final label after review")

    class Meta:
        ordering = ["queue", "position"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "position"], name="curation_item_position")
        ]
        indexes = [
            models.Index(fields=["queue", "labels_done", "position"], name="item_open"),
            # The dashboard counts gold and resolved items without reading the item rows
            # (their `data` pushes the later columns into SQLite overflow pages).
            models.Index(
                fields=["queue", "gold_verdict"], name="item_gold", condition=~Q(gold_verdict="")
            ),
            models.Index(
                fields=["queue"], name="item_resolved", condition=Q(resolved__isnull=False)
            ),
        ]


class QueueTally(models.Model):
    """How many of a queue's items have `labels_done` submitted labels: the progress counts
    (done, started, labels submitted) read from a few rows instead of counted over the items,
    which took ~70 ms for a 100k-item queue. The rows for 0..overlap are made with the queue's
    items (`queue_tally_rebuild`); a first submit moves one item up by one in its transaction.
    A queue without rows (items made by hand) is counted over its items instead."""

    queue = models.ForeignKey(AnnotationQueue, on_delete=models.CASCADE, related_name="tallies")
    labels_done = models.PositiveSmallIntegerField()
    items = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["queue", "labels_done"], name="curation_tally_once")
        ]


class Lease(models.Model):
    """An item handed to an annotator until `expires_at`."""

    item = models.ForeignKey(AnnotationItem, on_delete=models.CASCADE, related_name="leases")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="curation_lease_once")
        ]


class LabelStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    SUBMITTED = "submitted", "submitted"
    SKIPPED = "skipped", "skipped"


class Label(models.Model):
    """One annotator's answer for one item; `version` is the optimistic lock."""

    item = models.ForeignKey(AnnotationItem, on_delete=models.CASCADE, related_name="labels")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="labels"
    )
    status = models.CharField(max_length=10, choices=LabelStatus.choices, default=LabelStatus.DRAFT)
    verdict = models.CharField(max_length=10, blank=True, default="", choices=Verdict.choices)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    think = models.TextField(blank=True, default="")
    answer = models.TextField(blank=True, default="")
    edited = models.BooleanField(default=False)
    tags = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True, default="")
    checks = models.JSONField(default=dict, blank=True, help_text="Verifier and R1 checks on save")
    flagged = models.BooleanField(default=False, help_text="The edit broke the answer or format")
    guideline = models.PositiveIntegerField(default=0, help_text="Guideline version in force")
    version = models.PositiveIntegerField(default=1)
    seconds = models.FloatField(default=0.0, help_text="Time spent on the item")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="curation_label_once")
        ]
        indexes = [
            models.Index(fields=["annotator", "status"], name="label_mine"),
            # Two covering indexes, so that no read of the dashboard or of review touches a
            # label row (think/answer make rows long): labels by item (agreement, review) and
            # an annotator's labels of a queue's item range (throughput, time per item).
            models.Index(
                fields=["item", "status", "annotator", "verdict", "rating", "guideline", "edited"],
                name="label_stats",
            ),
            models.Index(
                fields=[
                    "annotator",
                    "status",
                    "item",
                    "verdict",
                    "edited",
                    "flagged",
                    "seconds",
                    "submitted_at",
                ],
                name="label_throughput",
            ),
        ]
