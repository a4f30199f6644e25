"""A queue's tally: how many of its items have each count of submitted labels.

The progress of a queue (items done, started, labels submitted) is read from these few rows
rather than counted over its items (~70 ms for 100k items). `queue_tally_rebuild` makes the
rows with the queue's items; `labels_done_up` moves one item up by one in the transaction of a
first submit. A queue without rows (items written by hand) is counted over its items
(`agreement.queue_item_counts`).
"""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Count

from r1studio.curation.annotation.models import AnnotationItem, AnnotationQueue, QueueTally


def labels_done_up(item: AnnotationItem) -> None:
    """One more submitted label of `item`: its count, and its queue's tally moved with it."""
    qn = connection.ops.quote_name
    item_table = qn(AnnotationItem._meta.db_table)
    tally = qn(QueueTally._meta.db_table)
    up = f"UPDATE {item_table} SET labels_done = labels_done + 1 WHERE id = %s"
    move = f"UPDATE {tally} SET items = items + %s WHERE queue_id = %s AND labels_done = %s"
    with connection.cursor() as cursor:
        # UPDATE ... RETURNING where the database has it (PostgreSQL, SQLite >= 3.35, the
        # same versions that return columns from an INSERT).
        if connection.features.can_return_columns_from_insert:
            cursor.execute(f"{up} RETURNING labels_done", [item.pk])
        else:
            cursor.execute(up, [item.pk])
            cursor.execute(f"SELECT labels_done FROM {item_table} WHERE id = %s", [item.pk])
        done = cursor.fetchone()[0]
        # Two statements, the lower count first: every submit locks the tally rows in the same
        # order (one UPDATE of both rows locked them in heap order, and three submits at once
        # deadlocked).
        cursor.execute(move, [-1, item.queue_id, done - 1])
        down = cursor.rowcount
        cursor.execute(move, [1, item.queue_id, done])
        if cursor.rowcount != down:
            # A tally without the row for one of the counts cannot stay right: drop it, so
            # the queue's progress is counted over its items until `queue_tally_rebuild`.
            QueueTally.objects.filter(queue_id=item.queue_id).delete()


def queue_tally_rebuild(*, queue: AnnotationQueue) -> None:
    """Count the queue's items by labels done into its tally rows (for 0..overlap at least):
    done with the queue's items, and after items or labels were written in bulk."""
    counts = dict(
        AnnotationItem.objects.filter(queue=queue)
        .values_list("labels_done")
        .annotate(n=Count("id"))
        .order_by()
    )
    with transaction.atomic():
        QueueTally.objects.filter(queue=queue).delete()
        QueueTally.objects.bulk_create(
            QueueTally(queue=queue, labels_done=done, items=counts.get(done, 0))
            for done in sorted(set(range(queue.overlap + 1)) | set(counts))
        )
