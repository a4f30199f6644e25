"""The counts behind a queue's progress (its tally) and the agreement figures' cache stay right,
and a lease costs a handful of statements (the path twenty annotators take at once)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection, connections
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from r1studio.curation.annotation.agreement import (
    queue_agreement,
    queue_item_counts,
    queue_progress,
)
from r1studio.curation.annotation.models import AnnotationItem, AnnotationQueue, QueueTally
from r1studio.curation.annotation.services import label_save, lease_next
from r1studio.curation.annotation.tally import queue_tally_rebuild
from tests.studio.curation.queue_helpers import label_item, make_queue, make_version

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("data_dir")]


def counted(queue: AnnotationQueue) -> dict[int, int]:
    """Items by labels done, counted over the items (what the tally must equal)."""
    rows = (
        AnnotationItem.objects.filter(queue=queue)
        .values_list("labels_done")
        .annotate(n=Count("id"))
        .order_by()
    )
    return dict(rows)


def tallied(queue: AnnotationQueue) -> dict[int, int]:
    rows = QueueTally.objects.filter(queue=queue).values_list("labels_done", "items")
    return {done: n for done, n in rows if n}


def lease_and_submit(queue: AnnotationQueue, user: Any, verdict: str = "accept") -> None:
    _, label = lease_next(queue=queue, user=user)
    label_save(label=label, user=user, values={"verdict": verdict}, version=1, submit=True)


def test_the_tally_follows_leases_and_submits(researcher, make_user):
    ada, bo, cy = (make_user("annotator") for _ in range(3))
    queue = make_queue(researcher, annotators=[ada, bo, cy], overlap=2)
    assert tallied(queue) == counted(queue) == {0: 3}

    for user in (ada, bo, cy, ada):
        lease_and_submit(queue, user)

    # Items are served in order, each to `overlap` annotators: two full, one untouched.
    assert tallied(queue) == counted(queue) == {0: 1, 2: 2}
    progress = queue_progress(queue=queue)
    assert (progress["total"], progress["done"], progress["started"]) == (3, 2, 2)
    assert progress["submitted"] == 4


def test_a_queue_with_items_written_by_hand_is_counted_over_its_items(researcher, make_user):
    ada = make_user("annotator")
    queue = AnnotationQueue.objects.create(name="by hand", overlap=1, created_by=researcher)
    queue.annotators.set([ada])
    AnnotationItem.objects.bulk_create(
        AnnotationItem(queue=queue, position=i, data={"think": "t"}) for i in range(3)
    )

    lease_and_submit(queue, ada)

    assert not QueueTally.objects.filter(queue=queue).exists()
    assert queue_item_counts([queue.pk])[queue.pk] == {0: 2, 1: 1}
    assert queue_progress(queue=queue)["done"] == 1


def test_a_tally_missing_a_row_is_dropped_rather_than_left_wrong(researcher, make_user):
    ada = make_user("annotator")
    queue = make_queue(researcher, annotators=[ada], overlap=1)
    QueueTally.objects.filter(queue=queue, labels_done=1).delete()

    lease_and_submit(queue, ada)

    assert not QueueTally.objects.filter(queue=queue).exists()
    assert queue_item_counts([queue.pk])[queue.pk] == {0: 2, 1: 1}


def test_agreement_is_computed_again_when_a_sampled_label_changes(researcher, make_user):
    a, b = make_user("annotator"), make_user("annotator")
    rows = [{"problem": f"p{i}", "think": "t", "answer": "1"} for i in range(4)]
    queue = make_queue(
        researcher, annotators=[a, b], overlap=2, version=make_version(researcher, rows)
    )
    labels = {}
    for item, va, vb in zip(
        queue.items.order_by("position"),
        ["accept", "accept", "reject", "reject"],
        ["accept", "reject", "reject", "reject"],
        strict=True,
    ):
        labels[item.position] = label_item(item, a, verdict=va)
        label_item(item, b, verdict=vb)
    [before] = queue_agreement(queue=queue)
    assert before["verdict_alpha"] == pytest.approx(8 / 15)  # see test_agreement.py
    assert queue_agreement(queue=queue) == [before]  # the same figures from the cache

    # A's second verdict changes to B's: the two now agree on every item.
    second = labels[2]
    label_save(label=second, user=a, values={"verdict": "reject"}, version=second.version)

    [after] = queue_agreement(queue=queue)
    assert after["verdict_alpha"] == pytest.approx(1.0)
    cache.clear()
    assert queue_agreement(queue=queue) == [after]


def test_a_lease_takes_a_handful_of_statements(researcher, make_user):
    ada = make_user("annotator")
    queue = make_queue(researcher, annotators=[ada], overlap=1)

    with CaptureQueriesContext(connection) as captured:
        item, label = lease_next(queue=queue, user=ada)

    # Assignment and held item; candidates with the row lock; the claim; the lease and the
    # draft (one statement on PostgreSQL, two on SQLite). The test's own transaction adds
    # savepoints, which a request's lease does not make.
    statements = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) <= 5, statements
    assert label.pk and label.item_id == item.pk and label.version == 1


@pytest.mark.django_db(transaction=True)
def test_twenty_submits_at_once_keep_the_tally_right(researcher, make_user):
    annotators = [make_user("annotator") for _ in range(20)]
    queue = make_queue(researcher, annotators=annotators, overlap=2)  # 3 items
    more = [AnnotationItem(queue=queue, position=p, data={"think": "t"}) for p in range(4, 11)]
    AnnotationItem.objects.bulk_create(more)
    queue_tally_rebuild(queue=queue)
    labels = [lease_next(queue=queue, user=user)[1] for user in annotators]
    errors: list[BaseException] = []
    start = threading.Barrier(len(annotators))

    def submit(user: Any, label: Any) -> None:
        try:
            start.wait()
            label_save(label=label, user=user, values={"verdict": "accept"}, version=1, submit=True)
        except BaseException as exc:  # reported below (a deadlock among them, say)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=submit, args=pair) for pair in zip(annotators, labels, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert tallied(queue) == counted(queue) == {2: 10}
