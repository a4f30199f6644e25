"""Trace pages: browser with filters and HTMX "Load more", detail, group, over time, access."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from r1studio.traces.models import Trace
from tests.studio.traces.conftest import sample

XSS = "<script>alert(1)</script>"


def test_it_lists_traces_and_filters_them(
    researcher_client: Any, researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher, name="zero")
    add_samples(run, 1, [sample(prompt="alpha problem", accuracy=0.0)])
    add_samples(run, 2, [sample(prompt="beta problem", accuracy=1.0)])

    page = researcher_client.get(reverse("traces:list"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "alpha problem" in html and "beta problem" in html

    filtered = researcher_client.get(
        reverse("traces:list"), {"run": run.pk, "correct": "no", "step_min": "1"}
    ).content.decode()
    assert "alpha problem" in filtered and "beta problem" not in filtered

    none = researcher_client.get(reverse("traces:list"), {"q": "gamma"}).content.decode()
    assert "No traces match these filters" in none


def test_it_loads_the_next_page_as_rows_for_htmx(
    researcher_client: Any, researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    for step in range(1, 61):
        add_samples(run, step, [sample(prompt=f"problem at step {step}")])

    first = researcher_client.get(reverse("traces:list"))
    assert len(first.context["traces"]) == 50
    next_query = first.context["next_query"]
    assert next_query and "after=" in next_query

    more = researcher_client.get(f"{reverse('traces:list')}?{next_query}", HTTP_HX_REQUEST="true")
    html = more.content.decode()
    assert "<html" not in html and "<table" not in html
    assert html.count('class="trace-row"') == 10
    assert "problem at step 10" in html and "problem at step 11" not in html
    assert "Load more" not in html

    results = researcher_client.get(reverse("traces:list"), {"q": "step 7"}, HTTP_HX_REQUEST="true")
    assert results.content.decode().lstrip().startswith('<div id="trace-results">')


def test_it_renders_a_trace_with_think_and_answer_escaped(
    researcher_client: Any, researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    completion = f"<think>Wait, {XSS} is not maths</think> <answer>5 {XSS}</answer>"
    add_samples(run, 3, [sample(prompt=f"prompt {XSS}", completion=completion)])
    trace = Trace.objects.get(run=run)

    response = researcher_client.get(reverse("traces:detail", args=[trace.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'class="seg seg-think"' in html and 'class="seg seg-answer"' in html
    assert "“wait” × 1" in html
    assert reverse("traces:group", args=[run.pk, 3, trace.prompt_hash]) in html
    assert reverse("traces:over_time", args=[run.pk, trace.prompt_hash]) in html


def test_it_shows_a_group_with_rewards_and_advantages(
    researcher_client: Any, researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    add_samples(run, 4, [sample(advantage=0.866), sample(accuracy=0.0, advantage=-0.866)])
    trace = Trace.objects.filter(run=run).first()

    response = researcher_client.get(reverse("traces:group", args=[run.pk, 4, trace.prompt_hash]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "+0.866" in html and "-0.866" in html
    assert "<th>accuracy</th>" in html and "<th>format</th>" in html
    assert "1 of 2" in html
    missing = reverse("traces:group", args=[run.pk, 5, trace.prompt_hash])
    assert researcher_client.get(missing).status_code == 404


def test_it_shows_a_prompt_over_time_with_a_diff(
    researcher_client: Any, researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    add_samples(run, 1, [sample(completion="<think>2+3 = 5</think><answer>5</answer>")])
    add_samples(
        run, 2, [sample(completion=f"<think>2+3 = 5. Wait, {XSS}</think><answer>5</answer>")]
    )
    trace = Trace.objects.filter(run=run).first()

    response = researcher_client.get(reverse("traces:over_time", args=[run.pk, trace.prompt_hash]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "<ins>" in html and XSS not in html and "&lt;script&gt;" in html
    assert 'id="over-time-data"' in html
    assert response.context["rows"][1]["reflections"] == 1


def test_it_refuses_annotators_and_hides_invisible_runs(
    researcher: Any, annotator: Any, make_user: Any, make_run: Any, add_samples: Any
) -> None:
    draft = make_run(make_user("researcher"), status="draft")
    add_samples(draft, 1, [sample()])
    trace = Trace.objects.get(run=draft)
    anonymous, as_annotator, as_researcher = Client(), Client(), Client()
    as_annotator.force_login(annotator)
    as_researcher.force_login(researcher)

    assert as_annotator.get(reverse("traces:list")).status_code == 403
    assert as_annotator.get(reverse("traces:detail", args=[trace.pk])).status_code == 403
    assert as_researcher.get(reverse("traces:detail", args=[trace.pk])).status_code == 404
    assert as_researcher.get(reverse("traces:list"), {"run": draft.pk}).status_code == 404
    response = anonymous.get(reverse("traces:detail", args=[trace.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
