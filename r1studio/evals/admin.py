"""Admin: evaluation results (read-only; they come from `eval` events)."""

from __future__ import annotations

from django.contrib import admin

from r1studio.evals.models import EvalResult


@admin.register(EvalResult)
class EvalResultAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "run",
        "benchmark",
        "step",
        "pass_at_1",
        "pass_at_1_se",
        "cons_at_k",
        "k",
        "n_samples",
    )
    list_filter = ("benchmark",)
    raw_id_fields = ("run",)

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
