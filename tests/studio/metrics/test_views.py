"""Chart JSON, the compare page, the panels and alerts partials, and who may see them."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string
from django.urls import reverse

from r1studio.metrics.selectors import Alert
from r1studio.runs.events import events_dispatch


def ingest(run: Any, steps: int, names: list[str]) -> None:
    events = [
        {"type": "metrics", "step": s, "values": {n: s * 0.1 for n in names}}
        for s in range(1, steps + 1)
    ]
    events_dispatch(run=run, events=events)


def test_it_serves_downsampled_series_as_json(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    ingest(run, 3000, ["reward", "loss"])

    response = researcher_client.get(
        reverse("metrics:series", args=[run.pk]), {"names": "reward", "max_points": "300"}
    )

    assert response.status_code == 200
    data = response.json()
    assert (data["run"], data["status"], data["last_step"]) == (run.pk, "running", 3000)
    [series] = data["series"]
    assert series["name"] == "reward"
    assert series["total"] == 3000 and series["shown"] <= 302
    assert len(series["steps"]) == series["shown"]


def test_it_serves_every_series_when_no_names_are_given(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    ingest(run, 5, ["reward", "kl", "loss"])
    data = researcher_client.get(reverse("metrics:series", args=[run.pk])).json()
    assert [s["name"] for s in data["series"]] == ["kl", "loss", "reward"]


def test_it_refuses_annotators_and_sends_anonymous_users_to_login(
    client: Any, annotator_client: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    url = reverse("metrics:series", args=[run.pk])
    assert annotator_client.get(url).status_code == 403
    client.logout()
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_hides_another_researchers_draft(
    researcher_client: Any, make_user: Any, make_run: Any
) -> None:
    other = make_user("researcher")
    draft = make_run(other, status="draft")
    assert researcher_client.get(reverse("metrics:series", args=[draft.pk])).status_code == 404
    assert researcher_client.get(reverse("metrics:series", args=[99999])).status_code == 404


def test_it_overlays_a_panel_of_several_runs_on_the_compare_page(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    first, second = make_run(researcher, name="baseline"), make_run(researcher, name="ablation")
    ingest(first, 5, ["reward", "rewards/accuracy/mean", "kl"])
    ingest(second, 5, ["reward"])

    response = researcher_client.get(
        reverse("metrics:compare"), {"runs": f"{first.pk},{second.pk}", "panel": "reward"}
    )

    assert response.status_code == 200
    spec = response.context["compare_spec"]
    assert spec["panel"] == "reward"
    assert [(s["run"], s["names"]) for s in spec["series"]] == [
        (first.pk, ["reward", "rewards/accuracy/mean"]),
        (second.pk, ["reward"]),
    ]
    html = response.content.decode()
    assert "baseline" in html and "ablation" in html and 'id="compare-spec"' in html


def test_it_renders_only_panels_with_data(researcher: Any, make_run: Any, rf: Any) -> None:
    run = make_run(researcher)
    ingest(run, 3, ["reward", "rewards/format/mean", "kl", "eval/math500/pass@1", "epoch"])

    html = render_to_string("metrics/_panels.html", {"run": run})

    assert 'data-panel="reward"' in html and 'data-panel="kl"' in html
    assert 'data-panel="eval"' in html and "Benchmark pass@1" in html
    assert 'data-panel="loss"' not in html
    assert "Also logged: epoch" in html
    assert f'data-stream-url="/runs/{run.pk}/stream"' in html
    empty = render_to_string("metrics/_panels.html", {"run": make_run(researcher)})
    assert "No metrics yet" in empty and "data-empty hidden" not in empty


def test_it_renders_alerts_escaped() -> None:
    alerts = [Alert("nan", "error", "loss is <b>NaN</b>"), Alert("stalled", "warning", "quiet")]
    html = render_to_string("metrics/_alerts.html", {"alerts": alerts})
    assert 'data-alert="nan"' in html and "run-alert-warning" in html
    assert "&lt;b&gt;NaN&lt;/b&gt;" in html
    assert render_to_string("metrics/_alerts.html", {"alerts": []}).strip() == ""


def test_it_summarises_a_finished_generate_run(researcher: Any, make_run: Any) -> None:
    run = make_run(researcher, kind="generate", status="finished")
    counts = {"prompts": 16, "samples": 64, "dropped/keep_correct": 40, "dropped/dedup": 8,
              "kept": 16, "keep_rate": 0.25, "verifiers/accuracy/mean": 0.4}  # fmt: skip
    events_dispatch(run=run, events=[{"type": "metrics", "step": 0, "values": counts}])

    html = render_to_string("metrics/_panels.html", {"run": run})

    assert 'data-panel="generate"' in html and "Rejection sampling" in html
    assert "keep rate 25.0%" in html
    assert 'data-panel="verifiers"' in html
    assert "data-empty hidden" in html
    assert "Also logged" not in html


def test_it_compares_held_out_pass_at_1(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    first, second = make_run(researcher), make_run(researcher)
    ingest(first, 2, ["eval/toy-heldout/pass@1"])
    ingest(second, 2, ["eval/gsm8k/pass@1", "eval/toy-heldout/pass@1"])

    response = researcher_client.get(
        reverse("metrics:compare"), {"runs": f"{first.pk},{second.pk}", "panel": "eval"}
    )

    spec = response.context["compare_spec"]
    assert [s["names"] for s in spec["series"]] == [
        ["eval/toy-heldout/pass@1"],
        ["eval/gsm8k/pass@1", "eval/toy-heldout/pass@1"],
    ]
    assert spec["y_title"] == "pass@1"
    assert "None of the selected runs logged" not in response.content.decode()


def test_it_loads_plotly_only_where_charts_are(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    assert (
        "vendor/plotly.min.js" in researcher_client.get(reverse("metrics:compare")).content.decode()
    )
    assert "vendor/plotly.min.js" in render_to_string("metrics/_panels.html", {"run": run})
    assert "vendor/plotly.min.js" not in researcher_client.get("/runs/").content.decode()
