"""Promote: a queue's accepted items become a cold-start dataset version.

An item is promoted when its final label accepts it: `item.resolved` (written on review) with
verdict accept, or, in a queue with overlap 1, its one submitted label accepting it. Each becomes
a row with `problem`, `think`, `answer`, `reference`, `source` and `messages` (TRL's
conversational format: the user's problem, then the assistant's completion), which the SFT
stage reads as is. The completion is `<think>…</think><answer>…</answer>` by default, or with
`readable=True` the R1 paper's readable format for cold-start data,
`|special_token|<reasoning_process>|special_token|<summary>`: the reasoning, then a summary.

The version is written by `version_write` (provenance "annotation": the queue, the guideline
versions and the annotators of the promoted labels), so it is then named `dataset:NAME@N`
like any other version.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied

from pipeline.data import think_answer_text
from pipeline.template import make_conversation
from r1studio.core.roles import RESEARCHER, user_has_role
from r1studio.curation.annotation.models import (
    AnnotationItem,
    AnnotationQueue,
    Label,
    LabelStatus,
    Verdict,
)
from r1studio.curation.annotation.services import AnnotationError
from r1studio.curation.models import DatasetKind, DatasetVersion
from r1studio.curation.services import dataset_get_or_create, version_write

SPECIAL_TOKEN = "|special_token|"
BATCH = 1000


def readable_text(think: str, answer: str, token: str = SPECIAL_TOKEN) -> str:
    """The paper's readable cold-start format: reasoning, then a summary, each after the token.

    >>> readable_text("2+2 is 4.", "The answer is 4.")
    '|special_token|2+2 is 4.|special_token|The answer is 4.'
    """
    return f"{token}{think}{token}{answer}"


def promote_row(
    data: dict[str, Any], think: str, answer: str, *, readable: bool = False
) -> dict[str, Any]:
    """One row of the promoted version (see the module docstring)."""
    problem = data.get("problem") or ""
    assistant = readable_text(think, answer) if readable else think_answer_text(think, answer)
    return {
        "problem": problem,
        "think": think,
        "answer": answer,
        "reference": data.get("reference") or "",
        "source": data.get("source") or "",
        "messages": [
            *make_conversation(problem, system_prompt=None),
            {"role": "assistant", "content": assistant},
        ],
    }


def _accepted(queue: AnnotationQueue) -> Iterator[tuple[AnnotationItem, dict[str, Any]]]:
    """(item, final label values with its guidelines and annotators), in queue order."""
    items = AnnotationItem.objects.filter(queue=queue).order_by("position")
    resolved = items.filter(resolved__isnull=False)
    for item in resolved.iterator(chunk_size=BATCH):
        final = item.resolved or {}
        if final.get("verdict") == Verdict.ACCEPT:
            yield item, final
    if queue.overlap != 1:
        return
    single = Label.objects.filter(
        item__queue=queue,
        item__resolved__isnull=True,
        status=LabelStatus.SUBMITTED,
        verdict=Verdict.ACCEPT,
    ).select_related("item")
    for label in single.order_by("item__position").iterator(chunk_size=BATCH):
        yield (
            label.item,
            {
                "think": label.think,
                "answer": label.answer,
                "guidelines": [label.guideline],
                "annotators": [label.annotator_id],
            },
        )


def queue_promote(
    *, queue: AnnotationQueue, user: Any, dataset_name: str, readable: bool = False
) -> DatasetVersion:
    """Write the accepted items of `queue` as a new version of `dataset_name` (made, of kind
    cold-start, when it does not exist)."""
    if not user_has_role(user, RESEARCHER):
        raise PermissionDenied("Promotion is done by researchers.")
    rows: list[dict[str, Any]] = []
    guidelines: set[int] = set()
    annotators: set[int] = set()
    item_ids: list[int] = []
    for item, final in _accepted(queue):
        rows.append(promote_row(item.data, final["think"], final["answer"], readable=readable))
        guidelines.update(final.get("guidelines") or [])
        annotators.update(final.get("annotators") or [])
        item_ids.append(item.pk)
    if not rows:
        raise AnnotationError("no accepted items yet: review the queue or wait for its labels")
    dataset = dataset_get_or_create(user=user, name=dataset_name, kind=DatasetKind.COLD_START)
    User = get_user_model()
    names = sorted(
        User.objects.filter(pk__in=annotators).values_list(User.USERNAME_FIELD, flat=True)
    )
    provenance = {
        "queue": queue.pk,
        "queue_name": queue.name,
        "guidelines": sorted(guidelines),
        "annotators": names,
        "items": len(rows),
        "format": "readable" if readable else "think-answer",
        "source_version": queue.source_version.ref if queue.source_version_id else None,
    }
    return version_write(
        dataset=dataset,
        table=pa.Table.from_pylist(rows),
        user=user,
        provenance_type="annotation",
        provenance=provenance,
    )
