"""A result's pass@1 ± SE, decoding, per-problem table and precision warning."""

from __future__ import annotations

import math
from typing import Any

from django.urls import reverse

from r1studio.evals.models import EvalResult
from r1studio.evals.precision import result_se, result_warning
from r1studio.runs.events import events_dispatch
from r1studio.traces.services import prompt_hash
from tests.studio.evals.conftest import eval_event


def test_it_stores_the_standard_error_decoding_and_every_problem(
    researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher, kind="evaluate")
    events_dispatch(run=run, events=[eval_event(solved=[0], k=2)])

    result = EvalResult.objects.get(run=run)
    assert (result.pass_at_1_se, result.n_samples, result.k) == (0.1, 2, 2)
    assert (result.pass_at_1_ci_low, result.pass_at_1_ci_high) == (1 / 3 - 0.2, 1 / 3 + 0.2)
    assert result.decoding == {
        "temperature": 0.6,
        "top_p": 0.95,
        "n_samples": 2,
        "max_new_tokens": 64,
    }
    first = result.problems[0]
    assert first == {
        "id": "p0",
        "n_correct": 2,
        "n": 2,
        "majority_answer": "0",
        "correct": True,
        "prompt_hash": prompt_hash("Problem 0: what is 0?"),
        "problem": "Problem 0: what is 0?",
    }
    assert [p["correct"] for p in result.problems] == [True, False, False]


def test_it_reads_results_stored_before_the_new_fields_from_their_items(
    researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    old = eval_event(benchmark="gsm8k", solved=[1], k=1, n=3)
    for key in ("decoding", "problems"):
        old.pop(key)
    old["metrics"] = {"pass@1": 1 / 3, "cons@1": 1 / 3}

    events_dispatch(run=run, events=[old])

    result = EvalResult.objects.get(run=run)
    assert result.decoding == {} and result.pass_at_1_se is None
    assert [(p["id"], p["n_correct"], p["n"], p["correct"]) for p in result.problems] == [
        ("p0", 0, 1, False),
        ("p1", 1, 1, True),
        ("p2", 0, 1, False),
    ]
    # One sample per problem: each rate is 0 or 1, so the SE is exact without the rates:
    # sample variance = n/(n-1)·p(1-p) → SE = sqrt(p(1-p)/(n-1)) = sqrt((1/3)(2/3)/2) = 1/3
    assert math.isclose(result_se(result), 1 / 3)


def test_the_result_page_shows_se_decoding_and_the_per_problem_table(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher, kind="evaluate")
    events_dispatch(run=run, events=[eval_event(solved=[0, 2], k=2)])
    result = EvalResult.objects.get(run=run)

    response = researcher_client.get(reverse("evals:result", args=[result.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "66.7" in html and "± 10.0" in html  # pass@1 2/3 in points, SE 0.1
    assert "bootstrap 95%: 46.7–86.7" in html
    decoding = html[html.index("data-decoding") :]
    assert "0.6" in decoding and "0.95" in decoding and ">64<" in decoding and ">2<" in decoding
    table = html[html.index("data-problem-table") :]
    assert table.index("p0") < table.index("p1") < table.index("p2")
    assert "2 of 2" in table and "0 of 2" in table
    group = reverse("traces:group", args=[run.pk, 0, prompt_hash("Problem 1: what is 1?")])
    assert group in table  # the problem's sampled completions, stored as traces
    assert 'data-precision-warning="few_samples"' in html


def _result(**fields: Any) -> EvalResult:
    defaults = {"benchmark": "aime24", "step": 0, "pass_at_1": 0.3, "n_samples": 1}
    return EvalResult(**{**defaults, **fields})


def test_it_warns_that_one_sample_per_aime_problem_is_too_few() -> None:
    result = _result(n_problems=30, n_samples=1)

    warning = result_warning(result)

    # k=1: SE = sqrt(0.3 · 0.7 / 29) = 0.0851 → ±8.5 points
    assert warning.kind == "few_samples"
    assert "AIME 2024 has 30 problems" in warning.text
    assert "±8.5 points" in warning.text and "at least 16" in warning.text


def test_it_warns_about_a_wide_standard_error_even_with_many_samples() -> None:
    wide = _result(n_problems=30, n_samples=64, pass_at_1_se=0.07)
    assert result_warning(wide).kind == "wide"
    assert "±7.0 points" in result_warning(wide).text
    assert result_warning(_result(n_problems=30, n_samples=64, pass_at_1_se=0.02)) is None


def test_it_does_not_warn_on_a_large_benchmark_with_one_sample() -> None:
    # MATH-500 at k=1, pass@1 0.8: SE = sqrt(0.8 · 0.2 / 499) = 0.0179 (1.8 points)
    result = _result(benchmark="math500", n_problems=500, pass_at_1=0.8)
    assert math.isclose(result_se(result), math.sqrt(0.16 / 499))
    assert result_warning(result) is None
