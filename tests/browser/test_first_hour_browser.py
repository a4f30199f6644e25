"""The runs pages as a new user meets them, in Chromium (1280×800): a refused launch shows its
errors in view, Check says a valid config is valid and keeps the YAML tab, a preset brings the
form into view with its name, ticked runs open together in Compare, and a real short run fills
the logs panel while the "Launched" banner goes once the run moves on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from r1studio.runs.models import Run, RunStatus
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser

HEIGHT = 800


def sign_in(page: Any, url: str, user: Any) -> None:
    page.goto(url)
    page.fill("#id_username", user.username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(url)


def in_view(page: Any, selector: str) -> bool:
    top, bottom = page.evaluate(
        "s => { const r = document.querySelector(s).getBoundingClientRect(); return [r.top, r.bottom]; }",
        selector,
    )
    return top >= 0 and bottom <= HEIGHT


@pytest.fixture
def toy_in_data_dir(data_dir: Path, toy_dir: Path) -> Path:
    (data_dir / "toy").symlink_to(toy_dir, target_is_directory=True)
    return data_dir / "toy"


def test_it_shows_a_refused_launchs_errors_in_view_linked_to_their_fields(
    page: Any, live_server: Any, researcher: Any, toy_in_data_dir: Path
) -> None:
    sign_in(page, f"{live_server.url}/runs/new?preset=toy-grpo", researcher)
    page.fill("[name='trainer.num_generations']", "5")  # 32 completions do not split into 5s
    page.click("button[name='action'][value='launch']")

    page.wait_for_selector("[data-form-notice='errors']")
    assert in_view(page, "#form-notice")
    assert page.evaluate("document.activeElement.id") == "form-notice"
    assert "Nothing was queued" in page.inner_text("#form-notice")
    page.click("#form-notice a[href='#cfg-trainer-num_generations']")
    assert page.evaluate("document.activeElement.name") == "trainer.num_generations"
    assert in_view(page, "#cfg-trainer-num_generations")
    assert Run.objects.count() == 0


def test_it_says_check_is_valid_and_keeps_the_yaml_tab_after_a_failed_check(
    page: Any, live_server: Any, researcher: Any, toy_in_data_dir: Path
) -> None:
    sign_in(page, f"{live_server.url}/runs/new?preset=toy-sft", researcher)
    page.click("[data-tab='yaml']")
    page.click("button[name='action'][value='check']")

    page.wait_for_selector("[data-form-notice='valid']")
    assert page.is_visible("text=Config is valid.") and in_view(page, "#form-notice")
    assert page.is_visible("[data-panel='yaml']")  # still on the tab the check came from

    yaml = page.input_value("#config-yaml").replace("max_steps:", "max_steps: oops #")
    page.fill("#config-yaml", yaml)
    page.click("button[name='action'][value='check']")

    page.wait_for_selector("[data-form-notice='errors']")
    assert in_view(page, "#form-notice")
    assert page.is_visible("[data-panel='yaml']") and not page.is_visible("[data-panel='form']")
    assert "oops" in page.input_value("#config-yaml")


def test_it_brings_the_form_a_preset_filled_into_view_with_the_presets_name(
    page: Any, live_server: Any, researcher: Any, toy_in_data_dir: Path
) -> None:
    sign_in(page, f"{live_server.url}/runs/new", researcher)
    page.click("[data-preset='toy-sft']")

    page.wait_for_selector("[data-form-notice='preset']")
    assert in_view(page, "#form-notice")
    assert page.inner_text("[data-preset-name]") == "Toy SFT"
    assert page.input_value("#run-name") == "Toy SFT"
    assert not page.is_visible("[data-preset='toy-grpo']")  # the other presets folded away


def test_it_opens_the_runs_ticked_in_the_list_in_compare(
    page: Any, live_server: Any, researcher: Any
) -> None:
    def make(name: str, status: str) -> Run:
        return Run.objects.create(name=name, owner=researcher, kind="grpo", status=status)

    first, second = make("first", RunStatus.FINISHED), make("second", RunStatus.FINISHED)
    make("busy", RunStatus.RUNNING)  # keeps the table polling
    sign_in(page, f"{live_server.url}/runs/", researcher)

    page.check(f"#compare-{first.pk}")
    page.check(f"#compare-{second.pk}")
    with page.expect_response(re.compile(r"/runs/$")):  # one HTMX refresh of the table
        pass
    page.wait_for_timeout(300)
    assert page.is_checked(f"#compare-{first.pk}") and page.is_checked(f"#compare-{second.pk}")
    assert page.inner_text("[data-compare-count]") == "2 selected"
    page.click("[data-compare-bar] button")

    page.wait_for_url(re.compile(rf"/metrics/compare\?runs={second.pk},{first.pk}$"))
    checked = page.eval_on_selector_all(
        "[data-run-choice]:checked", "els => els.map(e => Number(e.value))"
    )
    assert sorted(checked) == sorted([first.pk, second.pk])


@pytest.mark.slow
def test_a_real_short_run_fills_the_logs_and_drops_the_launched_banner(
    page: Any, live_server: Any, celery_worker: Any, researcher: Any, toy_in_data_dir: Path
) -> None:
    sign_in(page, f"{live_server.url}/runs/new?preset=toy-sft", researcher)
    page.fill("[name='trainer.max_steps']", "6")
    page.fill("[name='trainer.logging_steps']", "1")
    page.click("button[name='action'][value='launch']")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run = Run.objects.get()
    assert page.is_visible(f"text=Launched run #{run.pk}.")

    page.locator("[data-run-status]").filter(has_text="finished").wait_for(timeout=180_000)
    stdout = page.locator("pre[data-log='stdout']")
    stdout.filter(has_text="finished").wait_for(timeout=15_000)
    assert "running (6 steps)" in stdout.inner_text() and "step 6: " in stdout.inner_text()
    assert page.locator("ul.messages").count() == 0  # no "Launched" beside a finished run
    assert Run.objects.get().config["trainer"]["logging_steps"] == 1
