"""The Benchmarks page: eval results per run and benchmark, and their per-problem traces."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from r1studio.evals.models import EvalResult
from r1studio.runs.events import events_dispatch


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
    events_dispatch(run=weak, events=[eval_event(10, 0.25)])
    events_dispatch(run=strong, events=[eval_event(10, 0.75)])
    events_dispatch(run=unscored, events=[{**eval_event(10, 0.0), "metrics": {"cons@2": 0.5}}])

    response = researcher_client.get(reverse("evals:benchmarks"))

    assert response.status_code == 200
    [board] = response.context["boards"]
    assert [r.run.name for r in board["results"]] == ["strong", "weak", "unscored"]
    html = response.content.decode()
    assert "gsm8k" in html
    table = html[html.index("<table") :]  # the chart's data above names runs in step order
    assert table.index("strong") < table.index("weak")
    assert "75.0" in html and "cons@2" in html


def test_it_shows_the_per_problem_items_of_a_result(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    event = eval_event(5, 0.5)
    assert events_dispatch(run=run, events=[event])["traces"] == 2
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

    events_dispatch(run=run, events=[event])

    result = EvalResult.objects.get(run=run)
    assert (result.pass_at_1, result.cons_at_k, result.k) == (None, None, 2)
    assert result.metrics == {"pass@1": None, "cons@2": None}


def test_it_refuses_annotators(annotator_client: Any) -> None:
    assert annotator_client.get(reverse("evals:benchmarks")).status_code == 403


def test_it_says_which_model_each_result_evaluated_and_links_the_run_that_made_it(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    from r1studio.runs.models import Checkpoint

    trained = make_run(researcher, name="r1-zero", run_dir="/data/runs/7", step=30)
    Checkpoint.objects.create(run=trained, step=15, path="/data/runs/7/checkpoint-15")
    events_dispatch(run=trained, events=[eval_event(15, 0.25)])  # RL's own periodic eval

    def evaluate(path: str, pass_at_1: float) -> Any:
        run = make_run(researcher, kind="evaluate", config={"model": {"path": path}})
        events_dispatch(run=run, events=[eval_event(0, pass_at_1)])
        return run

    evaluate("/data/runs/7/checkpoint-15", 0.3)
    evaluate("/data/runs/7/final", 0.5)
    evaluate("/models/base", 0.1)

    response = researcher_client.get(reverse("evals:benchmarks"))

    [board] = response.context["boards"]
    models = {r.pass_at_1: r.model for r in board["results"]}
    assert (models[0.25].run, models[0.25].step, models[0.25].during_run) == (trained, 15, True)
    assert (models[0.3].run, models[0.3].step) == (trained, 15)
    final = models[0.5]
    assert (final.run, final.step, final.path) == (trained, 30, "/data/runs/7/final")
    assert (models[0.1].run, models[0.1].step, models[0.1].path) == (None, None, "/models/base")
    html = response.content.decode()
    assert f'data-model-run="{trained.pk}"' in html and "/models/base" in html
    # pass@1 over checkpoint steps: one line for the run's checkpoints, one for the base model
    lines = {line["label"]: line for line in board["chart"]["lines"]}
    assert lines[f"#{trained.pk} r1-zero"]["steps"] == [15, 15, 30]
    assert lines["/models/base"] == {"label": "/models/base", "steps": [0], "values": [0.1]}
    assert 'id="bench-chart-1"' in html and "vendor/plotly.min.js" in html


def test_it_hides_the_producing_run_from_who_may_not_see_it(
    researcher_client: Any, researcher: Any, make_user: Any, make_run: Any
) -> None:
    other = make_user("researcher")
    draft = make_run(other, status="draft", run_dir="/data/runs/9")
    run = make_run(researcher, kind="evaluate", config={"model": {"path": "/data/runs/9/final"}})
    events_dispatch(run=run, events=[eval_event(0, 0.5)])

    [board] = researcher_client.get(reverse("evals:benchmarks")).context["boards"]

    assert board["results"][0].model.run is None and draft.pk


def test_it_loads_no_chart_script_without_results(researcher_client: Any) -> None:
    html = researcher_client.get(reverse("evals:benchmarks")).content.decode()
    assert "plotly" not in html
