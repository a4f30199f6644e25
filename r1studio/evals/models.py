"""Evaluation results: one row per `eval` event a run reported (a benchmark at a step).

The per-problem items of the event are stored as traces (`Trace.source == "eval"`), so the
Benchmarks page links each result to what the model answered on every problem.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class EvalResult(models.Model):
    """pass@1, cons@k and the other figures of one benchmark evaluated at one step of a run."""

    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="eval_results")
    step = models.IntegerField()
    benchmark = models.CharField(max_length=200)
    metrics = models.JSONField(default=dict, help_text="Every figure the event reported")
    pass_at_1 = models.FloatField(null=True, blank=True)
    cons_at_k = models.FloatField(null=True, blank=True)
    k = models.IntegerField(null=True, blank=True, help_text="The k of cons@k")
    n_samples = models.IntegerField(default=1, help_text="Completions sampled per problem")
    n_problems = models.IntegerField(null=True, blank=True)
    # Added with the R1 protocol's reporting; results stored before have them empty.
    pass_at_1_se = models.FloatField(
        null=True, blank=True, help_text="Standard error of pass@1 over problems"
    )
    pass_at_1_ci_low = models.FloatField(null=True, blank=True, help_text="Bootstrap 95% low")
    pass_at_1_ci_high = models.FloatField(null=True, blank=True, help_text="Bootstrap 95% high")
    decoding = models.JSONField(
        default=dict, blank=True, help_text="temperature, top_p, n_samples, max_new_tokens"
    )
    problems = models.JSONField(
        default=list,
        blank=True,
        help_text="Per problem: id, n_correct, n, majority_answer, correct, prompt_hash, problem",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["benchmark", "-pass_at_1", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "benchmark", "step"], name="evals_result_run_bench_step"
            ),
        ]
        indexes = [models.Index(fields=["benchmark", "pass_at_1"], name="evals_bench_pass")]

    def __str__(self) -> str:
        return f"run {self.run_id} {self.benchmark} @ {self.step}: pass@1={self.pass_at_1}"
