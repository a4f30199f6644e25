"""Two results of one benchmark compared problem by problem."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from r1studio.evals.models import EvalResult
from r1studio.runs.events import events_dispatch
from r1studio.traces.services import prompt_hash
from tests.studio.evals.conftest import eval_event


def _result(make_run: Any, owner: Any, **event: Any) -> EvalResult:
    run = make_run(owner, kind="evaluate", name=event.pop("name", "eval"))
    events_dispatch(run=run, events=[eval_event(**event)])
    return EvalResult.objects.get(run=run)


def test_it_lists_what_each_solves_and_the_other_does_not(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    a = _result(make_run, researcher, solved=[0, 1], n=4, name="<b>A</b>")
    b = _result(make_run, researcher, solved=[1, 2], n=4, name="B")

    response = researcher_client.get(reverse("evals:compare"), {"a": a.pk, "b": b.pk})

    assert response.status_code == 200
    comparison = response.context["comparison"]
    assert [p["id"] for p in comparison["only_a"]] == ["p0"]
    assert [p["id"] for p in comparison["only_b"]] == ["p2"]
    assert (comparison["both"], comparison["neither"], comparison["common"]) == (1, 1, 4)
    html = response.content.decode()
    assert "A only 1 · B only 1 · both 1 · neither 1" in html
    only_a = html[html.index('data-compare="only-a"') : html.index('data-compare="only-b"')]
    assert "Problem 0: what is 0?" in only_a and "2 of 2" in only_a and "0 of 2" in only_a
    p0 = prompt_hash("Problem 0: what is 0?")
    assert reverse("traces:group", args=[a.run_id, 0, p0]) in only_a
    assert reverse("traces:group", args=[b.run_id, 0, p0]) in only_a
    assert "&lt;b&gt;A&lt;/b&gt;" in html and "<b>A</b>" not in html


def test_it_refuses_two_benchmarks_and_bad_ids(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    a = _result(make_run, researcher, benchmark="aime24")
    b = _result(make_run, researcher, benchmark="math500")
    url = reverse("evals:compare")

    response = researcher_client.get(url, {"a": a.pk, "b": b.pk})
    assert response.status_code == 400
    assert "same benchmark" in response.content.decode()
    response = researcher_client.get(url, {"a": "x1", "b": b.pk})
    assert response.status_code == 400 and "a: a result id" in response.content.decode()
    assert researcher_client.get(url, {"a": a.pk, "b": 99999}).status_code == 404


def test_it_offers_a_picker_without_two_results(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    html = researcher_client.get(reverse("evals:compare")).content.decode()
    assert "Nothing to compare yet" in html
    a = _result(make_run, researcher)

    response = researcher_client.get(reverse("evals:compare"), {"a": a.pk})

    assert response.status_code == 200 and response.context["comparison"] is None
    assert f'value="{a.pk}" selected' in response.content.decode()


def test_it_hides_results_of_a_draft_from_other_researchers(
    researcher_client: Any, researcher: Any, make_user: Any, make_run: Any
) -> None:
    other = make_user("researcher")
    hidden = make_run(other, status="draft", kind="evaluate")
    events_dispatch(run=hidden, events=[eval_event()])
    mine = _result(make_run, researcher)
    secret = EvalResult.objects.get(run=hidden)

    response = researcher_client.get(reverse("evals:compare"), {"a": mine.pk, "b": secret.pk})

    assert response.status_code == 404
