"""The leaderboard (checkpoints × benchmarks with the paper's rows), the benchmark chart's
reference lines, and `checkpoints_pass_at_1` for the recipe page."""

from __future__ import annotations

import json
from typing import Any

from django.urls import reverse

from r1studio.evals.reference import REFERENCES, benchmark_key
from r1studio.evals.selectors import checkpoints_pass_at_1
from r1studio.runs.events import events_dispatch
from r1studio.runs.models import Checkpoint
from tests.studio.evals.conftest import eval_event


def test_it_shows_checkpoints_by_benchmark_beside_the_papers_numbers(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    trained = make_run(researcher, name="<script>alert(1)</script>", run_dir="/r/7", step=20)
    Checkpoint.objects.create(run=trained, step=10, path="/r/7/checkpoint-10")
    events_dispatch(run=trained, events=[eval_event(benchmark="math500", step=10, solved=[0])])
    evaluate = make_run(
        researcher, kind="evaluate", config={"model": {"path": "/r/7/checkpoint-10"}}
    )
    events_dispatch(run=evaluate, events=[eval_event(solved=[0, 1])])  # aime24

    response = researcher_client.get(reverse("evals:leaderboard"))

    assert response.status_code == 200
    board = response.context["board"]
    assert board["benchmarks"][:2] == ["aime24", "math500"]
    # RL's own eval at step 10 and the evaluate run on checkpoint-10: one checkpoint, one row
    [row] = board["rows"]
    aime, math500 = row["cells"][:2]
    assert (round(aime.pass_at_1, 4), round(math500.pass_at_1, 4)) == (0.6667, 0.3333)
    html = response.content.decode()
    assert "66.7" in html and "± 10.0" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    # The paper's rows, labelled, with its numbers and the source
    assert html.count("data-reference") == len(REFERENCES) == 8
    for model, aime24, math in (
        ("DeepSeek-R1", "79.8", "97.3"),
        ("DeepSeek-R1-Zero", "71.0", "95.9"),
        ("DeepSeek-R1-Distill-Qwen-1.5B", "28.9", "83.9"),
        ("DeepSeek-R1-Distill-Llama-70B", "70.0", "94.5"),
    ):
        row_html = html[html.index(f"<td>{model} ") :]
        row_html = row_html[: row_html.index("</tr>")]
        assert aime24 in row_html and math in row_html
    assert "arXiv:2501.12948" in html
    assert "data-warned" in html  # k=2 on AIME's problems: too few samples


def test_it_shows_the_reference_rows_before_any_evaluation(researcher_client: Any) -> None:
    html = researcher_client.get(reverse("evals:leaderboard")).content.decode()
    assert "No checkpoint evaluated yet" in html and "97.3" in html


def test_the_benchmark_chart_draws_the_papers_numbers_as_reference_lines(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher, kind="evaluate")
    events_dispatch(run=run, events=[eval_event(benchmark="aime24", solved=[0])])
    events_dispatch(run=run, events=[eval_event(benchmark="gsm8k", solved=[0])])

    html = researcher_client.get(reverse("evals:benchmarks")).content.decode()

    charts = {}
    for chart_id in ("bench-chart-1", "bench-chart-2"):
        start = html.index(f'id="{chart_id}"')
        body = html[html.index(">", start) + 1 : html.index("</script>", start)]
        chart = json.loads(body)
        charts[chart["benchmark"]] = chart
    references = {r["label"]: r["value"] for r in charts["aime24"]["references"]}
    assert references["DeepSeek-R1"] == 0.798 and len(references) == 8
    assert charts["gsm8k"]["references"] == []  # the paper reports no GSM8K
    assert "static/js/benchmarks.js" in html and "<script>" not in html.replace('<script id="', "")


def test_benchmark_names_match_the_papers_by_their_short_name() -> None:
    assert benchmark_key("AIME 2024") == benchmark_key("aime_2024") == "aime24"
    assert benchmark_key("MATH-500") == "math500" and benchmark_key("toy-heldout") == "toy-heldout"


def test_checkpoints_pass_at_1_gives_each_stage_its_checkpoints_score(
    researcher: Any, make_run: Any
) -> None:
    base_eval = make_run(researcher, kind="evaluate", config={"model": {"path": "/models/base"}})
    rl = make_run(researcher, name="rl", run_dir="/r/1", step=20)
    sft = make_run(researcher, name="sft", kind="sft", run_dir="/r/2", step=30)
    final_eval = make_run(researcher, kind="evaluate", config={"model": {"path": "/r/2/final"}})
    events_dispatch(run=base_eval, events=[eval_event(solved=[])])
    events_dispatch(run=rl, events=[eval_event(step=10, solved=[0, 1, 2])])
    events_dispatch(run=rl, events=[eval_event(step=20, solved=[0])])  # the last step wins
    events_dispatch(run=final_eval, events=[eval_event(solved=[0, 1])])
    events_dispatch(run=final_eval, events=[eval_event(benchmark="MATH-500", solved=[1, 2])])

    scores = checkpoints_pass_at_1(runs=[base_eval, rl, sft, final_eval])

    assert list(scores) == [base_eval.pk, rl.pk, sft.pk, final_eval.pk]
    assert scores[base_eval.pk]["aime24"]["pass_at_1"] == 0
    assert scores[rl.pk]["aime24"]["step"] == 20
    assert round(scores[rl.pk]["aime24"]["pass_at_1"], 4) == 0.3333
    assert scores[sft.pk]["aime24"]["step"] == 30  # evaluated through its final model
    assert round(scores[sft.pk]["math500"]["pass_at_1"], 4) == 0.6667
    assert scores[sft.pk]["aime24"]["se"] == 0.1 and scores[sft.pk]["aime24"]["n_samples"] == 2
    assert scores[final_eval.pk] == {}  # its results count for the stage that made the model


def test_evaluate_runs_without_a_model_path_keep_their_own_rows(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    for name in ("one", "two"):
        run = make_run(researcher, kind="evaluate", name=name)
        events_dispatch(run=run, events=[eval_event(solved=[0])])

    board = researcher_client.get(reverse("evals:leaderboard")).context["board"]

    assert [row["label"].split(" ", 1)[1] for row in board["rows"]] == ["one", "two"]
