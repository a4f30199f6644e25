"""Word search in traces: the same matches on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

Run on both: `DATABASE_URL=postgres://... pytest tests/studio/traces`.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.urls import reverse

from r1studio.traces.models import Trace
from r1studio.traces.search import Term, fts5_query, parse_query, sort_key, trace_id, tsquery
from r1studio.traces.selectors import trace_neighbours, traces_filtered, traces_page
from tests.studio.traces.conftest import sample


def found(user: Any, q: str, **filters: Any) -> list[str]:
    """The completions of every page of `traces_page(q=...)`, newest first."""
    out, cursor = [], None
    while True:
        rows, cursor = traces_page(user=user, q=q, after=cursor, limit=200, **filters)
        out += [Trace.objects.get(pk=t.pk).completion for t in rows]
        if cursor is None:
            return out


def test_it_finds_a_word_in_the_completion_and_in_the_prompt(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    add_samples(run, 1, [sample(prompt="Add 2 and 3", completion="<think>easy</think> 5")])
    add_samples(run, 2, [sample(prompt="Add 4 and 4", completion="<think>Wait, carry</think> 8")])
    assert found(researcher, "carry") == ["<think>Wait, carry</think> 8"]
    assert found(researcher, "add") == ["<think>Wait, carry</think> 8", "<think>easy</think> 5"]
    assert found(researcher, "WAIT") == ["<think>Wait, carry</think> 8"]
    assert found(researcher, "think") == found(researcher, "add")  # tags are words too
    assert found(researcher, "add easy") == ["<think>easy</think> 5"]  # prompt and completion
    assert found(researcher, "zebra") == []


def test_it_needs_every_word_and_keeps_phrases_in_order(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    texts = ["wait, let me re-check", "check it again, re", "so 2+3=5", "3 + 2 is 5"]
    add_samples(run, 1, [sample(prompt="Say it", completion=text) for text in texts])
    assert found(researcher, "re-check") == ["wait, let me re-check"]
    assert sorted(found(researcher, "check re")) == sorted(texts[:2])
    assert found(researcher, '"let me re check"') == ["wait, let me re-check"]
    assert found(researcher, '"me let"') == []
    assert found(researcher, "2+3") == ["so 2+3=5"]
    assert found(researcher, "wait again") == []


def test_it_matches_whole_words_and_a_prefix_with_a_star(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    add_samples(run, 1, [sample(completion=t) for t in ["verified", "rechecked it", "verify"]])
    assert found(researcher, "verif") == []
    assert sorted(found(researcher, "verif*")) == ["verified", "verify"]
    assert found(researcher, "check") == []  # not a substring search
    assert found(researcher, "rechecked") == ["rechecked it"]
    assert found(researcher, '"rechecked i"*') == ["rechecked it"]


def test_it_matches_nothing_for_a_query_without_words(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    add_samples(make_run(researcher), 1, [sample(completion="?! ...")])
    assert found(researcher, "?!") == []
    assert traces_filtered(user=researcher, q="  ").count() == 1  # blank: no search at all
    assert len(traces_page(user=researcher, q="  ")[0]) == 1


def test_it_respects_the_other_filters_and_visibility(
    researcher: Any, make_user: Any, make_run: Any, add_samples: Any
) -> None:
    run, other = make_run(researcher), make_run(researcher)
    draft = make_run(make_user("researcher"), status="draft")
    for step in range(1, 6):
        add_samples(run, step, [sample(completion=f"wait {step}", accuracy=float(step % 2))])
    add_samples(other, 3, [sample(completion="wait other")])
    add_samples(draft, 3, [sample(completion="wait hidden")])
    assert len(found(researcher, "wait")) == 6
    assert found(researcher, "wait", run=other) == ["wait other"]
    assert found(researcher, "wait", run=run, step_min=2, step_max=4) == [
        "wait 4",
        "wait 3",
        "wait 2",
    ]
    assert found(researcher, "wait", run=run, correct=True) == ["wait 5", "wait 3", "wait 1"]
    assert found(researcher, "wait", reward_max=1.0, step_max=4) == ["wait 4", "wait 2"]
    assert found(researcher, "wait", run=draft) == []
    assert traces_filtered(user=researcher, q="wait").count() == 6


def test_it_finds_steps_beyond_the_key_range_with_a_step_filter(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    for step in (-5, 10, 2**24, 2**30):
        add_samples(run, step, [sample(completion=f"wait {step}")])
    assert found(researcher, "wait", step_min=2**23) == [f"wait {2**30}", f"wait {2**24}"]
    assert found(researcher, "wait", step_min=-(2**30), step_max=2**30) == [
        f"wait {s}" for s in (2**30, 2**24, 10, -5)
    ]
    assert found(researcher, "wait", step_max=0) == ["wait -5"]


def test_it_pages_search_results_newest_first_with_the_cursor(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    # Steps out of order (a resumed run, eval traces at earlier steps): ids do not follow steps.
    for step in [5, 1, 9, 3, 7, 2, 8]:
        items = [sample(prompt=f"p{i}", completion=f"wait {step}.{i}") for i in range(3)]
        items.append(sample(prompt="other", completion=f"no match {step}"))
        add_samples(run, step, items)
    seen, cursor = [], None
    while True:
        page, cursor = traces_page(user=researcher, run=run, q="wait", after=cursor, limit=4)
        seen += [(t.step, t.pk) for t in page]
        if cursor is None:
            break
    assert len(seen) == 21 == len(set(seen))
    assert seen == sorted(seen, reverse=True)
    expected = list(
        Trace.objects.filter(completion__startswith="wait")
        .order_by("-step", "-id")
        .values_list("step", "id")
    )
    assert seen == expected


def test_it_finds_the_neighbours_of_a_trace_among_the_matches(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    for step in [4, 1, 3, 2]:
        add_samples(run, step, [sample(completion=f"wait {step}"), sample(completion="no")])
    match = {t.step: t for t in Trace.objects.filter(completion__startswith="wait")}
    around = trace_neighbours(user=researcher, trace=match[2], run=run, q="wait")
    assert (around["newer"].pk, around["older"].pk) == (match[3].pk, match[1].pk)
    first = trace_neighbours(user=researcher, trace=match[4], run=run, q="wait", step_min=2)
    assert first["newer"] is None and first["older"].pk == match[3].pk
    last = trace_neighbours(user=researcher, trace=match[2], run=run, q="wait", step_min=2)
    assert last["older"] is None


def test_it_keeps_the_index_in_step_with_deletes_and_updates(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run, other = make_run(researcher), make_run(researcher)
    add_samples(run, 1, [sample(completion="aha moment")])
    add_samples(other, 1, [sample(completion="aha again")])
    run.delete()
    assert found(researcher, "aha") == ["aha again"]
    Trace.objects.filter(run=other).update(completion="eureka", step=4)
    assert found(researcher, "aha") == []
    assert found(researcher, "eureka") == ["eureka"]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT rowid FROM traces_trace_search")
            keys = [row[0] for row in cursor.fetchall()]
        assert keys == [sort_key(4, Trace.objects.get().pk)]


def test_the_browser_searches_and_explains_the_search(
    researcher_client: Any, researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    add_samples(run, 1, [sample(prompt="alpha problem", completion="let me re-check")])
    add_samples(run, 2, [sample(prompt="beta problem", completion="done")])
    html = researcher_client.get(reverse("traces:list"), {"q": "RE-CHECK"}).content.decode()
    assert "alpha problem" in html and "beta problem" not in html
    assert 'placeholder="words, &quot;a phrase&quot;, prefix*"' in html
    assert "Not a substring search" in html


def test_the_api_searches_and_pages_the_same_way(
    client: Any, researcher: Any, make_run: Any, add_samples: Any
) -> None:
    from r1studio.api.services import api_token_create

    _, token = api_token_create(user=researcher, name="test")
    auth = {"Authorization": f"Bearer {token}"}
    run = make_run(researcher)
    for step in range(1, 4):
        add_samples(run, step, [sample(completion=f"wait, re-check {step}"), sample(prompt="x")])
    url = f"/api/runs/{run.pk}/traces"
    first = client.get(url, {"q": "re-check", "limit": 2}, headers=auth).json()
    assert [t["step"] for t in first["items"]] == [3, 2] and first["next"]
    rest = client.get(url, {"q": "re-check", "after": first["next"]}, headers=auth).json()
    assert [t["step"] for t in rest["items"]] == [1] and rest["next"] is None


def test_it_parses_a_query_into_terms() -> None:
    terms = parse_query('Wait re-check "let me  see" verif* 2+3 ?! "x y"*')
    assert terms == [
        Term(("wait",)),
        Term(("re", "check")),
        Term(("let", "me", "see")),
        Term(("verif",), prefix=True),
        Term(("2", "3")),
        Term(("x", "y"), prefix=True),
    ]
    assert fts5_query(terms) == '"wait" "re check" "let me see" "verif"* "2 3" "x y"*'
    assert tsquery(terms) == (
        "'wait' & 're' <-> 'check' & 'let' <-> 'me' <-> 'see' & 'verif':* & '2' <-> '3'"
        " & 'x' <-> 'y':*"
    )
    assert parse_query("__ -- ''") == []


def test_its_keys_sort_as_step_then_id() -> None:
    pairs = [(-3, 9), (-1, 2**40 - 1), (0, 1), (0, 7), (1, 2), (2**23 - 1, 5)]
    keys = [sort_key(step, pk) for step, pk in pairs]
    assert keys == sorted(keys)
    assert [trace_id(k) for k in keys] == [pk for _, pk in pairs]
    assert min(keys) >= -(2**63) and max(keys) < 2**63
