"""Review: items whose labels disagree, shown side by side, and the final label a researcher picks.

An item needs review when at least two annotators submitted labels for it, it has no final
label yet (`item.resolved`), and the labels disagree: different verdicts, ratings two or more
apart, or different edits. Verdicts, ratings and whether a label was edited are compared in SQL
(one GROUP BY over the labels of multiply-labelled items); only items where two or more labels
were edited have their texts compared, in Python.

`item_resolve` writes the final label (one picked, or a merge of verdict, rating, think and
answer taken from different labels) into `item.resolved`, with the checks of the final text;
`items_resolve_agreeing` does it at once for every item whose labels all agree.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, IntegerField, Max, Min, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from pipeline.checks_text import r1_checks
from r1studio.core.roles import RESEARCHER, user_has_role
from r1studio.curation.annotation.models import (
    AnnotationItem,
    AnnotationQueue,
    Label,
    LabelStatus,
    Verdict,
)
from r1studio.curation.annotation.services import AnnotationError
from r1studio.traces.text import diff_stats, word_diff

PAGE = 50
RATING_SPREAD = 2  # ratings this far apart disagree
SCAN = 2000  # multiply-labelled items compared per pass
MAX_PASSES = 10  # passes per page request; the page then ends where it got to


def _grouped(item_ids: list[int]) -> list[dict[str, Any]]:
    return list(
        Label.objects.filter(item_id__in=item_ids, status=LabelStatus.SUBMITTED)
        .values("item_id")
        .annotate(
            n=Count("id"),
            verdicts=Count("verdict", distinct=True),
            low=Min("rating"),
            high=Max("rating"),
            edited=Sum(Cast("edited", IntegerField())),
        )
    )


def _texts_differ(item_ids: list[int]) -> set[int]:
    """Of items with two or more edited labels, those whose labels' texts differ."""
    texts: dict[int, set[tuple[str, str]]] = defaultdict(set)
    rows = Label.objects.filter(item_id__in=item_ids, status=LabelStatus.SUBMITTED).values_list(
        "item_id", "think", "answer"
    )
    for item_id, think, answer in rows:
        texts[item_id].add((think, answer))
    return {item_id for item_id, seen in texts.items() if len(seen) > 1}


def disagreement(rows: list[dict[str, Any]]) -> dict[int, list[str]]:
    """{item id: reasons} for the grouped label rows that disagree."""
    out: dict[int, list[str]] = {}
    maybe_texts = []
    for row in rows:
        if row["n"] < 2:
            continue
        reasons = []
        if row["verdicts"] > 1:
            reasons.append("verdict")
        if row["low"] is not None and row["high"] - row["low"] >= RATING_SPREAD:
            reasons.append("rating")
        edited = row["edited"] or 0
        if 0 < edited < row["n"]:
            reasons.append("edit")
        elif edited >= 2:
            maybe_texts.append(row["item_id"])
        if reasons:
            out[row["item_id"]] = reasons
    for item_id in _texts_differ(maybe_texts):
        out.setdefault(item_id, []).append("edit")
    return out


def review_page(
    *, queue: AnnotationQueue, after: int = 0, limit: int = PAGE
) -> tuple[list[dict[str, Any]], int | None]:
    """Items to review after position `after`, in order, and where the next page starts
    (None at the end). A request compares at most MAX_PASSES * SCAN multiply-labelled items,
    so a page of a queue that mostly agrees may hold fewer than `limit` items (or none)."""
    found: list[dict[str, Any]] = []
    candidates = AnnotationItem.objects.filter(
        queue=queue, labels_done__gte=2, resolved__isnull=True
    ).order_by("position")
    cursor = after
    for _ in range(MAX_PASSES):
        if len(found) >= limit:
            break
        chunk = list(candidates.filter(position__gt=cursor).values_list("pk", "position")[:SCAN])
        if not chunk:
            break
        reasons = disagreement(_grouped([pk for pk, _ in chunk]))
        for pk, position in chunk:
            cursor = position
            if pk in reasons:
                found.append({"item_id": pk, "position": position, "reasons": reasons[pk]})
                if len(found) == limit:
                    break
    items = AnnotationItem.objects.in_bulk([f["item_id"] for f in found])
    for entry in found:
        entry["item"] = items[entry["item_id"]]
    more = candidates.filter(position__gt=cursor).exists()
    return found, cursor if more else None


def item_needs_review(item: AnnotationItem) -> list[str]:
    """Why the item's labels disagree (empty: they agree, or fewer than two)."""
    return disagreement(_grouped([item.pk])).get(item.pk, [])


def item_review(*, item: AnnotationItem) -> dict[str, Any]:
    """The item's submitted labels side by side, each text with its word diff against the
    original (the item as served)."""
    original_think = item.data.get("think") or ""
    original_answer = item.data.get("answer") or ""
    labels = list(
        item.labels.filter(status=LabelStatus.SUBMITTED)
        .select_related("annotator")
        .order_by("submitted_at", "id")
    )
    out = []
    for label in labels:
        think_diff = word_diff(original_think, label.think) if label.think != original_think else []
        answer_diff = (
            word_diff(original_answer, label.answer) if label.answer != original_answer else []
        )
        out.append(
            {
                "label": label,
                "think_diff": think_diff,
                "answer_diff": answer_diff,
                "think_stats": diff_stats(think_diff),
                "answer_stats": diff_stats(answer_diff),
            }
        )
    return {"item": item, "labels": out, "reasons": item_needs_review(item)}


def _label_of(item: AnnotationItem, label_id: Any) -> Label:
    label = item.labels.filter(pk=label_id, status=LabelStatus.SUBMITTED).first()
    if label is None:
        raise AnnotationError({"label": f"no submitted label {label_id} on this item"})
    return label


def item_resolve(*, item: AnnotationItem, user: Any, choices: dict[str, Any]) -> AnnotationItem:
    """Write the item's final label. `choices` names, for each of verdict, rating, think and
    answer, the id of the label to take it from (`{"verdict": 3, "think": 5, ...}`); a missing
    field comes from the `label` entry (the label picked whole). Tags and notes are merged."""
    if not user_has_role(user, RESEARCHER):
        raise PermissionDenied("Reviews are done by researchers.")
    picked = choices.get("label")
    fields = ("verdict", "rating", "think", "answer")
    sources = {name: choices.get(name) or picked for name in fields}
    if not all(sources.values()):
        raise AnnotationError("pick a label, or a label for each of verdict, rating, think, answer")
    labels = {pk: _label_of(item, pk) for pk in {str(v) for v in sources.values()}}
    final = {name: getattr(labels[str(sources[name])], name) for name in fields}
    if final["verdict"] not in Verdict.values:
        raise AnnotationError({"verdict": "the final label needs a verdict"})
    submitted = list(item.labels.filter(status=LabelStatus.SUBMITTED))
    resolved = {
        **final,
        "tags": sorted({t for label in submitted for t in (label.tags or [])}),
        "note": "\n".join(label.note for label in submitted if label.note),
        "from": {name: int(sources[name]) for name in fields},
        "labels": [label.pk for label in submitted],
        "guidelines": sorted({label.guideline for label in submitted}),
        "annotators": sorted({label.annotator_id for label in submitted}),
        "by": user.pk,
        "at": timezone.now().isoformat(),
        "checks": r1_checks(
            think=final["think"],
            answer=final["answer"],
            reference=item.data.get("reference") or None,
            language=(item.data.get("checks") or {}).get("language", "en"),
        ),
    }
    AnnotationItem.objects.filter(pk=item.pk).update(resolved=resolved)
    item.resolved = resolved
    return item


def items_resolve_agreeing(*, queue: AnnotationQueue, user: Any) -> int:
    """Resolve every unresolved item labelled `overlap` times whose labels all agree (same
    verdict, ratings within the spread, same text): the final label is the first one.
    Returns how many items were resolved."""
    if not user_has_role(user, RESEARCHER):
        raise PermissionDenied("Reviews are done by researchers.")
    done = 0
    cursor = 0
    candidates = AnnotationItem.objects.filter(
        queue=queue, labels_done__gte=max(queue.overlap, 2), resolved__isnull=True
    ).order_by("position")
    while True:
        chunk = list(candidates.filter(position__gt=cursor).values_list("pk", "position")[:SCAN])
        if not chunk:
            return done
        cursor = chunk[-1][1]
        ids = [pk for pk, _ in chunk]
        disagreeing = disagreement(_grouped(ids))
        agreeing = [pk for pk in ids if pk not in disagreeing]
        first: dict[int, Label] = {}
        for label in Label.objects.filter(
            item_id__in=agreeing, status=LabelStatus.SUBMITTED
        ).order_by("submitted_at", "id"):
            first.setdefault(label.item_id, label)
        with transaction.atomic():
            for item in AnnotationItem.objects.filter(pk__in=list(first)):
                label = first[item.pk]
                if label.verdict:
                    item_resolve(item=item, user=user, choices={"label": label.pk})
                    done += 1
