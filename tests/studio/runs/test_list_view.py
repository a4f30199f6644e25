"""The runs list: search by name, filter by tag, latest reward and pass@1, tick runs to compare,
and a bounded number of queries however many rows."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from r1studio.evals.models import EvalResult
from r1studio.runs.events import events_dispatch
from r1studio.runs.models import Run, RunStatus


def _metrics(run: Run, *points: tuple[int, str, float]) -> None:
    events = [
        {"type": "metrics", "step": step, "values": {name: value}} for step, name, value in points
    ]
    events_dispatch(run=run, events=events)


@pytest.fixture
def make_run(researcher) -> Any:
    def make(name: str, **fields: Any) -> Run:
        fields.setdefault("status", RunStatus.FINISHED)
        return Run.objects.create(name=name, owner=researcher, kind="grpo", **fields)

    return make


def _row(html: str, run: Run) -> str:
    start = html.index(f'<tr data-run="{run.pk}"')
    return html[start : html.index("</tr>", start)]


def test_it_searches_runs_by_name_and_filters_by_tag(researcher_client, make_run):
    zero = make_run("R1-Zero GRPO", tags=",baseline,")
    sft = make_run("Cold-start SFT", tags=",baseline,lr-sweep,")
    make_run("Evaluation")

    search = researcher_client.get(reverse("runs:list"), {"q": "zero"}).content.decode()
    tagged = researcher_client.get(reverse("runs:list"), {"tag": "lr-sweep"}).content.decode()
    nothing = researcher_client.get(reverse("runs:list"), {"q": "nope"}).content.decode()

    assert "R1-Zero GRPO" in search and "Cold-start SFT" not in search
    assert f'data-run="{sft.pk}"' in tagged and f'data-run="{zero.pk}"' not in tagged
    assert '<option value="lr-sweep" selected>' in tagged  # the tags in use, to filter by
    assert 'href="/runs/?tag=baseline"' in search  # a row's tags link to their filter
    assert "No runs match" in nothing and 'value="nope"' in nothing


def test_it_shows_the_latest_reward_and_pass_at_1(researcher_client, make_run):
    run = make_run("rl")
    _metrics(run, (1, "reward", 0.25), (2, "reward", 0.5))
    EvalResult.objects.create(run=run, step=1, benchmark="toy", pass_at_1=0.1)
    EvalResult.objects.create(run=run, step=2, benchmark="toy", pass_at_1=0.625)
    empty = make_run("no results yet")

    html = researcher_client.get(reverse("runs:list")).content.decode()

    assert '<td class="num" data-reward>0.500</td>' in _row(html, run)
    assert '<td class="num" data-pass-at-1>0.625</td>' in _row(html, run)
    assert '<td class="num" data-reward></td>' in _row(html, empty)


def test_it_lists_many_runs_in_as_many_queries_as_a_few(researcher_client, make_run):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert researcher_client.get(reverse("runs:list")).status_code == 200
        return len(captured)

    for i in range(2):
        run = make_run(f"a{i}", tags=",x,")
        _metrics(run, (1, "reward", 0.5), (1, "loss", 0.1))
    few = queries()
    for i in range(10):
        run = make_run(f"b{i}", status=RunStatus.RUNNING)
        _metrics(run, (1, "reward", 0.5), (1, "rewards/accuracy/mean", 0.4))
        EvalResult.objects.create(run=run, step=1, benchmark="toy", pass_at_1=0.5)

    assert queries() == few


def test_it_offers_to_compare_the_ticked_runs(researcher_client, make_run):
    first, second = make_run("one"), make_run("two")

    html = researcher_client.get(reverse("runs:list")).content.decode()
    response = researcher_client.get(reverse("runs:compare"), {"ids": [first.pk, second.pk]})
    none = researcher_client.get(reverse("runs:compare"))

    assert f'form="runs-compare" name="ids" value="{first.pk}"' in html
    assert f'id="compare-{first.pk}" hx-preserve' in html  # kept ticked while the table polls
    assert response.status_code == 302
    assert response.url == reverse("metrics:compare") + f"?runs={first.pk},{second.pk}"
    assert none.url == reverse("runs:list")
