"""Agreement and gold accuracy on the queue dashboard, against figures computed by hand."""

from __future__ import annotations

import pytest
from django.urls import reverse

from r1studio.curation.annotation.agreement import (
    alpha_interval,
    alpha_nominal,
    kappa_pairs,
    queue_agreement,
    queue_dashboard,
)
from r1studio.curation.annotation.services import guideline_publish
from tests.studio.curation.queue_helpers import label_item, make_queue, make_version

# Two annotators, four items (the hand-computed case below).
VERDICTS = {
    "A": ["accept", "accept", "reject", "reject"],
    "B": ["accept", "reject", "reject", "reject"],
}
RATINGS = {"A": [1, 2, 4, 5], "B": [2, 2, 4, 3]}


def triples(values: dict[str, list]) -> list[tuple]:
    return [(coder, item, v) for coder, vs in values.items() for item, v in enumerate(vs)]


def test_verdict_alpha_and_kappa_match_the_hand_computed_figures():
    # Cohen: observed 3/4; A says accept 2/4, B 1/4, so chance = 2/4*1/4 + 2/4*3/4 = 1/2 and
    # kappa = (3/4 - 1/2) / (1 - 1/2) = 1/2.
    # Krippendorff (nominal): 8 values, 3 accept and 5 reject; one disagreeing item gives an
    # observed disagreement of 2/8, the expected one is 2*3*5/(8*7) = 30/56, so
    # alpha = 1 - (2/8) / (30/56) = 8/15.
    assert alpha_nominal(triples(VERDICTS)) == pytest.approx(8 / 15)
    [pair] = kappa_pairs(triples(VERDICTS))
    assert (pair["a"], pair["b"], pair["items"]) == ("A", "B", 4)
    assert pair["kappa"] == pytest.approx(0.5) and pair["observed"] == pytest.approx(0.75)


def test_rating_alpha_uses_the_interval_distance():
    # Values 1,2 | 2,2 | 4,4 | 5,3: observed disagreement (1+1 + 4+4) / 8 = 10/8; expected: the
    # squared differences of all 8*7 ordered pairs of values, 2*8*SS = 16*12.875 = 206, over 56.
    # alpha = 1 - (10/8) / (206/56) = 68/103.
    assert alpha_interval(triples(RATINGS)) == pytest.approx(68 / 103)


def test_items_labelled_once_do_not_count_and_kappa_needs_shared_items():
    data = triples(VERDICTS) + [("C", 99, "accept")]  # C labelled an item nobody else did
    assert alpha_nominal(data) == pytest.approx(8 / 15)
    assert [(p["a"], p["b"]) for p in kappa_pairs(data)] == [("A", "B")]
    assert alpha_nominal([("A", 1, "accept")]) is None


@pytest.mark.django_db
def test_the_dashboard_computes_agreement_per_guideline_version(researcher, make_user, data_dir):
    a, b = make_user("annotator", username="ann-a"), make_user("annotator", username="ann-b")
    rows = [{"problem": f"p{i}", "think": "t", "answer": "1", "reference": "1"} for i in range(6)]
    queue = make_queue(
        researcher, annotators=[a, b], overlap=2, version=make_version(researcher, rows)
    )
    items = list(queue.items.order_by("position"))
    for item, (va, vb, ra, rb) in zip(
        items[:4],
        zip(VERDICTS["A"], VERDICTS["B"], RATINGS["A"], RATINGS["B"], strict=True),
        strict=True,
    ):
        label_item(item, a, verdict=va, rating=ra)
        label_item(item, b, verdict=vb, rating=rb)
    guideline_publish(queue=queue, user=researcher, text="v2")
    for item in items[4:]:  # under version 2: full agreement
        label_item(item, a, verdict="accept", rating=5)
        label_item(item, b, verdict="accept", rating=5)

    by_version = {g["guideline"]: g for g in queue_agreement(queue=queue)}

    assert by_version[1]["items"] == 4 and by_version[1]["labels"] == 8
    assert by_version[1]["verdict_alpha"] == pytest.approx(8 / 15)
    assert by_version[1]["rating_alpha"] == pytest.approx(68 / 103)
    assert by_version[1]["pairs"][0]["kappa"] == pytest.approx(0.5)
    assert {by_version[1]["pairs"][0]["a"], by_version[1]["pairs"][0]["b"]} == {"ann-a", "ann-b"}
    assert by_version[2]["items"] == 2 and by_version[2]["verdict_alpha"] == 1


@pytest.mark.django_db
def test_gold_accuracy_and_throughput_per_annotator(researcher, make_user, data_dir):
    a, b = make_user("annotator"), make_user("annotator")
    rows = [{"problem": f"p{i}", "think": "t", "answer": "1"} for i in range(4)]
    queue = make_queue(
        researcher,
        annotators=[a, b],
        overlap=2,
        version=make_version(researcher, rows),
        gold={1: "accept", 2: "reject"},
    )
    one, two, three, _ = queue.items.order_by("position")
    label_item(one, a, verdict="accept", seconds=30)
    label_item(two, a, verdict="accept", seconds=10)  # wrong on gold
    label_item(three, a, verdict="reject", seconds=20)
    label_item(one, b, verdict="accept", seconds=60)
    label_item(two, b, verdict="reject", seconds=60)

    dashboard = queue_dashboard(queue=queue)
    stats = {s["annotator_id"]: s for s in dashboard["annotators"]}

    assert (stats[a.pk]["gold"], stats[a.pk]["gold_right"], stats[a.pk]["gold_accuracy"]) == (
        2,
        1,
        0.5,
    )
    assert stats[b.pk]["gold_accuracy"] == 1.0
    assert dashboard["gold_accuracy"] == pytest.approx(3 / 4)
    assert stats[a.pk]["submitted"] == 3 and stats[a.pk]["mean_seconds"] == pytest.approx(20)
    assert stats[a.pk]["per_hour"] == pytest.approx(3 * 3600 / 60)
    progress = dashboard["progress"]
    assert (progress["total"], progress["done"], progress["started"]) == (4, 2, 3)
    assert (progress["submitted"], progress["labels_wanted"], progress["gold"]) == (5, 8, 2)


@pytest.mark.django_db
def test_the_dashboard_page_shows_the_figures(researcher_client, researcher, make_user, data_dir):
    a, b = make_user("annotator", username="ann-a"), make_user("annotator", username="ann-b")
    rows = [{"problem": f"p{i}", "think": "t", "answer": "1"} for i in range(4)]
    queue = make_queue(
        researcher, annotators=[a, b], overlap=2, version=make_version(researcher, rows)
    )
    for item, va, vb in zip(
        queue.items.order_by("position"), VERDICTS["A"], VERDICTS["B"], strict=True
    ):
        label_item(item, a, verdict=va)
        label_item(item, b, verdict=vb)

    page = researcher_client.get(reverse("curation:queue", args=[queue.pk])).content.decode()

    assert 'data-alpha="verdict">0.533<' in page
    assert "ann-a · ann-b" in page and "0.500" in page


@pytest.mark.django_db
def test_figures_hold_when_a_queues_item_ids_are_interleaved_with_anothers(researcher, make_user):
    from r1studio.curation.annotation.agreement import annotator_stats, queue_progress
    from r1studio.curation.annotation.models import AnnotationItem, AnnotationQueue

    a = make_user("annotator")
    first = AnnotationQueue.objects.create(name="first", overlap=1, created_by=researcher)
    second = AnnotationQueue.objects.create(name="second", overlap=1, created_by=researcher)
    for position in range(1, 4):  # ids alternate between the two queues
        for queue in (first, second):
            AnnotationItem.objects.create(queue=queue, position=position, data={"think": "t"})
    for item in AnnotationItem.objects.filter(queue=second):
        label_item(item, a, verdict="accept", seconds=5)
    label_item(first.items.get(position=2), a, verdict="reject", seconds=7)

    [stats] = annotator_stats(queue=first)
    assert (stats["submitted"], stats["accepted"], stats["total_seconds"]) == (1, 0, 7)
    assert queue_progress(queue=first)["submitted"] == 1
    assert annotator_stats(queue=second)[0]["submitted"] == 3
