"""How well annotators agree, and how they do on gold items: the queue dashboard's figures.

Chance-corrected agreement comes from nltk's `AnnotationTask` (Apache-2.0), not from formulas
of our own: Krippendorff's alpha with the nominal distance for verdicts and the interval
distance (squared difference) for 1-5 ratings (nltk has no ordinal metric; the rating points are
equally spaced), and Cohen's kappa for each pair of annotators on the items both labelled.

Only submitted labels count, per guideline version (a label made under version 2 is not
compared with one made under version 1), and only on a bounded sample: the first
`MAX_ITEMS` items (by position) that at least two annotators submitted. The dashboard of a
100k-item queue thus reads at most a few thousand labels for agreement; everything else on it is
a SQL count or a GROUP BY annotator.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, F, Max, Min, Q, Sum
from django.utils import timezone

from r1studio.curation.annotation.models import (
    AnnotationItem,
    AnnotationQueue,
    Label,
    LabelStatus,
    Lease,
)

MAX_ITEMS = 2000  # items whose labels are compared, per queue
MAX_PAIRS = 30  # annotator pairs shown with their kappa (those sharing the most items)
MIN_SHARED = 2  # items two annotators must share for a kappa

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


def _sample_labels(queue: AnnotationQueue) -> list[dict[str, Any]]:
    """Submitted labels of the first MAX_ITEMS items at least two annotators submitted."""
    items = AnnotationItem.objects.filter(queue=queue, labels_done__gte=2).order_by("position")
    ids = list(items.values_list("pk", flat=True)[:MAX_ITEMS])
    return list(
        Label.objects.filter(item_id__in=ids, status=LabelStatus.SUBMITTED).values(
            "item_id", "annotator_id", "guideline", "verdict", "rating"
        )
    )


def queue_agreement(*, queue: AnnotationQueue) -> list[dict[str, Any]]:
    """Per guideline version: items compared, alpha of verdicts and of ratings, pair kappas."""
    labels = _sample_labels(queue)
    names = _usernames({row["annotator_id"] for row in labels})
    by_version: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in labels:
        by_version[row["guideline"]].append(row)
    out = []
    for number in sorted(by_version):
        rows = by_version[number]
        verdicts = [(r["annotator_id"], r["item_id"], r["verdict"]) for r in rows]
        ratings = [(r["annotator_id"], r["item_id"], r["rating"]) for r in rows]
        compared = {t[1] for t in _multiply_coded(verdicts)}
        pairs = kappa_pairs(verdicts)
        for pair in pairs:
            pair["a"], pair["b"] = names.get(pair["a"], pair["a"]), names.get(pair["b"], pair["b"])
        out.append(
            {
                "guideline": number,
                "items": len(compared),
                "labels": len(rows),
                "verdict_alpha": alpha_nominal(verdicts),
                "rating_alpha": alpha_interval(ratings),
                "pairs": pairs,
            }
        )
    return out


def _usernames(ids: Iterable[int]) -> dict[int, str]:
    User = get_user_model()
    return dict(User.objects.filter(pk__in=list(ids)).values_list("pk", User.USERNAME_FIELD))


def queue_progress(*, queue: AnnotationQueue) -> dict[str, int]:
    """Items (total, done: labelled `overlap` times, started) and labels by status."""
    items = AnnotationItem.objects.filter(queue=queue).aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(labels_done__gte=queue.overlap)),
        started=Count("id", filter=Q(labels_done__gt=0)),
        gold=Count("id", filter=~Q(gold_verdict="")),
        resolved=Count("id", filter=Q(resolved__isnull=False)),
    )
    by_status = dict(
        Label.objects.filter(item__queue=queue)
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    leases = Lease.objects.filter(item__queue=queue, expires_at__gt=timezone.now()).count()
    return {
        **items,
        "submitted": by_status.get(LabelStatus.SUBMITTED, 0),
        "drafts": by_status.get(LabelStatus.DRAFT, 0),
        "skipped": by_status.get(LabelStatus.SKIPPED, 0),
        "leased": leases,
        "labels_wanted": items["total"] * queue.overlap,
    }


def annotator_stats(*, queue: AnnotationQueue) -> list[dict[str, Any]]:
    """Per annotator: labels submitted, time per item, throughput, and accuracy on gold items
    (verdicts equal to the known one), in one GROUP BY over the queue's submitted labels."""
    gold = ~Q(item__gold_verdict="")
    rows = (
        Label.objects.filter(item__queue=queue, status=LabelStatus.SUBMITTED)
        .values("annotator_id")
        .annotate(
            submitted=Count("id"),
            total_seconds=Sum("seconds"),
            mean_seconds=Avg("seconds"),
            first=Min("submitted_at"),
            last=Max("submitted_at"),
            accepted=Count("id", filter=Q(verdict="accept")),
            edited=Count("id", filter=Q(edited=True)),
            flagged=Count("id", filter=Q(flagged=True)),
            gold=Count("id", filter=gold),
            gold_right=Count("id", filter=gold & Q(verdict=F("item__gold_verdict"))),
        )
        .order_by("-submitted")
    )
    names = _usernames(r["annotator_id"] for r in rows)
    out = []
    for row in rows:
        span = (row["last"] - row["first"]).total_seconds() if row["first"] else 0.0
        worked = max(span, row["total_seconds"] or 0.0)
        out.append(
            {
                **row,
                "name": names.get(row["annotator_id"], f"#{row['annotator_id']}"),
                "per_hour": row["submitted"] * 3600 / worked if worked > 0 else None,
                "gold_accuracy": row["gold_right"] / row["gold"] if row["gold"] else None,
            }
        )
    return out


def gold_accuracy(stats: list[dict[str, Any]]) -> float | None:
    """Share of gold-item verdicts equal to the known one, over all annotators."""
    seen = sum(s["gold"] for s in stats)
    return sum(s["gold_right"] for s in stats) / seen if seen else None


def queue_dashboard(*, queue: AnnotationQueue) -> dict[str, Any]:
    """Everything the queue dashboard shows (see the module docstring for its cost)."""
    stats = annotator_stats(queue=queue)
    return {
        "progress": queue_progress(queue=queue),
        "annotators": stats,
        "gold_accuracy": gold_accuracy(stats),
        "agreement": queue_agreement(queue=queue),
        "agreement_limit": MAX_ITEMS,
    }
