"""Trace pages: browser with filters and HTMX "Load more", detail, group, over time, access."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from r1studio.traces.models import Trace
from r1studio.traces.services import traces_ingest
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


CHAT_PROMPT = f"<|system|>Think first.<|end|><|user|>What is 61+69? {XSS}<|end|><|assistant|>"


def test_it_shows_prompts_as_the_users_message_with_the_raw_text_on_demand(
    researcher_client: Any, researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    add_samples(run, 1, [sample(prompt=CHAT_PROMPT)])
    add_samples(run, 2, [sample(prompt=CHAT_PROMPT)])
    trace = Trace.objects.filter(run=run).first()
    escaped = "What is 61+69? &lt;script&gt;alert(1)&lt;/script&gt;"
    pages = {
        "list": reverse("traces:list"),
        "detail": reverse("traces:detail", args=[trace.pk]),
        "group": reverse("traces:group", args=[run.pk, trace.step, trace.prompt_hash]),
        "over time": reverse("traces:over_time", args=[run.pk, trace.prompt_hash]),
    }

    for name, url in pages.items():
        html = researcher_client.get(url).content.decode()
        assert XSS not in html, name
        if name == "list":
            assert f'">{escaped}</a>' in html and "&lt;|user|&gt;" not in html
            continue
        assert f'<div class="prompt-text">{escaped}</div>' in html, name
        assert '<span class="prompt-role">user</span>' in html, name
        # the exact text, role tokens and all, in a "Raw prompt" fold
        assert "&lt;|system|&gt;Think first.&lt;|end|&gt;&lt;|user|&gt;" in html, name
        assert '<summary>Raw prompt</summary><pre class="raw-text"' in html, name


def test_it_breaks_the_reward_down_into_weight_times_value(
    researcher_client: Any, researcher: Any, make_run: Any, add_samples: Any
) -> None:
    config = {"rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.2}]}
    run = make_run(researcher, config=config)
    add_samples(run, 1, [sample(accuracy=0.0, reward=0.2)])
    trace = Trace.objects.get(run=run)

    html = researcher_client.get(reverse("traces:detail", args=[trace.pk])).content.decode()

    rows = html.split("<tbody>")[-1].split("</tbody>")[0]
    assert "<td>accuracy</td>" in rows and "<td>format</td>" in rows
    assert '<td class="num">× 0.2</td><td class="num pos">0.2</td>' in rows  # format: 1 × 0.2
    assert '<td class="num">× 1</td><td class="num zero">0</td>' in rows  # accuracy: 0 × 1
    assert "data-reward-total>0.2</td>" in html and "not the reported total" not in html


def test_it_links_the_previous_and_next_trace_of_the_filtered_list(
    researcher_client: Any, researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    for step in (1, 2, 3, 4):
        add_samples(run, step, [sample(prompt=f"p{step}", accuracy=float(step % 2))])
    wrong = list(Trace.objects.filter(run=run, correct=False).order_by("-step"))  # steps 4, 2
    query = f"?run={run.pk}&correct=no"

    listing = researcher_client.get(reverse("traces:list") + query).content.decode()
    detail = researcher_client.get(reverse("traces:detail", args=[wrong[0].pk]) + query)

    assert f'href="/traces/{wrong[0].pk}/?run={run.pk}&amp;correct=no"' in listing
    html = detail.content.decode()
    assert f'href="/traces/{wrong[1].pk}/?run={run.pk}&amp;correct=no" rel="next"' in html
    assert "data-trace-prev" not in html  # the newest of the list has no previous one
    unfiltered = researcher_client.get(reverse("traces:detail", args=[wrong[0].pk]))
    assert detail.context["neighbours"]["older"].step == 2
    assert unfiltered.context["neighbours"]["older"].step == 3
    assert unfiltered.context["neighbours"]["newer"] is None


def test_it_links_every_trace_to_its_prompt_over_time(
    researcher_client: Any, researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    add_samples(run, 1, [sample(prompt="trained once")])
    for step in (0, 2, 4):
        add_samples(run, step, [{**sample(prompt="a probe"), "source": "probe"}])
    item = {"problem": "What is 2+2?", "answer": "4", "completions": ["4"], "correct": [False]}
    for step in (2, 4):
        traces_ingest(
            run=run, events=[{"type": "eval", "step": step, "benchmark": "toy", "items": [item]}]
        )
    for trace in Trace.objects.filter(run=run):
        html = researcher_client.get(reverse("traces:detail", args=[trace.pk])).content.decode()
        link = reverse("traces:over_time", args=[run.pk, trace.prompt_hash])
        assert f'href="{link}?source={trace.source}" data-over-time-link' in html

    evals = Trace.objects.filter(run=run, source="eval").first()
    url = reverse("traces:over_time", args=[run.pk, evals.prompt_hash])
    assert [r["step"] for r in researcher_client.get(url).context["rows"]] == [2, 4]

    # A training prompt seen once points at the probes, which have every step.
    once = Trace.objects.get(run=run, source="train")
    page = researcher_client.get(reverse("traces:over_time", args=[run.pk, once.prompt_hash]))
    html = page.content.decode()
    probe_hash = Trace.objects.filter(source="probe").first().prompt_hash
    assert "Only one step of this prompt" in html
    assert f"{reverse('traces:over_time', args=[run.pk, probe_hash])}?source=probe" in html
