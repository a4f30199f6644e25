"""One definition of the trace filters, read the same way by the browser's form and the API."""

from __future__ import annotations

from typing import Any

import pytest

from r1studio.api.services import api_token_create
from r1studio.traces.filters import TraceFilters
from r1studio.traces.forms import TraceFilterForm
from tests.studio.traces.conftest import sample


def test_the_form_and_the_api_read_the_same_filters() -> None:
    query = {"step_min": "2", "correct": "no", "source": "probe", "q": " wait ", "reward_max": "x"}

    from_form = TraceFilterForm(query, runs=[]).filters()

    assert from_form == {"step_min": 2, "correct": False, "source": "probe", "q": "wait"}
    assert set(TraceFilters.model_fields) == {
        "step_min", "step_max", "reward_min", "reward_max", "correct", "source", "q"
    }  # fmt: skip


@pytest.mark.django_db
def test_the_api_filters_traces_by_source(client: Any, researcher: Any, make_run, add_samples):
    run = make_run(researcher)
    add_samples(run, 1, [sample(), {**sample(), "source": "probe"}])
    _, token = api_token_create(user=researcher, name="t")
    auth = {"Authorization": f"Bearer {token}"}

    probes = client.get(f"/api/runs/{run.pk}/traces?source=probe", headers=auth).json()
    train = client.get(f"/api/runs/{run.pk}/traces?source=train", headers=auth).json()

    assert [t["source"] for t in probes["items"]] == ["probe"]
    assert [t["source"] for t in train["items"]] == ["train"]
    assert client.get(f"/api/runs/{run.pk}/traces?source=x", headers=auth).status_code == 422
