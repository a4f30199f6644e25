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
annotator. The hot path is a few lines of SQL (see `_candidates_sql`), and on PostgreSQL its
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
from functools import lru_cache
from typing import Any, NamedTuple

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
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
from r1studio.curation.annotation.tally import labels_done_up

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


# The lease path is SQL rather than the ORM, its statements built once per database and shape
# (`lru_cache` on the vendor): building and compiling querysets cost five times the CPU of
# running them, and twenty annotators asking at once queue for that CPU (one process's GIL).


@lru_cache
def _candidates_sql(vendor: str, overlap: int) -> str:
    """The ids of the first SCAN_LIMIT items in queue order that look free to the annotator in
    this snapshot: submitted labels plus active leases below the overlap, no active lease of
    theirs and no label of theirs but a draft (a draft whose lease expired comes back to its
    annotator). Parameters: `_candidates_params`.

    One SELECT per count of labels done, each an in-order walk of the (queue, labels_done,
    position) index that stops after SCAN_LIMIT rows, in one statement: a single
    `labels_done < overlap` reads that index out of position order and sorts every open item of
    the queue first (~10 ms on a 20k-item queue)."""
    item, lease, label = _tables()
    part = (
        f"SELECT id FROM (SELECT i.id FROM {item} i"
        " WHERE i.queue_id = %s AND i.labels_done = %s"
        f" AND NOT EXISTS (SELECT 1 FROM {label} b"
        " WHERE b.item_id = i.id AND b.annotator_id = %s AND b.status <> %s)"
        f" AND (SELECT COUNT(*) FROM {lease} a WHERE a.item_id = i.id AND a.expires_at > %s) < %s"
        " ORDER BY i.position LIMIT %s) c{done}"
    )
    return " UNION ALL ".join(part.format(done=done) for done in range(overlap))


def _candidates_params(queue: AnnotationQueue, user: Any, when: Any) -> list[Any]:
    params: list[Any] = []
    for done in range(queue.overlap):
        params += [queue.pk, done, user.pk, LabelStatus.DRAFT.value, when]
        params += [queue.overlap - done, SCAN_LIMIT]
    return params


@lru_cache
def _lookup_sql(vendor: str) -> str:
    item, lease, label = _tables()
    assigned = connection.ops.quote_name(AnnotationQueue.annotators.through._meta.db_table)
    return (
        f"SELECT EXISTS (SELECT 1 FROM {assigned} WHERE annotationqueue_id = %s AND user_id = %s),"
        f" (SELECT l.item_id FROM {lease} l JOIN {item} i ON i.id = l.item_id"
        " WHERE l.annotator_id = %s AND i.queue_id = %s AND l.expires_at > %s"
        f" AND NOT EXISTS (SELECT 1 FROM {label} b WHERE b.item_id = l.item_id"
        " AND b.annotator_id = %s AND b.status = %s)"
        " ORDER BY l.created_at LIMIT 1)"
    )


def _lookup(queue: AnnotationQueue, user: Any, now: Any) -> tuple[bool, int | None]:
    """(whether `user` is assigned to the queue, the item they hold an active lease on (the
    oldest) and have not submitted, if any), in one statement."""
    when = connection.ops.adapt_datetimefield_value(now)
    params = [queue.pk, user.pk, user.pk, queue.pk, when, user.pk, LabelStatus.SUBMITTED.value]
    with connection.cursor() as cursor:
        cursor.execute(_lookup_sql(connection.vendor), params)
        is_assigned, held = cursor.fetchone()
    return bool(is_assigned), held


class _Claim(NamedTuple):
    """What `item`'s rows say about leasing it to `user`, read under its row lock."""

    free: bool  # active leases + submitted labels below the overlap, none of them the user's
    stale_lease: bool  # the user's own expired lease on it (to drop before the new one)
    draft: bool  # the user's draft label of it (from a lease that expired) is taken up again


@lru_cache
def _claim_sql(vendor: str) -> str:
    _, lease, label = _tables()
    return (
        f"SELECT annotator_id, CASE WHEN expires_at > %s THEN 1 ELSE 0 END, '' FROM {lease}"
        " WHERE item_id = %s AND (expires_at > %s OR annotator_id = %s) UNION ALL"
        f" SELECT annotator_id, 0, status FROM {label} WHERE item_id = %s AND annotator_id = %s"
    )


def _claim(item: AnnotationItem, user: Any, overlap: int, now: Any) -> _Claim:
    """One statement for the item's leases and the user's label. A statement of its own, after
    the row lock: under READ COMMITTED it sees the leases committed while the lock was taken,
    which the locking statement's snapshot may not."""
    when = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(
            _claim_sql(connection.vendor), [when, item.pk, when, user.pk, item.pk, user.pk]
        )
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
    now = timezone.now()
    assigned, held = _lookup(queue, user, now)
    if not assigned and not user_has_role(user, RESEARCHER):
        raise PermissionDenied("You are not assigned to this queue.")
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
    were locked or taken by others). The lease and the draft are one transaction: on SQLite,
    one write lock."""
    now = timezone.now()
    taken: list[int] = []  # locked by this pass but filled since the candidates were read
    outermost = not connection.in_atomic_block
    with _one_writer(), transaction.atomic():
        while True:
            found = _lock_next(queue, user, now, taken, outermost)
            if found is None:
                return None, bool(taken) or _any_candidate(queue, user, now)
            item, guideline = found
            claim = _claim(item, user, queue.overlap, now)
            if not claim.free:
                taken.append(item.pk)
                continue
            if claim.stale_lease:
                Lease.objects.filter(item=item, annotator=user).delete()
            item.queue = queue  # the draft's readers use it: no second query for the queue
            expires = now + timedelta(seconds=queue.lease_seconds)
            if claim.draft:
                _lease_insert(item, user, now, expires)
                return (item, Label.objects.get(item=item, annotator=user)), False
            return (item, _lease_and_draft(item, user, now, expires, guideline)), False


def _any_candidate(queue: AnnotationQueue, user: Any, now: Any) -> bool:
    """Whether some item looks free to `user` (so a pass that leased nothing met only items
    others were locking): asked only when a pass leased nothing."""
    when = connection.ops.adapt_datetimefield_value(now)
    sql = f"SELECT EXISTS ({_candidates_sql(connection.vendor, queue.overlap)})"
    with connection.cursor() as cursor:
        cursor.execute(sql, _candidates_params(queue, user, when))
        return bool(cursor.fetchone()[0])


_ITEM_FIELDS = list(AnnotationItem._meta.concrete_fields)
_ITEM_NAMES = [f.attname for f in _ITEM_FIELDS]
_ITEM_JSON = [hasattr(f, "from_db_value") for f in _ITEM_FIELDS]


@lru_cache
def _lock_sql(vendor: str, overlap: int, outermost: bool, taken: int) -> str:
    """See `_lock_next`."""
    item, _, _ = _tables()
    qn = connection.ops.quote_name
    columns = ", ".join(f"i.{qn(f.column)}" for f in _ITEM_FIELDS)
    guideline = qn(Guideline._meta.db_table)
    extra, lock = "", ""
    if vendor == "postgresql":
        lock = " FOR UPDATE OF i SKIP LOCKED"
        if outermost:
            # A lease (and an untouched draft) lost in a crash only makes its item leasable
            # again: its commit need not wait for the WAL flush, where twenty commits at once
            # queued. set_config(..., true) is SET LOCAL, made here to spare a round trip;
            # not inside a caller's transaction, whose other writes keep their durability.
            extra = ", set_config('synchronous_commit', 'off', true)"
    elif connection.features.has_select_for_update:
        lock = " FOR UPDATE"
    skip = f" AND i.id NOT IN ({', '.join(['%s'] * taken)})" if taken else ""
    # `labels_done < overlap` again out here: the lock reads the newest version of the row,
    # so it skips an item whose last label was submitted since the candidates' snapshot.
    return (
        f"SELECT {columns}, (SELECT MAX(g.number) FROM {guideline} g WHERE g.queue_id = %s){extra}"
        f" FROM {item} i WHERE i.id IN ({_candidates_sql(vendor, overlap)}){skip}"
        f" AND i.labels_done < %s ORDER BY i.position LIMIT 1{lock}"
    )


def _lock_next(
    queue: AnnotationQueue, user: Any, now: Any, taken: list[int], outermost: bool
) -> tuple[AnnotationItem, int] | None:
    """The first item (in queue order) of those that look free to `user` and that nobody else
    is locking, locked by this transaction, with the queue's guideline number in force; None
    when there is none. One statement for the candidates and the lock (`FOR UPDATE SKIP
    LOCKED` on PostgreSQL: twenty annotators asking at once take twenty different rows, in one
    statement each, instead of queueing on one); `_claim` then recounts under the lock."""
    when = connection.ops.adapt_datetimefield_value(now)
    params = [queue.pk, *_candidates_params(queue, user, when), *taken, queue.overlap]
    sql = _lock_sql(connection.vendor, queue.overlap, outermost, len(taken))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = [
        f.from_db_value(v, None, connection) if json else v
        for f, json, v in zip(_ITEM_FIELDS, _ITEM_JSON, row, strict=False)
    ]
    return AnnotationItem.from_db(connection.alias, _ITEM_NAMES, values), row[
        len(_ITEM_FIELDS)
    ] or 0


@lru_cache
def _lease_insert_sql(vendor: str) -> str:
    _, lease, _ = _tables()
    return (
        f"INSERT INTO {lease} (item_id, annotator_id, expires_at, created_at)"
        " VALUES (%s, %s, %s, %s)"
    )


def _lease_params(item: AnnotationItem, user: Any, now: Any, expires: Any) -> list[Any]:
    adapt = connection.ops.adapt_datetimefield_value
    return [item.pk, user.pk, adapt(expires), adapt(now)]


def _lease_insert(item: AnnotationItem, user: Any, now: Any, expires: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _lease_insert_sql(connection.vendor), _lease_params(item, user, now, expires)
        )


_LABEL_FIELDS = [f for f in Label._meta.concrete_fields if not f.primary_key]


@lru_cache
def _draft_insert_sql(vendor: str, returning: bool) -> str:
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in _LABEL_FIELDS)
    marks = ", ".join(["%s"] * len(_LABEL_FIELDS))
    insert = f"INSERT INTO {_tables()[2]} ({columns}) VALUES ({marks})"
    if vendor == "postgresql":
        insert = f"WITH new_lease AS ({_lease_insert_sql(vendor)}) {insert}"
    return insert + (" RETURNING id" if returning else "")


def _lease_and_draft(
    item: AnnotationItem, user: Any, now: Any, expires: Any, guideline: int
) -> Label:
    """Insert the lease and the user's first label of `item` (a draft; known to have none:
    read under the item's lock). On PostgreSQL one statement (the lease in a WITH)."""
    label = Label(
        item=item,
        annotator_id=user.pk,
        think=item.data.get("think") or "",
        answer=item.data.get("answer") or "",
        guideline=guideline,
        created_at=now,
        updated_at=now,
    )
    conn = connections[DEFAULT_DB_ALIAS]  # the proxy's lookups, once rather than per field
    values = [f.get_db_prep_save(getattr(label, f.attname), conn) for f in _LABEL_FIELDS]
    returning = conn.features.can_return_columns_from_insert
    sql = _draft_insert_sql(conn.vendor, returning)
    lease_params = _lease_params(item, user, now, expires)
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            cursor.execute(sql, lease_params + values)
        else:
            cursor.execute(_lease_insert_sql(conn.vendor), lease_params)
            cursor.execute(sql, values)
        label.pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    label._state.adding = False
    label._state.db = conn.alias
    return label


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
            Lease.objects.filter(item=item, annotator=user).delete()
            labels_done_up(item)  # last: the queue's tally rows stay locked until the commit
    label.refresh_from_db()
    return label


def lease_release(*, item: AnnotationItem, user: Any) -> None:
    """Give an item back (skip): the lease goes, so another annotator can take it."""
    Lease.objects.filter(item=item, annotator=user).delete()
    Label.objects.filter(item=item, annotator=user, status=LabelStatus.DRAFT).update(
        status=LabelStatus.SKIPPED, updated_at=timezone.now(), version=F("version") + 1
    )
