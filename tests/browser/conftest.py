"""Playwright driving the machine's Chromium against pytest-django's live server.

`live_server` is Django's threaded WSGI test server (not uvicorn); it serves static files
through Django's StaticFilesHandler, so the vendored scripts load as they do in production.
Browser tests skip, saying why, when Chromium is not installed; under CI=true they fail instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("R1STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


@pytest.fixture
def page(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh Chromium page (1280×800); JavaScript errors on any page fail the test."""
    executable = chromium_path()
    if executable is None:
        # CI installs Chromium: missing there, the suite must fail rather than pass without it.
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(
            f"Chromium not found at {CHROMIUM} (install it with `apt-get install chromium` "
            "or set R1STUDIO_CHROMIUM); browser tests need it"
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop on this thread; Django's ORM refuses to run
    # in a thread with a running loop unless told it is safe, which it is here (no async code).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        context.close()
        browser.close()
        # ORM calls made while Playwright's loop ran got connections of their own (Django keeps
        # connections per async context); close them here, or DROP DATABASE finds them open.
        from django.db import connections

        connections.close_all()
    assert errors == [], f"JavaScript errors: {errors}"
