"""The annotation view in Chromium: a queue worked with the keyboard only, an edit with its
diff and check result, and model text that stays inert."""

from __future__ import annotations

from typing import Any

import pytest

from r1studio.curation.annotation.models import (
    AnnotationItem,
    AnnotationQueue,
    Label,
    LabelStatus,
)
from tests.conftest import TEST_PASSWORD
from tests.studio.curation.test_label_views import item_data

pytestmark = pytest.mark.browser


def sign_in(page: Any, url: str, user: Any) -> None:
    """Open `url`, sign in on the login page it redirects to, and land back on `url`."""
    page.goto(url)
    page.fill("#id_username", user.username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(url)


def make_queue(researcher: Any, annotator: Any, items: list[dict[str, Any]]) -> AnnotationQueue:
    queue = AnnotationQueue.objects.create(name="cold start", created_by=researcher)
    queue.annotators.set([annotator])
    for position, data in enumerate(items):
        AnnotationItem.objects.create(queue=queue, position=position, data=data)
    return queue


def test_an_annotator_labels_five_items_with_the_keyboard_only(
    page: Any, live_server: Any, researcher: Any, annotator: Any
) -> None:
    queue = make_queue(researcher, annotator, [item_data(i) for i in range(5)])
    url = f"{live_server.url}/annotate/queues/{queue.pk}/"
    sign_in(page, url, annotator)

    verdicts = ["a", "r", "a", "a", "r"]
    for i, key in enumerate(verdicts):
        page.locator(".item-problem").filter(has_text=f"What is 2 + {i}?").wait_for()
        page.locator("[data-progress-mine]").filter(has_text=str(i)).wait_for()
        page.keyboard.press(key)
        page.keyboard.press(str(i + 1))
        page.keyboard.press("Control+Enter")

    page.locator(".empty-state").filter(has_text="Nothing left for you here").wait_for()
    assert page.locator("[data-progress-mine]").inner_text() == "5"
    labels = Label.objects.filter(item__queue=queue, annotator=annotator).order_by("item__position")
    assert [(lb.status, lb.verdict, lb.rating) for lb in labels] == [
        (LabelStatus.SUBMITTED, "accept" if key == "a" else "reject", i + 1)
        for i, key in enumerate(verdicts)
    ]
    assert all(lb.checks["verifier"] == 1.0 and not lb.flagged for lb in labels)


def test_an_edit_shows_its_diff_survives_a_reload_and_is_checked_on_submit(
    page: Any, live_server: Any, researcher: Any, annotator: Any
) -> None:
    queue = make_queue(researcher, annotator, [item_data(0), item_data(1)])
    url = f"{live_server.url}/annotate/queues/{queue.pk}/"
    sign_in(page, url, annotator)
    think = page.locator("[data-part='think']")

    page.keyboard.press("?")
    assert page.locator("[data-help]").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("[data-help]").is_visible()

    page.keyboard.press("e")
    textarea = think.locator("textarea")
    assert textarea.evaluate("el => el === document.activeElement")
    assert textarea.input_value().startswith("2 and 0 make 2.")  # the "e" was not typed
    page.keyboard.press("Control+End")
    page.keyboard.type(" Wait, it makes 3.")  # a, r, s and digits typed here stay text
    think.locator(".diff ins").filter(has_text="Wait, it makes 3.").wait_for()
    assert think.locator("[data-diff-stats]").inner_text() == "+4 −0 words"
    page.keyboard.press("Tab")  # on to the answer
    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    page.locator("[data-part='answer'] .diff del").filter(has_text="2").wait_for()
    page.locator("[data-save-state][data-state='saved']").wait_for()
    label = Label.objects.get(item__queue=queue, annotator=annotator)
    assert label.think.endswith("Wait, it makes 3.") and label.answer == "3" and label.edited
    assert label.seconds > 0

    page.reload()  # the draft comes back, with its diff
    think.locator(".diff ins").filter(has_text="Wait, it makes 3.").wait_for()
    page.keyboard.press("e")
    page.keyboard.press("Escape")  # leaves the edit: the reading view shows the new text
    assert think.locator("[data-read]").inner_text().endswith("Wait, it makes 3.")
    page.keyboard.press("a")
    page.keyboard.press("Control+Enter")
    flag = page.locator("[data-flag]")
    flag.filter(has_text="no longer matches the reference").wait_for()
    saved = page.locator("[data-saved-checks]")
    assert saved.locator("tr.check-bad").filter(has_text="wrong").count() == 1
    label.refresh_from_db()
    assert label.status == LabelStatus.DRAFT and label.flagged

    page.keyboard.press("Control+Enter")  # submit it anyway: the flag is stored
    page.locator(".item-problem").filter(has_text="What is 2 + 1?").wait_for()
    label.refresh_from_db()
    assert label.status == LabelStatus.SUBMITTED and label.flagged
    assert label.checks["verifier"] == 0.0


def test_a_trace_containing_a_script_stays_inert(
    page: Any, live_server: Any, researcher: Any, annotator: Any
) -> None:
    script = "<script>window.__xss = 1; alert(1)</script>"
    img = '<img src="x" onerror="window.__xss = 2; alert(2)">'
    data = item_data(0, problem=f"Add. {script}", think=f"Hmm {script}\n\n{img}", answer=img)
    queue = make_queue(researcher, annotator, [data])
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    url = f"{live_server.url}/annotate/queues/{queue.pk}/"
    sign_in(page, url, annotator)

    read = page.locator("[data-part='think'] [data-read] p")
    assert read.all_inner_texts() == [f"Hmm {script}", img]
    assert page.locator("[data-part='answer'] [data-read]").inner_text() == img
    page.keyboard.press("e")
    page.keyboard.press("Control+End")
    page.keyboard.type(f" {script}")  # the diff and the reading view build text nodes only
    page.locator("[data-part='think'] .diff ins").filter(has_text="window.__xss").wait_for()
    page.keyboard.press("Escape")
    page.locator("[data-save-state][data-state='saved']").wait_for()

    assert page.locator("main script").count() == 1  # the page's JSON data island
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.__xss") is None
    assert dialogs == []
