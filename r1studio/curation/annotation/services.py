"""Writes on annotation: leasing the next item, saving drafts and labels, guidelines.

`lease_next` is the one place an item is handed out. In one transaction it drops expired
leases, then walks the open items of the queue in order and locks the first candidate row
(`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so twenty annotators asking at once take
twenty different rows instead of queueing on one; SQLite serialises writers itself), recounts
that item's active leases and submitted labels under the lock, and leases it only while the
count is below the overlap and the annotator has neither a lease nor a label on it.

`label_save` is optimistic: the caller sends the `version` it read; the update only happens
`WHERE version = <that>`, so a save over a label someone else changed since answers
`LabelConflict` (HTTP 409) with the stored label, never an overwrite.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from r1studio.core.roles import RESEARCHER, user_has_role
from r1studio.curation.annotation.models import (
    AnnotationItem,
    AnnotationQueue,
    Guideline,
    Label,
    LabelStatus,
    Lease,
    Verdict,
)

# Open items examined per lease request before giving up (all locked or all taken by then).
SCAN_LIMIT = 200
# Passes made while every open item is locked by other annotators' leases in flight.
LOCKED_RETRIES = 100
LABEL_FIELDS = ("verdict", "rating", "think", "answer", "tags", "note")


class LabelConflict(Exception):
    """The label changed since the caller read it; `current` is the stored label."""

    def __init__(self, current: Label) -> None:
        super().__init__(f"label {current.pk} is at version {current.version}")
        self.current = current


class AnnotationError(ValidationError):
    """An annotation request that cannot be done as asked."""


def queue_can_annotate(*, queue: AnnotationQueue, user: Any) -> bool:
    """Assigned annotators label; researchers (who make and review queues) may too."""
    if user_has_role(user, RESEARCHER):
        return True
    return queue.annotators.filter(pk=user.pk).exists()


def _require_annotator(queue: AnnotationQueue, user: Any) -> None:
    if not queue_can_annotate(queue=queue, user=user):
        raise PermissionDenied("You are not assigned to this queue.")


def guideline_current(*, queue: AnnotationQueue) -> Guideline | None:
    return queue.guidelines.order_by("-number").first()


def guideline_publish(*, queue: AnnotationQueue, user: Any, text: str) -> Guideline:
    """A new guideline version; labels made from now on record it."""
    if not user_has_role(user, RESEARCHER):
        raise PermissionDenied("Guidelines are written by researchers.")
    current = guideline_current(queue=queue)
    number = (current.number if current else 0) + 1
    return Guideline.objects.create(queue=queue, number=number, text=text)


def _candidates(queue: AnnotationQueue, user: Any, now: Any) -> Any:
    mine = Lease.objects.filter(annotator=user, item__queue=queue).values("item_id")
    labelled = Label.objects.filter(annotator=user, item__queue=queue).values("item_id")
    return (
        AnnotationItem.objects.filter(queue=queue, labels_done__lt=queue.overlap)
        .exclude(pk__in=mine)
        .exclude(pk__in=labelled)
        .order_by("position")
    )


def _taken(item: AnnotationItem, now: Any) -> int:
    """Active leases plus submitted labels of `item` (read under its row lock)."""
    leases = Lease.objects.filter(item=item, expires_at__gt=now).count()
    return leases + item.labels_done


def lease_next(*, queue: AnnotationQueue, user: Any) -> tuple[AnnotationItem, Label] | None:
    """Lease the next item for `user` and return it with the user's label (a draft, made now
    if needed); the item the user already holds comes first. None: nothing left for them."""
    _require_annotator(queue, user)
    now = timezone.now()
    held = (
        Lease.objects.filter(annotator=user, item__queue=queue, expires_at__gt=now)
        .exclude(item__labels__annotator=user, item__labels__status=LabelStatus.SUBMITTED)
        .select_related("item")
        .order_by("created_at")
        .first()
    )
    if held is not None:
        return held.item, _draft_for(held.item, user)
    for _ in range(LOCKED_RETRIES):
        leased, busy = _lease_one(queue, user)
        if leased is not None:
            return leased, _draft_for(leased, user)
        if not busy:
            return None  # every open item is full or already the user's
        time.sleep(0.01)  # the open items were all being leased by others this instant
    return None


def _lease_one(queue: AnnotationQueue, user: Any) -> tuple[AnnotationItem | None, bool]:
    """One pass over the open items: (leased item, False), or (None, whether some were locked)."""
    skip_locked = connection.features.has_select_for_update_skip_locked
    now = timezone.now()
    busy = False
    with transaction.atomic():
        Lease.objects.filter(item__queue=queue, expires_at__lte=now).delete()
        ids = list(_candidates(queue, user, now).values_list("pk", flat=True)[:SCAN_LIMIT])
        for item_id in ids:
            locked = AnnotationItem.objects.filter(pk=item_id)
            locked = (
                locked.select_for_update(skip_locked=True)
                if skip_locked
                else locked.select_for_update()
            )
            item = locked.first()
            if item is None:
                busy = True  # another annotator holds its lock right now
                continue
            if _taken(item, now) >= queue.overlap:
                continue
            Lease.objects.create(
                item=item, annotator=user, expires_at=now + timedelta(seconds=queue.lease_seconds)
            )
            return item, False
    return None, busy


def _draft_for(item: AnnotationItem, user: Any) -> Label:
    guideline = guideline_current(queue=item.queue)
    label, _ = Label.objects.get_or_create(
        item=item,
        annotator=user,
        defaults={
            "think": item.data.get("think") or "",
            "answer": item.data.get("answer") or "",
            "guideline": guideline.number if guideline else 0,
        },
    )
    return label


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in LABEL_FIELDS:
        if name not in values:
            continue
        value = values[name]
        if name == "verdict" and value not in ("", None, *Verdict.values):
            raise AnnotationError({"verdict": "accept or reject"})
        if name == "rating" and value not in (None, "") and int(value) not in range(1, 6):
            raise AnnotationError({"rating": "a rating is 1 to 5"})
        if name == "tags" and not (
            isinstance(value, list) and all(isinstance(t, str) for t in value)
        ):
            raise AnnotationError({"tags": "a list of tag names"})
        if name == "rating":
            value = int(value) if value not in (None, "") else None
        elif name != "tags":
            value = "" if value is None else str(value)
        out[name] = value
    return out


def label_save(
    *,
    label: Label,
    user: Any,
    values: dict[str, Any],
    version: int,
    submit: bool = False,
    checks: dict[str, Any] | None = None,
    flagged: bool = False,
    seconds: float = 0.0,
) -> Label:
    """Save a draft (`submit=False`) or submit; `version` is the one the caller read.

    Raises LabelConflict when the stored label has moved on since."""
    if label.annotator_id != user.pk:
        raise PermissionDenied("This label belongs to another annotator.")
    fields = _clean(values)
    item = label.item
    if "think" in fields or "answer" in fields:
        fields["edited"] = (fields.get("think", label.think) != (item.data.get("think") or "")) or (
            fields.get("answer", label.answer) != (item.data.get("answer") or "")
        )
    now = timezone.now()
    fields.update(updated_at=now, version=F("version") + 1)
    if checks is not None:
        fields.update(checks=checks, flagged=flagged)
    if seconds:
        fields["seconds"] = F("seconds") + max(0.0, float(seconds))
    with transaction.atomic():
        was_submitted = label.status == LabelStatus.SUBMITTED
        if submit:
            fields.update(status=LabelStatus.SUBMITTED, submitted_at=now)
        updated = Label.objects.filter(pk=label.pk, version=version).update(**fields)
        if not updated:
            raise LabelConflict(Label.objects.get(pk=label.pk))
        if submit and not was_submitted:
            AnnotationItem.objects.filter(pk=item.pk).update(labels_done=F("labels_done") + 1)
            Lease.objects.filter(item=item, annotator=user).delete()
    label.refresh_from_db()
    return label


def lease_release(*, item: AnnotationItem, user: Any) -> None:
    """Give an item back (skip): the lease goes, so another annotator can take it."""
    Lease.objects.filter(item=item, annotator=user).delete()
    Label.objects.filter(item=item, annotator=user, status=LabelStatus.DRAFT).update(
        status=LabelStatus.SKIPPED, updated_at=timezone.now(), version=F("version") + 1
    )
