"""Sign in through the real login form in Chromium and open every page."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "screenshot.png"
NAV = ["Runs", "Traces", "Datasets", "Annotate", "Benchmarks", "Workers"]


def sign_in(page: Any, base_url: str, username: str, password: str) -> None:
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button:has-text('Sign in')")


def test_it_signs_in_and_renders_every_nav_page(
    page: Any, live_server: Any, studio_admin: Any
) -> None:
    page.goto(f"{live_server.url}/runs/")
    assert "/accounts/login/" in page.url

    sign_in(page, live_server.url, studio_admin.username, "wrong-password")
    page.wait_for_selector(".alert-error")
    assert "Please enter a correct username and password" in page.inner_text(".alert-error")

    sign_in(page, live_server.url, studio_admin.username, TEST_PASSWORD)
    page.wait_for_url(f"{live_server.url}/runs/")  # back where the login began
    assert page.evaluate("typeof htmx") == "object"
    assert page.evaluate("typeof Plotly") == "undefined"  # only pages with charts load it

    for label in NAV:
        page.click(f"nav.nav >> text={label}")
        page.wait_for_selector(f"h1:has-text('{label}')")
        assert page.locator("nav.nav a.active").inner_text() == label
        assert page.locator(".empty-state").count() == 1

    page.click("text=Log out")
    page.wait_for_url(f"{live_server.url}/accounts/login/")


def test_it_shows_a_live_worker_and_takes_the_readme_screenshot(
    page: Any, live_server: Any, studio_admin: Any, celery_worker: Any, tmp_path: Path
) -> None:
    page.goto(f"{live_server.url}/")
    sign_in(page, live_server.url, studio_admin.username, TEST_PASSWORD)
    page.wait_for_selector("h1:has-text('Welcome')")
    assert "Connected" in page.inner_text(".tiles")
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("R1STUDIO_UPDATE_SCREENSHOT") or not SCREENSHOT.exists():
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

    page.click("nav.nav >> text=Workers")
    row = page.locator("table.table tbody tr", has_text=celery_worker.hostname)
    assert "online" in row.inner_text()
    # The table refreshes itself every 5 s through HTMX; a new row must appear without a reload.
    from r1studio.workers.models import WorkerHeartbeat

    WorkerHeartbeat.objects.create(hostname="celery@gpu-node-1", queues=["gpu"], cpu_count=32)
    page.wait_for_selector("text=celery@gpu-node-1", timeout=12_000)
    assert "2 of 2 online" in page.inner_text("#workers")
