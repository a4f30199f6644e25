"""The Benchmarks page: eval results per run and benchmark, and their per-problem traces."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from r1studio.evals.models import EvalResult
from r1studio.metrics.services import metrics_ingest
from r1studio.traces.services import traces_ingest


def eval_event(step: int, pass_at_1: float) -> dict:
    return {
        "type": "eval",
        "step": step,
        "benchmark": "gsm8k",
        "metrics": {"pass@1": pass_at_1, "cons@2": 0.5},
        "n_samples": 2,
        "items": [
            {
                "problem": "What is 2+2?",
                "reference": "4",
                "correct": [True, False],
                "completions": ["<think>2+2</think><answer>4</answer>", "<answer>5</answer>"],
            }
        ],
    }


def test_it_lists_results_per_benchmark_best_first(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    weak, strong = make_run(researcher, name="weak"), make_run(researcher, name="strong")
    unscored = make_run(researcher, name="unscored")
    metrics_ingest(run=weak, events=[eval_event(10, 0.25)])
    metrics_ingest(run=strong, events=[eval_event(10, 0.75)])
    metrics_ingest(run=unscored, events=[{**eval_event(10, 0.0), "metrics": {"cons@2": 0.5}}])

    response = researcher_client.get(reverse("evals:benchmarks"))

    assert response.status_code == 200
    [board] = response.context["boards"]
    assert [r.run.name for r in board["results"]] == ["strong", "weak", "unscored"]
    html = response.content.decode()
    assert "gsm8k" in html
    assert html.index("strong") < html.index("weak")
    assert "0.75" in html and "cons@2" in html


def test_it_shows_the_per_problem_items_of_a_result(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    event = eval_event(5, 0.5)
    metrics_ingest(run=run, events=[event])
    assert traces_ingest(run=run, events=[event]) == 2
    result = EvalResult.objects.get(run=run)

    response = researcher_client.get(reverse("evals:result", args=[result.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "What is 2+2?" in html
    assert "1 of 2" in html
    assert researcher_client.get(reverse("evals:result", args=[999])).status_code == 404


def test_it_stores_infinite_and_nan_figures_as_unknown(researcher: Any, make_run: Any) -> None:
    run = make_run(researcher)
    event = {**eval_event(3, 0.5), "metrics": {"pass@1": float("nan"), "cons@2": float("inf")}}

    metrics_ingest(run=run, events=[event])

    result = EvalResult.objects.get(run=run)
    assert (result.pass_at_1, result.cons_at_k, result.k) == (None, None, 2)
    assert result.metrics == {"pass@1": None, "cons@2": None}


def test_it_refuses_annotators(annotator_client: Any) -> None:
    assert annotator_client.get(reverse("evals:benchmarks")).status_code == 403
