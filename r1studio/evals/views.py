"""Benchmark pages: the leaderboard and one evaluation result's problems."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from r1studio.core.roles import RESEARCHER, role_required
from r1studio.evals.selectors import (
    eval_leaderboards,
    eval_models,
    eval_result_for_user,
    eval_result_problems,
)


@require_GET
@role_required(RESEARCHER)
def benchmark_list(request: HttpRequest) -> HttpResponse:
    """Benchmarks and the leaderboard of evaluated checkpoints (pass@1, cons@k, n)."""
    return render(
        request, "evals/benchmarks.html", {"boards": eval_leaderboards(user=request.user)}
    )


@require_GET
@role_required(RESEARCHER)
def result_detail(request: HttpRequest, result_id: int) -> HttpResponse:
    """One evaluation: every problem with what the model answered and whether it passed."""
    result = eval_result_for_user(user=request.user, result_id=result_id)
    if result is None:
        raise Http404("No such evaluation result.")
    context = {
        "result": result,
        "run": result.run,
        "model": eval_models(results=[result], user=request.user)[result.pk],
        "problems": eval_result_problems(result=result),
    }
    return render(request, "evals/result.html", context)
