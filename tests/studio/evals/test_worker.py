"""An evaluate run through the real worker: its result carries the R1 protocol's figures."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from r1studio.evals.models import EvalResult
from r1studio.runs.models import RunStatus
from r1studio.runs.services import run_create, run_launch
from tests.conftest import wait_for


@pytest.mark.django_db(transaction=True)
def test_an_evaluate_run_stores_se_decoding_and_every_problem(
    celery_worker: Any, researcher: Any, researcher_client: Any, data_dir: Any, toy_config: Any
) -> None:
    config = toy_config("evaluate", limit=6, sampling={"k": 3})
    run = run_launch(run=run_create(user=researcher, name="eval", config=config), user=researcher)

    def ended() -> Any:
        run.refresh_from_db()
        return run if run.is_ended else None

    wait_for(ended, timeout=180)

    assert run.status == RunStatus.FINISHED, (run.error, run.traceback)
    result = EvalResult.objects.get(run=run)
    assert result.n_samples == 3 and result.k == 3 and result.n_problems == 6
    assert result.decoding == {
        "temperature": 0.6,
        "top_p": 0.95,
        "n_samples": 3,
        "max_new_tokens": 32,
    }
    assert result.pass_at_1_se is not None and result.pass_at_1_se >= 0
    assert result.pass_at_1_ci_low <= result.pass_at_1 <= result.pass_at_1_ci_high
    assert len(result.problems) == 6 and {p["n"] for p in result.problems} == {3}
    assert sum(p["n_correct"] for p in result.problems) / 18 == pytest.approx(result.pass_at_1)
    html = researcher_client.get(reverse("evals:result", args=[result.pk])).content.decode()
    assert "data-problem-table" in html and "data-decoding" in html
    assert 'data-precision-warning="few_samples"' in html  # 6 problems × 3 samples
