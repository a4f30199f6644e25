"""The annotation view: leasing on GET, drafts, check on submit, conflicts, roles, escaping."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse

from pipeline.checks_text import r1_checks
from r1studio.curation.annotation.models import (
    AnnotationItem,
    AnnotationQueue,
    Label,
    LabelStatus,
    Lease,
)
from r1studio.curation.annotation.services import guideline_publish, label_save

JSON = {"HTTP_ACCEPT": "application/json"}
XSS = "<script>alert(1)</script>"


def item_data(i: int, **extra: Any) -> dict[str, Any]:
    data = {
        "problem": f"What is 2 + {i}?",
        "reference": str(2 + i),
        "think": f"2 and {i} make {2 + i}.\n\nSo the sum is {2 + i}.",
        "answer": str(2 + i),
    }
    data.update(extra)
    data["checks"] = r1_checks(
        think=data["think"], answer=data["answer"], reference=data["reference"]
    )
    return data


@pytest.fixture
def queue(researcher: Any, annotator: Any) -> AnnotationQueue:
    queue = AnnotationQueue.objects.create(
        name="cold start", created_by=researcher, questions={"tags": ["readable", "too long"]}
    )
    queue.annotators.set([annotator])
    AnnotationItem.objects.bulk_create(
        AnnotationItem(queue=queue, position=i, data=item_data(i)) for i in range(3)
    )
    return queue


def label_url(queue: AnnotationQueue) -> str:
    return reverse("curation:label", args=[queue.pk])


def open_item(client: Any, queue: AnnotationQueue) -> tuple[Any, Label]:
    response = client.get(label_url(queue))
    assert response.status_code == 200
    return response, response.context["label"]


def post(client: Any, name: str, queue: AnnotationQueue, label: Label, **data: Any) -> Any:
    url = reverse(f"curation:{name}", args=[queue.pk, label.pk])
    return client.post(url, data, **JSON)


def test_it_leases_the_first_item_on_get_and_shows_it(annotator_client, annotator, queue):
    response, label = open_item(annotator_client, queue)
    page = response.content.decode()
    assert Lease.objects.filter(annotator=annotator, item=label.item).count() == 1
    assert label.item.position == 0 and label.status == LabelStatus.DRAFT
    assert "What is 2 + 0?" in page and "So the sum is 2." in page
    assert "format valid" in page and "correct" in page  # the stored R1 checks and verifier
    assert "queue <strong data-progress-done>0</strong> / 3 done" in page
    island = page.split('id="annotate-data" type="application/json">')[1].split("</script>")[0]
    assert json.loads(island)["original"]["think"].startswith("2 and 0 make 2.")
    # A reload gives back the same item, not a second lease.
    _, again = open_item(annotator_client, queue)
    assert again.pk == label.pk and Lease.objects.filter(annotator=annotator).count() == 1


def test_a_draft_saved_as_they_type_comes_back_on_reload(annotator_client, queue):
    _, label = open_item(annotator_client, queue)
    response = post(
        annotator_client,
        "label_draft",
        queue,
        label,
        version=label.version,
        verdict="accept",
        rating="4",
        think="2 and 0 make 2.\r\n\r\nChecked twice.",
        answer="2",
        tags_sent="1",
        tags=["readable", "not a tag of this queue"],
        note="tidy",
        seconds="12.5",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] and body["version"] == label.version + 1 and body["edited"]

    page, reloaded = open_item(annotator_client, queue)
    assert reloaded.pk == label.pk and reloaded.version == body["version"]
    assert reloaded.think == "2 and 0 make 2.\n\nChecked twice."  # CRLF from the browser
    assert (reloaded.verdict, reloaded.rating, reloaded.tags) == ("accept", 4, ["readable"])
    assert reloaded.note == "tidy" and reloaded.seconds == 12.5
    html = page.content.decode()
    assert "Checked twice." in html and 'value="accept" checked' in html
    assert f'name="version" value="{body["version"]}"' in html


def test_time_spent_adds_up_over_saves(annotator_client, queue):
    _, label = open_item(annotator_client, queue)
    first = post(annotator_client, "label_draft", queue, label, version=1, note="a", seconds="10")
    post(
        annotator_client,
        "label_draft",
        queue,
        label,
        version=first.json()["version"],
        note="ab",
        seconds="99999",  # a clock gone wrong counts an hour at most
    )
    label.refresh_from_db()
    assert label.seconds == 10 + 3600


def test_submit_checks_the_text_and_moves_on(annotator_client, annotator, queue):
    _, label = open_item(annotator_client, queue)
    response = post(
        annotator_client, "label_submit", queue, label, version=label.version, verdict="accept"
    )
    body = response.json()
    assert response.status_code == 200 and body["submitted"] and not body["flagged"]
    assert body["next"] == label_url(queue)
    assert {row["name"]: row["value"] for row in body["checks"]}["verifier"] == "correct"
    label.refresh_from_db()
    assert label.status == LabelStatus.SUBMITTED and label.checks["verifier"] == 1.0
    assert label.checks["format_valid"] is True and not label.flagged
    page, following = open_item(annotator_client, queue)
    assert following.item.position == 1
    assert "mine <strong data-progress-mine>1</strong>" in page.content.decode()


def test_an_edit_that_breaks_the_answer_is_flagged_and_confirmed_on_a_second_submit(
    annotator_client, queue
):
    _, label = open_item(annotator_client, queue)
    broken = {"think": "2 and 0 make 3.", "answer": "3", "verdict": "accept"}
    first = post(annotator_client, "label_submit", queue, label, version=label.version, **broken)
    body = first.json()
    assert first.status_code == 200
    assert not body["submitted"] and body["flagged"]
    assert body["broken"] == ["the answer no longer matches the reference (verifier)"]
    label.refresh_from_db()
    assert label.status == LabelStatus.DRAFT and label.flagged  # stored, with its checks
    assert label.checks["verifier"] == 0.0 and label.checks["broken"] == ["verifier"]
    # The page shows the warning after a reload too.
    page = annotator_client.get(label_url(queue)).content.decode()
    assert "<span data-broken>the answer no longer matches the reference" in page

    second = post(
        annotator_client,
        "label_submit",
        queue,
        label,
        version=body["version"],
        confirm="1",
        **broken,
    )
    assert second.json()["submitted"] and second.json()["flagged"]
    label.refresh_from_db()
    assert label.status == LabelStatus.SUBMITTED and label.flagged and label.edited
    assert label.item.labels.get().answer == "3"


def test_an_edit_that_breaks_the_format_is_flagged(annotator_client, queue):
    _, label = open_item(annotator_client, queue)
    response = post(
        annotator_client,
        "label_submit",
        queue,
        label,
        version=label.version,
        verdict="reject",
        think="2 and 0 make 2.</think> stray",
    )
    assert response.json()["broken"] == ["the <think>/<answer> format"]


def test_submit_needs_a_verdict(annotator_client, queue):
    _, label = open_item(annotator_client, queue)
    response = post(annotator_client, "label_submit", queue, label, version=label.version)
    assert response.status_code == 400 and "verdict" in response.json()["errors"]
    label.refresh_from_db()
    assert label.status == LabelStatus.DRAFT


def test_a_stale_version_answers_409_with_both_and_overwrites_nothing(
    annotator_client, annotator, queue
):
    _, label = open_item(annotator_client, queue)
    # Another tab saved in between.
    label_save(label=label, user=annotator, values={"note": "from the other tab"}, version=1)
    response = post(annotator_client, "label_draft", queue, label, version=1, note="from here")
    assert response.status_code == 409
    body = response.json()
    assert body["current"]["note"] == "from the other tab" and body["current"]["version"] == 2
    assert body["sent"] == {"note": "from here", "version": 1}
    label.refresh_from_db()
    assert label.note == "from the other tab" and label.version == 2

    plain = annotator_client.post(
        reverse("curation:label_submit", args=[queue.pk, label.pk]),
        {"version": 1, "verdict": "accept", "note": "from here"},
    )
    assert plain.status_code == 409
    html = plain.content.decode()
    assert "from the other tab" in html and "from here" in html
    label.refresh_from_db()
    assert label.status == LabelStatus.DRAFT and label.note == "from the other tab"


def test_a_retried_save_whose_answer_was_lost_is_not_a_conflict(annotator_client, queue):
    _, label = open_item(annotator_client, queue)
    sent = {"version": label.version, "note": "same", "seconds": "5"}
    assert post(annotator_client, "label_draft", queue, label, **sent).status_code == 200
    retry = post(annotator_client, "label_draft", queue, label, **sent)
    assert retry.status_code == 200 and retry.json()["version"] == label.version + 1
    label.refresh_from_db()
    assert label.seconds == 5  # counted once


def test_an_annotator_not_assigned_to_the_queue_gets_404(client, make_user, queue, annotator):
    stranger = make_user("annotator")
    _, label = open_item(_signed_in(client, annotator), queue)
    client.force_login(stranger)
    assert client.get(label_url(queue)).status_code == 404
    for name in ("label_draft", "label_submit", "label_skip"):
        response = post(client, name, queue, label, version=label.version, note="x")
        assert response.status_code == 404, name
    assert not Lease.objects.filter(annotator=stranger).exists()
    label.refresh_from_db()
    assert label.note == "" and label.status == LabelStatus.DRAFT


def test_another_annotators_label_is_404_even_in_a_shared_queue(
    client, make_user, queue, annotator
):
    colleague = make_user("annotator")
    queue.annotators.add(colleague)
    _, label = open_item(_signed_in(client, annotator), queue)
    client.force_login(colleague)
    response = post(client, "label_draft", queue, label, version=label.version, note="x")
    assert response.status_code == 404


def test_skip_gives_the_item_back_and_serves_the_next(annotator_client, annotator, queue):
    _, label = open_item(annotator_client, queue)
    response = post(annotator_client, "label_skip", queue, label)
    assert response.json()["next"] == label_url(queue)
    label.refresh_from_db()
    assert label.status == LabelStatus.SKIPPED
    assert not Lease.objects.filter(annotator=annotator, item=label.item).exists()
    _, following = open_item(annotator_client, queue)
    assert following.item.position == 1


def test_it_says_so_when_nothing_is_left(annotator_client, annotator, queue):
    for _ in range(3):
        _, label = open_item(annotator_client, queue)
        post(
            annotator_client, "label_submit", queue, label, version=label.version, verdict="reject"
        )
    response = annotator_client.get(label_url(queue))
    page = response.content.decode()
    assert response.status_code == 200 and response.context["item"] is None
    assert "Nothing left for you here" in page and "You labelled 3 items" in page


def test_a_script_in_a_trace_is_escaped(annotator_client, researcher, queue):
    AnnotationItem.objects.filter(queue=queue).delete()
    AnnotationItem.objects.create(
        queue=queue,
        position=0,
        data=item_data(0, problem=f"Add. {XSS}", think=f"Hmm {XSS}", answer=f"{XSS} 2"),
        group_key="g",
    )
    AnnotationItem.objects.create(
        queue=queue,
        position=1,
        group_key="g",
        data=item_data(1, completion=f"<think>{XSS}</think><answer>3</answer>", reward=1.0),
    )
    guideline_publish(
        queue=queue,
        user=researcher,
        text=f"**Accept** readable traces. {XSS} [a link](javascript:alert(1))",
    )
    page = annotator_client.get(label_url(queue)).content.decode()
    assert XSS not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<strong>Accept</strong>" in page  # the guidelines' Markdown, raw HTML escaped
    assert 'href="javascript' not in page
    # Only the page's own scripts: the data island and annotate.js.
    assert page.count("<script") == 3  # htmx, the JSON island, annotate.js
    assert "\\u003Cscript\\u003E" in page  # json_script escapes the originals


def test_group_items_show_the_other_completions_with_rewards(annotator_client, queue):
    AnnotationItem.objects.filter(queue=queue).update(group_key="p1")
    AnnotationItem.objects.filter(queue=queue, position=2).update(
        data=item_data(2, reward=0.75, advantage=-0.5, rewards={"accuracy": 1.0})
    )
    response = annotator_client.get(label_url(queue))
    page = response.content.decode()
    assert len(response.context["group"]) == 2
    assert "The other completions of this prompt" in page
    assert "0.75" in page and "-0.5" in page and "accuracy" in page


def _signed_in(client: Any, user: Any) -> Any:
    client.force_login(user)
    return client
