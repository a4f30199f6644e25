"""Promote: accepted items become a cold-start dataset version with rows and provenance."""

from __future__ import annotations

import pytest
from django.urls import reverse

from r1studio.curation import storage
from r1studio.curation.annotation.promote import queue_promote
from r1studio.curation.annotation.review import item_resolve
from r1studio.curation.annotation.services import AnnotationError
from r1studio.curation.models import DatasetVersion
from tests.studio.curation.queue_helpers import label_item, make_queue, make_version

ROWS = [
    {"problem": "What is 2+2?", "think": "2 and 2 make 4.", "answer": "4", "reference": "4"},
    {"problem": "What is 3+3?", "think": "3 and 3 make 7.", "answer": "7", "reference": "6"},
    {"problem": "What is 4+4?", "think": "4 and 4 make 8.", "answer": "8", "reference": "8"},
]


@pytest.mark.django_db
def test_single_accepts_become_rows_with_messages_and_provenance(researcher, make_user, data_dir):
    ada = make_user("annotator", username="ada")
    queue = make_queue(researcher, annotators=[ada], version=make_version(researcher, ROWS))
    first, second, third = queue.items.order_by("position")
    label_item(first, ada, verdict="accept", think="2 and 2 make 4.\n\nSo 4.")
    label_item(second, ada, verdict="reject")
    label_item(third, ada, verdict="accept")

    version = queue_promote(queue=queue, user=researcher, dataset_name="cold-start")

    rows = storage.parquet_open(version.path).read().to_pylist()
    assert version.dataset.kind == "cold-start" and version.ref == "dataset:cold-start@1"
    assert [r["problem"] for r in rows] == ["What is 2+2?", "What is 4+4?"]
    assert rows[0] == {
        "problem": "What is 2+2?",
        "think": "2 and 2 make 4.\n\nSo 4.",
        "answer": "4",
        "reference": "4",
        "source": "",
        "messages": [
            {"role": "user", "content": "What is 2+2?"},
            {
                "role": "assistant",
                "content": "<think>2 and 2 make 4.\n\nSo 4.</think><answer>4</answer>",
            },
        ],
    }
    assert version.provenance_type == "annotation"
    assert version.provenance["queue"] == queue.pk
    assert version.provenance["guidelines"] == [1]
    assert version.provenance["annotators"] == ["ada"]
    assert version.provenance["items"] == 2


@pytest.mark.django_db
def test_with_overlap_only_resolved_accepts_are_promoted_in_the_readable_format(
    researcher, make_user, data_dir
):
    a, b = make_user("annotator", username="ann-a"), make_user("annotator", username="ann-b")
    queue = make_queue(
        researcher, annotators=[a, b], overlap=2, version=make_version(researcher, ROWS)
    )
    first, second, _ = queue.items.order_by("position")
    label_item(first, a, verdict="accept", answer="The answer is 4.")
    label_item(first, b, verdict="reject")
    label_item(second, a, verdict="accept")
    label_item(second, b, verdict="accept")  # agreed, but not resolved: not promoted
    with pytest.raises(AnnotationError):
        queue_promote(queue=queue, user=researcher, dataset_name="cs")

    picked = first.labels.get(annotator=a)
    item_resolve(item=first, user=researcher, choices={"label": picked.pk})
    version = queue_promote(queue=queue, user=researcher, dataset_name="cs", readable=True)

    [row] = storage.parquet_open(version.path).read().to_pylist()
    assert row["messages"][-1]["content"] == (
        "|special_token|2 and 2 make 4.|special_token|The answer is 4."
    )
    assert version.provenance["annotators"] == ["ann-a", "ann-b"]
    assert version.provenance["format"] == "readable"


@pytest.mark.django_db
def test_the_promote_button_makes_a_version(researcher_client, researcher, make_user, data_dir):
    ada = make_user("annotator")
    queue = make_queue(researcher, annotators=[ada], version=make_version(researcher, ROWS))
    label_item(queue.items.get(position=1), ada, verdict="accept")

    response = researcher_client.post(
        reverse("curation:queue_promote", args=[queue.pk]), {"dataset_name": "cold-start"}
    )

    assert response.status_code == 302
    version = DatasetVersion.objects.get(dataset__name="cold-start")
    assert version.rows == 1 and version.provenance["queue"] == queue.pk
