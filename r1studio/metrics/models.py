"""Metric series of a run, stored as packed chunks (see `r1studio.metrics.storage`).

`MetricSeries` is one named series of one run (`reward`, `rewards/accuracy/mean`, ...) with its
point count, last step and value, and the *tail*: the points not yet in a full chunk.
`MetricChunk` holds `CHUNK_POINTS` consecutive points, written once, plus their M4 summary.
"""

from __future__ import annotations

from django.db import models


class MetricSeries(models.Model):
    """One named series of one run; `tail` holds the points of the chunk being filled."""

    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="metric_series")
    name = models.CharField(max_length=255)
    count = models.BigIntegerField(default=0, help_text="Points stored (chunks + tail)")
    chunk_count = models.IntegerField(default=0, help_text="Full chunks written")
    first_step = models.BigIntegerField(null=True, blank=True)
    last_step = models.BigIntegerField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    tail = models.BinaryField(default=b"", help_text="Packed points after the last chunk")

    class Meta:
        ordering = ["run", "name"]
        constraints = [
            models.UniqueConstraint(fields=["run", "name"], name="metrics_series_run_name"),
        ]
        verbose_name_plural = "metric series"

    def __str__(self) -> str:
        return f"run {self.run_id} {self.name} ({self.count} points)"


class MetricChunk(models.Model):
    """`CHUNK_POINTS` consecutive points of a series and their M4 summary; never rewritten.

    Small columns come first: SQLite then reads a chunk's steps and summary without touching the
    overflow pages of the raw blob.
    """

    series = models.ForeignKey(MetricSeries, on_delete=models.CASCADE, related_name="chunks")
    seq = models.IntegerField(help_text="0, 1, 2 ... in step order")
    first_step = models.BigIntegerField()
    last_step = models.BigIntegerField()
    count = models.IntegerField()
    summary = models.BinaryField(help_text="Packed M4 points (first/min/max/last per bucket)")
    data = models.BinaryField(help_text="Packed raw points")

    class Meta:
        ordering = ["series", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["series", "seq"], name="metrics_chunk_series_seq"),
        ]
        indexes = [models.Index(fields=["series", "last_step"], name="metrics_chunk_last_step")]

    def __str__(self) -> str:
        return f"series {self.series_id} chunk {self.seq} ({self.first_step}..{self.last_step})"
