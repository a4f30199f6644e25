"""How well annotators agree, and how they do on gold items: the queue dashboard's figures.

Chance-corrected agreement comes from nltk's `AnnotationTask` (Apache-2.0), not from formulas
of our own: Krippendorff's alpha with the nominal distance for verdicts and the interval
distance (squared difference) for 1-5 ratings (nltk has no ordinal metric; the rating points are
equally spaced), and Cohen's kappa for each pair of annotators on the items both labelled.

Only submitted labels count, per guideline version (a label made under version 2 is not
compared with one made under version 1), and only on a bounded sample: the first
`MAX_ITEMS` items (by position) that at least two annotators submitted. The dashboard of a
100k-item queue thus reads at most a few thousand labels for agreement (and runs nltk only when
one of them changed: `queue_agreement`); its item counts come from the queue's tally (see
`tally.py`); the rest is a count over a partial index or a GROUP BY annotator.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Count, F, Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from r1studio.curation.annotation.models import (
    AnnotationItem,
    AnnotationQueue,
    Label,
    LabelStatus,
    Lease,
    QueueTally,
)

MAX_ITEMS = 1000  # items whose labels are compared, per queue
MAX_PAIRS = 30  # annotator pairs shown with their kappa (those sharing the most items)
MIN_SHARED = 2  # items two annotators must share for a kappa
AGREEMENT_CACHE_SECONDS = 3600  # figures of one sample of labels (keyed by its content)

Triple = tuple[Any, Any, Any]  # (annotator, item, value)


def _task(triples: Iterable[Triple], distance: Any) -> Any:
    # nltk takes ~0.8 s to import; only pages that compute agreement pay for it.
    from nltk.metrics.agreement import AnnotationTask

    return AnnotationTask(data=list(triples), distance=distance)


def _multiply_coded(triples: list[Triple]) -> list[Triple]:
    count: dict[Any, int] = defaultdict(int)
    for _, item, _ in triples:
        count[item] += 1
    return [t for t in triples if count[t[1]] >= 2]


def alpha_nominal(triples: Iterable[Triple]) -> float | None:
    """Krippendorff's alpha of categorical values (verdicts); None without two values of an
    item to compare."""
    from nltk.metrics.distance import binary_distance

    data = _multiply_coded([t for t in triples if t[2] not in (None, "")])
    return float(_task(data, binary_distance).alpha()) if data else None


def alpha_interval(triples: Iterable[Triple]) -> float | None:
    """Krippendorff's alpha of numbers (ratings) with the interval (squared) distance."""
    from nltk.metrics.distance import interval_distance

    data = _multiply_coded([(c, i, int(v)) for c, i, v in triples if v not in (None, "")])
    return float(_task(data, interval_distance).alpha()) if data else None


def kappa_pairs(triples: Iterable[Triple], *, limit: int = MAX_PAIRS) -> list[dict[str, Any]]:
    """Cohen's kappa for each pair of annotators on the items both labelled (nltk's kappa
    assumes every coder labelled every item, so each pair gets a task of its shared items).
    Pairs sharing the most items first; kappa None when it is undefined (one category only)."""
    from nltk.metrics.distance import binary_distance

    by_coder: dict[Any, dict[Any, Any]] = defaultdict(dict)
    for coder, item, value in triples:
        if value not in (None, ""):
            by_coder[coder][item] = value
    pairs = []
    for a, b in combinations(sorted(by_coder, key=str), 2):
        shared = by_coder[a].keys() & by_coder[b].keys()
        if len(shared) >= MIN_SHARED:
            pairs.append((a, b, shared))
    pairs.sort(key=lambda p: -len(p[2]))
    out = []
    for a, b, shared in pairs[:limit]:
        task = _task(
            [(a, i, by_coder[a][i]) for i in shared] + [(b, i, by_coder[b][i]) for i in shared],
            binary_distance,
        )
        try:
            kappa: float | None = float(task.kappa_pairwise(a, b))
        except (ValueError, ZeroDivisionError):
            kappa = None  # every label the same category: chance agreement is 1
        agree = sum(by_coder[a][i] == by_coder[b][i] for i in shared) / len(shared)
        out.append({"a": a, "b": b, "items": len(shared), "kappa": kappa, "observed": agree})
    return out


def _item_range(queue: AnnotationQueue, total: int | None) -> tuple[int, int] | None:
    """(first, last) id of the queue's items when they are one unbroken id range, else None.

    A queue's items are made in one transaction, so their ids usually are; PostgreSQL
    sequences may interleave them with another queue's made at the same time."""
    ids = AnnotationItem.objects.filter(queue=queue).values_list("pk", flat=True)
    low, high = ids.order_by("pk").first(), ids.order_by("-pk").first()
    if total is None:
        total = ids.count()
    return (low, high) if low is not None and high - low + 1 == total else None


def _of_queue(qs: QuerySet, queue: AnnotationQueue, span: tuple[int, int] | None) -> QuerySet:
    """Rows of `qs` (labels, leases) of the queue's items: an `item_id` range when the items'
    ids are one range (an index range, no join), else a join on the items."""
    if span is not None:
        return qs.filter(item_id__gte=span[0], item_id__lte=span[1])
    return qs.filter(item__queue=queue)


def queue_labels(queue: AnnotationQueue, total: int | None = None) -> QuerySet[Label]:
    """The labels of the queue's items (`total`: the item count, when the caller has it)."""
    return _of_queue(Label.objects.all(), queue, _item_range(queue, total))


def _sample_labels(queue: AnnotationQueue) -> list[tuple[int, int, int, str, int | None]]:
    """(item, annotator, guideline, verdict, rating) of the submitted labels of the first
    MAX_ITEMS items at least two annotators submitted (in the order of the (queue,
    labels_done, position) index, which the query walks and stops)."""
    items = AnnotationItem.objects.filter(queue=queue, labels_done__gte=2)
    # A subquery, not a list of ids: a thousand ids cost ~20 ms of CPU to prepare as parameters.
    sample = items.order_by("labels_done", "position").values("pk")[:MAX_ITEMS]
    return list(
        Label.objects.filter(item_id__in=sample, status=LabelStatus.SUBMITTED)
        .order_by("item_id", "annotator_id")
        .values_list("item_id", "annotator_id", "guideline", "verdict", "rating")
    )


def _agreement_figures(labels: list[tuple[int, int, int, str, int | None]]) -> list[dict]:
    """`queue_agreement`'s figures of these labels, annotators by id."""
    by_version: dict[int, list[tuple]] = defaultdict(list)
    for row in labels:
        by_version[row[2]].append(row)
    out = []
    for number in sorted(by_version):
        rows = by_version[number]
        verdicts = [(annotator, item, verdict) for item, annotator, _, verdict, _ in rows]
        ratings = [(annotator, item, rating) for item, annotator, _, _, rating in rows]
        compared = {t[1] for t in _multiply_coded(verdicts)}
        out.append(
            {
                "guideline": number,
                "items": len(compared),
                "labels": len(rows),
                "verdict_alpha": alpha_nominal(verdicts),
                "rating_alpha": alpha_interval(ratings),
                "pairs": kappa_pairs(verdicts),
            }
        )
    return out


def queue_agreement(*, queue: AnnotationQueue) -> list[dict[str, Any]]:
    """Per guideline version: items compared, alpha of verdicts and of ratings, pair kappas.

    nltk takes ~30 ms over the sample of a large queue, and the sample (its first doubly
    labelled items) rarely changes once it is full: the figures are kept in the cache under a
    digest of the sampled labels themselves, so they are computed again exactly when one of
    those labels changed, never served stale."""
    labels = _sample_labels(queue)
    digest = hashlib.blake2b(repr(labels).encode(), digest_size=16).hexdigest()
    key = f"annotation-agreement:{digest}"
    figures = cache.get(key)
    if figures is None:
        figures = _agreement_figures(labels)
        cache.set(key, figures, AGREEMENT_CACHE_SECONDS)
    names = _usernames({row[1] for row in labels})
    for version in figures:
        for pair in version["pairs"]:
            pair["a"], pair["b"] = names.get(pair["a"], pair["a"]), names.get(pair["b"], pair["b"])
    return figures


def _usernames(ids: Iterable[int]) -> dict[int, str]:
    User = get_user_model()
    return dict(User.objects.filter(pk__in=list(ids)).values_list("pk", User.USERNAME_FIELD))


def queue_item_counts(queue_ids: Iterable[int]) -> dict[int, dict[int, int]]:
    """{queue id: {labels done: items}} from the queues' tally rows; a queue without any (items
    written by hand) is counted over its items, one walk of the `item_open` index."""
    ids = list(queue_ids)
    counts: dict[int, dict[int, int]] = defaultdict(dict)
    tallies = QueueTally.objects.filter(queue_id__in=ids)
    for queue_id, done, n in tallies.values_list("queue_id", "labels_done", "items"):
        counts[queue_id][done] = n
    untallied = [pk for pk in ids if pk not in counts]
    if untallied:
        rows = (
            AnnotationItem.objects.filter(queue_id__in=untallied)
            .values_list("queue_id", "labels_done")
            .annotate(n=Count("id"))
            .order_by()
        )
        for queue_id, done, n in rows:
            counts[queue_id][done] = n
    return counts


def queue_progress(*, queue: AnnotationQueue) -> dict[str, int]:
    """Items (total, done: labelled `overlap` times, started, gold, resolved) and labels by
    status; the item counts from the queue's tally, the rest walk an index only."""
    counts = queue_item_counts([queue.pk])[queue.pk]
    progress = {
        "total": sum(counts.values()),
        "done": sum(n for done, n in counts.items() if done >= queue.overlap),
        "started": sum(n for done, n in counts.items() if done > 0),
        "submitted": sum(done * n for done, n in counts.items()),
    }
    items = AnnotationItem.objects.filter(queue=queue)
    progress["gold"] = items.filter(~Q(gold_verdict="")).count()
    progress["resolved"] = items.filter(resolved__isnull=False).count()
    span = _item_range(queue, progress["total"])
    leases = _of_queue(Lease.objects.filter(expires_at__gt=timezone.now()), queue, span)
    unsubmitted = Label.objects.filter(status__in=[LabelStatus.DRAFT, LabelStatus.SKIPPED])
    if span is not None:  # seeks into (annotator, status, item): drafts are few
        unsubmitted = unsubmitted.filter(annotator__in=get_user_model().objects.values("pk"))
    by_status = dict(
        _of_queue(unsubmitted, queue, span)
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {
        **progress,
        "drafts": by_status.get(LabelStatus.DRAFT, 0),
        "skipped": by_status.get(LabelStatus.SKIPPED, 0),
        "leased": leases.count(),
        "labels_wanted": progress["total"] * queue.overlap,
    }


def _gold_counts(queue: AnnotationQueue) -> dict[int, tuple[int, int]]:
    """{annotator: (gold items labelled, verdicts equal to the known one)}, from the gold
    items (the `item_gold` partial index) to their labels."""
    rows = (
        Label.objects.filter(
            ~Q(item__gold_verdict=""), item__queue=queue, status=LabelStatus.SUBMITTED
        )
        .values("annotator_id")
        .annotate(n=Count("id"), right=Count("id", filter=Q(verdict=F("item__gold_verdict"))))
    )
    return {row["annotator_id"]: (row["n"], row["right"]) for row in rows}


def annotator_stats(*, queue: AnnotationQueue, total: int | None = None) -> list[dict[str, Any]]:
    """Per annotator: labels submitted, time per item, throughput, and accuracy on gold items
    (verdicts equal to the known one): a GROUP BY over the queue's submitted labels, read from
    the `label_throughput` index."""
    span = _item_range(queue, total)
    labels = Label.objects.filter(status=LabelStatus.SUBMITTED)
    if span is not None:
        # "Any user" first: one seek per user into the (annotator, status, item) index for the
        # queue's item range, read in annotator order (no sort for the GROUP BY, no join).
        users = get_user_model().objects.values("pk")
        labels = labels.filter(annotator__in=users, item_id__gte=span[0], item_id__lte=span[1])
    else:
        labels = labels.filter(item__queue=queue)
    # Counting a column of the index (not the id, which a PostgreSQL index does not hold)
    # lets the whole GROUP BY be an index-only scan, whatever the length of the label rows.
    rows = (
        labels.values("annotator_id")
        .annotate(
            submitted=Count("annotator_id"),
            total_seconds=Sum("seconds"),
            first=Min("submitted_at"),
            last=Max("submitted_at"),
            accepted=Count("annotator_id", filter=Q(verdict="accept")),
            edited=Count("annotator_id", filter=Q(edited=True)),
            flagged=Count("annotator_id", filter=Q(flagged=True)),
        )
        .order_by("-submitted")
    )
    gold = _gold_counts(queue)
    names = _usernames(r["annotator_id"] for r in rows)
    out = []
    for row in rows:
        span = (row["last"] - row["first"]).total_seconds() if row["first"] else 0.0
        worked = max(span, row["total_seconds"] or 0.0)
        seen, right = gold.get(row["annotator_id"], (0, 0))
        out.append(
            {
                **row,
                "name": names.get(row["annotator_id"], f"#{row['annotator_id']}"),
                "mean_seconds": (row["total_seconds"] or 0.0) / row["submitted"],
                "per_hour": row["submitted"] * 3600 / worked if worked > 0 else None,
                "gold": seen,
                "gold_right": right,
                "gold_accuracy": right / seen if seen else None,
            }
        )
    return out


def gold_accuracy(stats: list[dict[str, Any]]) -> float | None:
    """Share of gold-item verdicts equal to the known one, over all annotators."""
    seen = sum(s["gold"] for s in stats)
    return sum(s["gold_right"] for s in stats) / seen if seen else None


def queue_dashboard(*, queue: AnnotationQueue) -> dict[str, Any]:
    """Everything the queue dashboard shows (see the module docstring for its cost)."""
    progress = queue_progress(queue=queue)
    stats = annotator_stats(queue=queue, total=progress["total"])
    return {
        "progress": progress,
        "annotators": stats,
        "gold_accuracy": gold_accuracy(stats),
        "agreement": queue_agreement(queue=queue),
        "agreement_limit": MAX_ITEMS,
    }
