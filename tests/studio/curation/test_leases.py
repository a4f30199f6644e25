"""Leasing never double-serves an item; saving a label never overwrites someone else's."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from r1studio.curation.annotation.models import AnnotationItem, AnnotationQueue, Label, Lease
from r1studio.curation.annotation.services import (
    LabelConflict,
    guideline_publish,
    label_save,
    lease_next,
    lease_release,
)


def make_queue(owner: Any, *, items: int, overlap: int, annotators: list) -> AnnotationQueue:
    queue = AnnotationQueue.objects.create(name="q", overlap=overlap, created_by=owner)
    queue.annotators.set(annotators)
    AnnotationItem.objects.bulk_create(
        AnnotationItem(
            queue=queue, position=i, data={"problem": f"p{i}", "think": "t", "answer": "a"}
        )
        for i in range(items)
    )
    return queue


@pytest.mark.django_db(transaction=True)
def test_twenty_annotators_at_once_never_exceed_the_overlap(make_user, researcher):
    annotators = [make_user("annotator") for _ in range(20)]
    queue = make_queue(researcher, items=6, overlap=2, annotators=annotators)
    leased: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(annotators))

    def ask(user: Any) -> None:
        try:
            start.wait()
            got = lease_next(queue=queue, user=user)
            if got is not None:
                leased.append(got[0].pk)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask, args=(u,)) for u in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    counts = Counter(leased)
    assert len(leased) == 12 and set(counts.values()) == {2}  # 6 items x overlap 2, no more
    assert Lease.objects.count() == 12


@pytest.mark.django_db
def test_an_annotator_gets_an_item_once_and_submitted_items_fill_up(make_user, researcher):
    ada, bo, cy = (make_user("annotator") for _ in range(3))
    queue = make_queue(researcher, items=2, overlap=2, annotators=[ada, bo, cy])
    guideline_publish(queue=queue, user=researcher, text="Accept correct, readable traces.")

    item, label = lease_next(queue=queue, user=ada)
    again, _ = lease_next(queue=queue, user=ada)  # still holding it: the same item comes back
    assert again == item and label.guideline == 1 and label.think == "t"

    label_save(
        label=label, user=ada, values={"verdict": "accept"}, version=label.version, submit=True
    )
    second, _ = lease_next(queue=queue, user=ada)
    assert second != item  # never the same item twice to one annotator
    b_item, b_label = lease_next(queue=queue, user=bo)
    assert b_item == item  # first open item; ada's submitted label counts one of two
    label_save(
        label=b_label, user=bo, values={"verdict": "reject"}, version=b_label.version, submit=True
    )
    c_item, _ = lease_next(queue=queue, user=cy)
    assert c_item == second  # `item` is full: two submitted labels


@pytest.mark.django_db
def test_an_expired_lease_frees_the_item(make_user, researcher):
    ada, bo = make_user("annotator"), make_user("annotator")
    queue = make_queue(researcher, items=1, overlap=1, annotators=[ada, bo])
    item, _ = lease_next(queue=queue, user=ada)
    assert lease_next(queue=queue, user=bo) is None

    Lease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert lease_next(queue=queue, user=bo)[0] == item


@pytest.mark.django_db
def test_a_save_over_a_changed_label_is_a_conflict_not_an_overwrite(make_user, researcher):
    ada = make_user("annotator")
    queue = make_queue(researcher, items=1, overlap=1, annotators=[ada])
    _, label = lease_next(queue=queue, user=ada)
    read = label.version
    label_save(label=label, user=ada, values={"note": "first tab"}, version=read)

    with pytest.raises(LabelConflict) as conflict:
        label_save(label=label, user=ada, values={"note": "second tab"}, version=read)

    assert conflict.value.current.note == "first tab"
    assert Label.objects.get().note == "first tab"


@pytest.mark.django_db
def test_skipping_hands_the_item_to_the_next_annotator(make_user, researcher):
    ada, bo = make_user("annotator"), make_user("annotator")
    queue = make_queue(researcher, items=1, overlap=1, annotators=[ada, bo])
    item, _ = lease_next(queue=queue, user=ada)

    lease_release(item=item, user=ada)

    assert lease_next(queue=queue, user=bo)[0] == item
    assert lease_next(queue=queue, user=ada) is None  # skipped: not offered to ada again


@pytest.mark.django_db
def test_a_draft_whose_lease_expired_comes_back_to_its_annotator(make_user, researcher):
    ada = make_user("annotator")
    queue = make_queue(researcher, items=2, overlap=1, annotators=[ada])
    item, label = lease_next(queue=queue, user=ada)
    label_save(label=label, user=ada, values={"note": "half done"}, version=label.version)
    Lease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    again, draft = lease_next(queue=queue, user=ada)

    assert again == item and draft.note == "half done"
