"""The core loop in Chromium: launch the toy GRPO preset from the form, watch it run and its
reward chart grow without a reload, open a trace, cancel a second run and see its process gone.

Everything is real: uvicorn serving the ASGI app (for the SSE stream), the Celery worker
consuming from Redis, and the pipeline subprocess training the toy model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from r1studio.runs.models import Run, RunStatus
from r1studio.runs.supervisor import process_group_alive
from tests.conftest import TEST_PASSWORD, wait_for
from tests.studio.metrics.conftest import asgi_server  # noqa: F401 - fixture
from tests.studio.runs.conftest import toy_config  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def sign_in(page: Any, url: str, user: Any) -> None:
    page.goto(url)
    page.fill("#id_username", user.username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(url)


def launch_toy_grpo(page: Any, base: str, *, name: str, max_steps: int) -> Run:
    page.goto(f"{base}/runs/new?preset=toy-grpo")
    page.fill("#run-name", name)
    page.fill("[name='trainer.max_steps']", str(max_steps))
    page.fill("[name='eval.benchmark']", "")  # no periodic eval: a shorter run
    page.click("button[name='action'][value='launch']")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    return Run.objects.get(name=name)


def test_it_launches_watches_and_cancels_runs_from_the_browser(
    page: Any,
    asgi_server: str,  # noqa: F811
    celery_worker: Any,
    researcher: Any,
    data_dir: Path,
    toy_dir: Path,  # noqa: F811
) -> None:
    (data_dir / "toy").symlink_to(toy_dir, target_is_directory=True)
    page.on("dialog", lambda dialog: dialog.accept())  # the cancel confirmation
    sign_in(page, f"{asgi_server}/runs/", researcher)
    page.locator(".empty-state").filter(has_text="No runs yet").wait_for()

    # 1. Launch the toy GRPO preset from the form.
    run = launch_toy_grpo(page, asgi_server, name="browser grpo", max_steps=20)
    page.evaluate("window.__notReloaded = true")
    page.locator("[data-run-status]").filter(has_text="running").wait_for(timeout=120_000)

    # 2. The reward chart gains points without a reload.
    count = page.locator("[data-panel='reward'] [data-count]")
    count.filter(has_text=re.compile(r"\b([2-9]|1\d|20) of \d+ points")).wait_for(timeout=120_000)
    assert page.evaluate("window.__notReloaded") is True
    page.locator("[data-run-status]").filter(has_text="finished").wait_for(timeout=180_000)
    assert page.evaluate("window.__notReloaded") is True
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED and run.step == 20

    # 3. Open one of its traces.
    page.click("[data-traces-link]")
    page.wait_for_url(re.compile(rf"/traces/\?run={run.pk}$"))
    page.locator("main a[href^='/traces/']").filter(has_text=re.compile(r"^#\d+$")).first.click()
    page.wait_for_selector("h1:has-text('Trace #')")
    assert page.locator("main").inner_text().count("browser grpo") >= 1

    # 4. A second run, cancelled while it trains.
    second = launch_toy_grpo(page, asgi_server, name="browser cancel", max_steps=500)
    page.locator("[data-run-status]").filter(has_text="running").wait_for(timeout=120_000)
    wait_for(
        lambda: Run.objects.filter(pk=second.pk, step__gte=1, pid__isnull=False).exists(),
        timeout=120,
    )
    second.refresh_from_db()
    pid = second.pid
    assert process_group_alive(pid)
    page.click("button[data-action='cancel']")
    page.locator("[data-run-status]").filter(has_text="cancelled").wait_for(timeout=60_000)
    second.refresh_from_db()
    assert second.status == RunStatus.CANCELLED and second.step < 500
    assert not process_group_alive(pid)

    page.goto(f"{asgi_server}/runs/")
    assert page.locator("tr[data-status='cancelled']").count() == 1
    assert page.locator("tr[data-status='finished']").count() == 1
