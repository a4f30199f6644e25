"""Review: disagreeing items are found, shown side by side with diffs, and resolved."""

from __future__ import annotations

import pytest
from django.urls import reverse

from r1studio.curation.annotation.review import (
    item_needs_review,
    item_resolve,
    items_resolve_agreeing,
    review_page,
)
from r1studio.curation.annotation.services import AnnotationError
from tests.studio.curation.queue_helpers import label_item, make_queue, make_version

ROWS = [
    {"problem": f"What is {i}+{i}?", "think": f"{i} and {i} make {2 * i}.", "answer": str(2 * i)}
    for i in range(1, 7)
]


@pytest.fixture
def pair(make_user):
    return make_user("annotator", username="ann-a"), make_user("annotator", username="ann-b")


@pytest.fixture
def queue(researcher, pair, data_dir):
    return make_queue(
        researcher, annotators=list(pair), overlap=2, version=make_version(researcher, ROWS)
    )


@pytest.mark.django_db
def test_it_finds_items_whose_labels_disagree(queue, pair):
    a, b = pair
    items = list(queue.items.order_by("position"))
    label_item(items[0], a, verdict="accept", rating=4)
    label_item(items[0], b, verdict="accept", rating=5)  # agree
    label_item(items[1], a, verdict="accept", rating=4)
    label_item(items[1], b, verdict="reject", rating=4)  # verdicts differ
    label_item(items[2], a, verdict="accept", rating=5)
    label_item(items[2], b, verdict="accept", rating=3)  # ratings 2 apart
    label_item(items[3], a, verdict="accept", think="1 and 1 make 2, clearly.")
    label_item(items[3], b, verdict="accept")  # one edited, one not
    label_item(items[4], a, verdict="accept", think="edited one way")
    label_item(items[4], b, verdict="accept", think="edited another way")  # edits differ
    label_item(items[5], a, verdict="accept", think="the same edit")
    label_item(items[5], b, verdict="accept", think="the same edit")  # same edit: agree

    found, more = review_page(queue=queue)

    assert [(f["position"], f["reasons"]) for f in found] == [
        (2, ["verdict"]),
        (3, ["rating"]),
        (4, ["edit"]),
        (5, ["edit"]),
    ]
    assert more is None
    assert item_needs_review(items[0]) == []
    # Pages continue after a position.
    page, cursor = review_page(queue=queue, limit=2)
    assert [f["position"] for f in page] == [2, 3] and cursor == 3
    assert [f["position"] for f in review_page(queue=queue, after=cursor)[0]] == [4, 5]


@pytest.mark.django_db
def test_the_review_page_shows_the_labels_side_by_side_with_diffs(researcher_client, queue, pair):
    a, b = pair
    item = queue.items.get(position=1)
    label_item(item, a, verdict="accept", think="1 and 1 make 2. <script>alert(1)</script>")
    label_item(item, b, verdict="reject", note="wrong reasoning")

    listing = researcher_client.get(reverse("curation:review", args=[queue.pk])).content.decode()
    page = researcher_client.get(
        reverse("curation:review_item", args=[queue.pk, item.pk])
    ).content.decode()

    assert reverse("curation:review_item", args=[queue.pk, item.pk]) in listing
    assert "ann-a" in page and "ann-b" in page and "wrong reasoning" in page
    assert "<ins>" in page  # the edit, word by word against the original
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page


@pytest.mark.django_db
def test_a_researcher_picks_one_label_or_merges_them(researcher, researcher_client, queue, pair):
    a, b = pair
    item = queue.items.get(position=1)
    la = label_item(item, a, verdict="reject", rating=2, think="a's reasoning", tags=["verbose"])
    lb = label_item(item, b, verdict="accept", rating=5, answer="2, surely", note="fine")

    item_resolve(item=item, user=researcher, choices={"label": lb.pk})
    item.refresh_from_db()
    assert item.resolved["verdict"] == "accept" and item.resolved["answer"] == "2, surely"

    response = researcher_client.post(
        reverse("curation:review_item", args=[queue.pk, item.pk]),
        {"label": lb.pk, "think": la.pk, "rating": la.pk},
    )
    item.refresh_from_db()
    assert response.status_code == 302
    final = item.resolved
    assert (final["verdict"], final["rating"], final["think"], final["answer"]) == (
        "accept",
        2,
        "a's reasoning",
        "2, surely",
    )
    assert final["tags"] == ["verbose"] and final["note"] == "fine"
    assert final["annotators"] == sorted([a.pk, b.pk]) and final["guidelines"] == [1]
    assert final["checks"]["format_valid"] is True
    # A resolved item leaves the review list.
    assert review_page(queue=queue)[0] == []


@pytest.mark.django_db
def test_it_refuses_a_label_of_another_item(researcher, queue, pair):
    a, _ = pair
    first, second = queue.items.order_by("position")[:2]
    other = label_item(second, a, verdict="accept")
    with pytest.raises(AnnotationError):
        item_resolve(item=first, user=researcher, choices={"label": other.pk})


@pytest.mark.django_db
def test_agreeing_items_are_resolved_at_once(researcher, queue, pair):
    a, b = pair
    first, second, third = queue.items.order_by("position")[:3]
    for item in (first, second):
        label_item(item, a, verdict="accept", rating=4)
    label_item(first, b, verdict="accept", rating=5)
    label_item(second, b, verdict="reject", rating=4)
    label_item(third, a, verdict="accept")  # only one label of two

    assert items_resolve_agreeing(queue=queue, user=researcher) == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.resolved["verdict"] == "accept" and second.resolved is None


@pytest.mark.django_db
def test_the_last_page_carries_its_items(queue, pair):
    a, b = pair
    item = queue.items.get(position=6)
    label_item(item, a, verdict="accept")
    label_item(item, b, verdict="reject")

    [entry], more = review_page(queue=queue, limit=5)

    assert entry["item"] == item and more is None
