"""Writes on annotation: leasing the next item, saving drafts and labels, guidelines.

`lease_next` is the one place an item is handed out. An item the annotator holds comes back
first. Else, in one transaction, it reads the first items of the queue (in order) that look
free to the annotator, locks the first of them nobody else is locking (`SELECT ... FOR UPDATE
SKIP LOCKED` on PostgreSQL, so twenty annotators asking at once take twenty different rows, in
one statement each, instead of queueing on one; on SQLite writers take turns, the threads of a
process on a lock of this module), recounts that item's active leases and submitted labels
under the lock, and leases it only while the count is below the overlap and the annotator has
no active lease and no label but a draft on it; their draft label is made in the same
transaction. Expired leases count nowhere: a draft whose lease expired comes back to its
annotator. The hot path is a few lines of SQL (see `_candidate_ids`), and on PostgreSQL its
commit does not wait for the WAL flush (a lease lost in a crash frees its item, no more).

`label_save` is optimistic: the caller sends the `version` it read; the update only happens
`WHERE version = <that>`, so a save over a label someone else changed since answers
`LabelConflict` (HTTP 409) with the stored label, never an overwrite.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import timedelta
from typing import Any, NamedTuple

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

# Free-looking items read per lease pass; more than the annotators who may take one of them
# between that read and the row lock (those count as busy: the pass is made again).
SCAN_LIMIT = 50
# Passes made while every open item is locked by other annotators' leases in flight.
LOCKED_RETRIES = 100
LABEL_FIELDS = ("verdict", "rating", "think", "answer", "tags", "note")


# SQLite lets one writer in at a time and makes the others poll for the lock with growing
# sleeps (up to 100 ms each): twenty annotators leasing at once waited up to a second. Threads
# of one process take turns on this lock instead, each let in as the one before commits.
_SQLITE_WRITER = threading.Lock()


def _one_writer() -> Any:
    """The lock a write transaction of this module takes first on SQLite (not inside an
    outer transaction, which may hold SQLite's own lock already); elsewhere nothing."""
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        return contextlib.nullcontext()
    return _SQLITE_WRITER


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
    # The assignment table alone (no join to the users): this runs on every lease and save.
    assigned = AnnotationQueue.annotators.through.objects
    return assigned.filter(annotationqueue_id=queue.pk, user_id=user.pk).exists()


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


def _tables() -> tuple[str, str, str]:
    qn = connection.ops.quote_name
    return qn(AnnotationItem._meta.db_table), qn(Lease._meta.db_table), qn(Label._meta.db_table)


def _candidate_ids(queue: AnnotationQueue, user: Any, now: Any) -> list[int]:
    """The first SCAN_LIMIT items in queue order that look free to `user` in this snapshot:
    submitted labels plus active leases below the overlap, no active lease of theirs and no
    label of theirs but a draft (a draft whose lease expired comes back to its annotator).

    One SELECT per count of labels done, each an in-order walk of the (queue, labels_done,
    position) index that stops after SCAN_LIMIT rows, in one statement, merged here: a single
    `labels_done < overlap` reads that index out of position order and sorts every open item of
    the queue first (~10 ms on a 20k-item queue). SQL rather than the ORM: building and
    compiling these querysets took 30 times as long as running them, on the path twenty
    annotators take at once."""
    item, lease, label = _tables()
    part = (
        f"SELECT * FROM (SELECT i.position, i.id FROM {item} i"
        " WHERE i.queue_id = %s AND i.labels_done = %s"
        f" AND NOT EXISTS (SELECT 1 FROM {label} b"
        " WHERE b.item_id = i.id AND b.annotator_id = %s AND b.status <> %s)"
        f" AND (SELECT COUNT(*) FROM {lease} a WHERE a.item_id = i.id AND a.expires_at > %s) < %s"
        " ORDER BY i.position LIMIT %s) c{done}"
    )
    when = connection.ops.adapt_datetimefield_value(now)
    parts, params = [], []
    for done in range(queue.overlap):
        parts.append(part.format(done=done))
        params += [queue.pk, done, user.pk, LabelStatus.DRAFT.value, when]
        params += [queue.overlap - done, SCAN_LIMIT]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        found = cursor.fetchall()
    return [pk for _, pk in sorted(found)[:SCAN_LIMIT]]


def _held_item_id(queue: AnnotationQueue, user: Any, now: Any) -> int | None:
    """The item `user` holds an active lease on (the oldest) and has not submitted, if any.
    SQL for the reason given in `_candidate_ids`."""
    item, lease, label = _tables()
    sql = (
        f"SELECT l.item_id FROM {lease} l JOIN {item} i ON i.id = l.item_id"
        " WHERE l.annotator_id = %s AND i.queue_id = %s AND l.expires_at > %s"
        f" AND NOT EXISTS (SELECT 1 FROM {label} b WHERE b.item_id = l.item_id"
        " AND b.annotator_id = %s AND b.status = %s)"
        " ORDER BY l.created_at LIMIT 1"
    )
    when = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, queue.pk, when, user.pk, LabelStatus.SUBMITTED.value])
        row = cursor.fetchone()
    return row[0] if row else None


class _Claim(NamedTuple):
    """What `item`'s rows say about leasing it to `user`, read under its row lock."""

    free: bool  # active leases + submitted labels below the overlap, none of them the user's
    stale_lease: bool  # the user's own expired lease on it (to drop before the new one)
    draft: bool  # the user's draft label of it (from a lease that expired) is taken up again


def _claim(item: AnnotationItem, user: Any, overlap: int, now: Any) -> _Claim:
    """One statement for the item's leases and the user's label (SQL: see `_candidate_ids`)."""
    _, lease, label = _tables()
    sql = (
        f"SELECT annotator_id, CASE WHEN expires_at > %s THEN 1 ELSE 0 END, '' FROM {lease}"
        " WHERE item_id = %s AND (expires_at > %s OR annotator_id = %s) UNION ALL"
        f" SELECT annotator_id, 0, status FROM {label} WHERE item_id = %s AND annotator_id = %s"
    )
    when = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(sql, [when, item.pk, when, user.pk, item.pk, user.pk])
        rows = cursor.fetchall()
    active = [annotator for annotator, live, status in rows if live]
    status = next((status for _, _, status in rows if status), None)
    return _Claim(
        free=user.pk not in active
        and status in (None, LabelStatus.DRAFT)
        and len(active) + item.labels_done < overlap,
        stale_lease=any(a == user.pk and not live and not st for a, live, st in rows),
        draft=status == LabelStatus.DRAFT,
    )


def lease_next(*, queue: AnnotationQueue, user: Any) -> tuple[AnnotationItem, Label] | None:
    """Lease the next item for `user` and return it with the user's label (a draft, made now
    if needed); the item the user already holds comes first. None: nothing left for them."""
    _require_annotator(queue, user)
    now = timezone.now()
    held = _held_item_id(queue, user, now)
    if held is not None:
        item = AnnotationItem.objects.get(pk=held)
        item.queue = queue
        return item, _draft_for(item, user)
    for _ in range(LOCKED_RETRIES):
        leased, busy = _lease_one(queue, user)
        if leased is not None:
            return leased
        if not busy:
            # Every open item is full or already the user's. Expired leases count nowhere
            # (the user's own is dropped when the item comes back to them); clear them here,
            # off the path of a lease.
            Lease.objects.filter(expires_at__lte=timezone.now()).delete()
            return None
        time.sleep(0.01)  # the open items were all being leased by others this instant
    return None


def _lease_one(
    queue: AnnotationQueue, user: Any
) -> tuple[tuple[AnnotationItem, Label] | None, bool]:
    """One pass over the open items: ((leased item, draft), False), or (None, whether some
    were locked). The lease and the draft are one transaction: on SQLite, one write lock."""
    now = timezone.now()
    busy = False
    outermost = not connection.in_atomic_block
    with _one_writer(), transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            # A lease (and an untouched draft) lost in a crash only makes its item leasable
            # again: no need to wait for the WAL flush, where twenty commits at once queued.
            # (Not inside a caller's transaction: its other writes keep their durability.)
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        ids = _candidate_ids(queue, user, now)
        while ids:
            item = _lock_first(ids, queue.overlap, now)
            if item is None:
                return None, True  # all locked or filled by annotators leasing them now
            claim = _claim(item, user, queue.overlap, now)
            if not claim.free:
                busy = True  # taken since the list was read
                ids.remove(item.pk)
                continue
            if claim.stale_lease:
                Lease.objects.filter(item=item, annotator=user).delete()
            _lease_insert(item, user, now, now + timedelta(seconds=queue.lease_seconds))
            item.queue = queue  # the draft reads it: no second query for the queue
            if claim.draft:
                return (item, Label.objects.get(item=item, annotator=user)), False
            return (item, _draft_new(item, user)), False
    return None, busy


def _lock_first(ids: list[int], overlap: int, now: Any) -> AnnotationItem | None:
    """The first of the items `ids` (in queue order) that is not full and that nobody else is
    locking, locked by this transaction; None when there is none. One statement: one row at a
    time, the twentieth of twenty annotators asking at once made nineteen tries first, and
    recounting the leases here skips the items others filled since the list was read."""
    features = connection.features
    lock = ""
    if features.has_select_for_update:
        lock = (
            " FOR UPDATE SKIP LOCKED"
            if features.has_select_for_update_skip_locked
            else " FOR UPDATE"
        )
    item, lease, _ = _tables()
    marks = ", ".join(["%s"] * len(ids))
    sql = (
        f"SELECT * FROM {item} i WHERE i.id IN ({marks}) AND i.labels_done"
        f" + (SELECT COUNT(*) FROM {lease} a WHERE a.item_id = i.id AND a.expires_at > %s) < %s"
        f" ORDER BY i.position LIMIT 1{lock}"
    )
    params = [*ids, connection.ops.adapt_datetimefield_value(now), overlap]
    return next(iter(AnnotationItem.objects.raw(sql, params)), None)


def _lease_insert(item: AnnotationItem, user: Any, now: Any, expires: Any) -> None:
    _, lease, _ = _tables()
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {lease} (item_id, annotator_id, expires_at, created_at)"
            " VALUES (%s, %s, %s, %s)",
            [item.pk, user.pk, adapt(expires), adapt(now)],
        )


def _draft_fields(item: AnnotationItem) -> dict[str, Any]:
    # The number in force, without reading the guideline's text.
    table = connection.ops.quote_name(Guideline._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(number) FROM {table} WHERE queue_id = %s", [item.queue_id])
        number = cursor.fetchone()[0]
    return {
        "think": item.data.get("think") or "",
        "answer": item.data.get("answer") or "",
        "guideline": number or 0,
    }


def _draft_for(item: AnnotationItem, user: Any) -> Label:
    label = Label.objects.filter(item=item, annotator=user).first()
    if label is None:
        label, _ = Label.objects.get_or_create(
            item=item, annotator=user, defaults=_draft_fields(item)
        )
    return label


def _draft_new(item: AnnotationItem, user: Any) -> Label:
    """The user's first label of `item` (known to have none: read under the item's lock)."""
    return Label.objects.create(item=item, annotator=user, **_draft_fields(item))


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
    with _one_writer(), transaction.atomic():
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
