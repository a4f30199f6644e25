"""Benchmark pages: results per benchmark, the leaderboard, one result, two results compared."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from r1studio.core.roles import RESEARCHER, role_required
from r1studio.evals.models import EvalResult
from r1studio.evals.precision import result_se, result_warning
from r1studio.evals.reference import PROTOCOL, SOURCE, SOURCE_URL
from r1studio.evals.selectors import (
    eval_compare,
    eval_leaderboard,
    eval_leaderboards,
    eval_models,
    eval_problem_table,
    eval_result_for_user,
    eval_result_problems,
    eval_results_for_picker,
)

REFERENCE = {"source": SOURCE, "url": SOURCE_URL, "protocol": PROTOCOL}


@require_GET
@role_required(RESEARCHER)
def benchmark_list(request: HttpRequest) -> HttpResponse:
    """Benchmarks and the leaderboard of evaluated checkpoints (pass@1, cons@k, n)."""
    context = {"boards": eval_leaderboards(user=request.user), "reference": REFERENCE}
    return render(request, "evals/benchmarks.html", context)


@require_GET
@role_required(RESEARCHER)
def leaderboard(request: HttpRequest) -> HttpResponse:
    """Checkpoints × benchmarks, pass@1 ± SE, with the paper's numbers as reference rows."""
    context = {"board": eval_leaderboard(user=request.user), "reference": REFERENCE}
    return render(request, "evals/leaderboard.html", context)


@require_GET
@role_required(RESEARCHER)
def result_detail(request: HttpRequest, result_id: int) -> HttpResponse:
    """One evaluation: pass@1 ± SE, cons@k, decoding, the precision warning, the per-problem
    table, and every problem with what the model answered."""
    result = eval_result_for_user(user=request.user, result_id=result_id)
    if result is None:
        raise Http404("No such evaluation result.")
    context = {
        "result": result,
        "run": result.run,
        "se": result_se(result),
        "warning": result_warning(result),
        "model": eval_models(results=[result], user=request.user)[result.pk],
        "table": eval_problem_table(result=result),
        "problems": eval_result_problems(result=result),
    }
    return render(request, "evals/result.html", context)


@require_GET
@role_required(RESEARCHER)
def compare(request: HttpRequest) -> HttpResponse:
    """Two results of one benchmark (`?a=<id>&b=<id>`): which problems each solves and the
    other does not. Without both, a picker; ids that are not numbers answer 400, results the
    user may not see 404, two benchmarks 400 with the reason."""
    ids, error = {}, ""
    for side in ("a", "b"):
        raw = request.GET.get(side, "").strip()
        if raw and not raw.isdigit():
            error = f"{side}: a result id (a number) is required, not {raw[:40]!r}."
        elif raw:
            ids[side] = int(raw)
    results: dict[str, EvalResult] = {}
    for side, result_id in ids.items():
        result = eval_result_for_user(user=request.user, result_id=result_id)
        if result is None:
            raise Http404(f"No such evaluation result ({side}).")
        results[side] = result
    if len(results) == 2 and results["a"].benchmark != results["b"].benchmark:
        error = (
            f"a is on {results['a'].benchmark} and b on {results['b'].benchmark}: "
            "pick two results of the same benchmark."
        )
    comparison = None
    if len(results) == 2 and not error:
        comparison = eval_compare(a=results["a"], b=results["b"])
    for result in results.values():
        result.se = result_se(result)
    context = {
        "a": results.get("a"),
        "b": results.get("b"),
        "comparison": comparison,
        "error": error,
        "choices": eval_results_for_picker(user=request.user),
    }
    return render(request, "evals/compare.html", context, status=400 if error else 200)
