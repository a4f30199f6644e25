"""Making annotation queues (from a version, from traces), and who sees which queue."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from r1studio.curation.annotation.models import AnnotationItem, AnnotationQueue
from r1studio.curation.annotation.queues import queue_create
from r1studio.curation.annotation.services import AnnotationError
from tests.studio.curation.queue_helpers import add_samples, make_queue, make_run, make_version
from tests.studio.traces.conftest import sample


@pytest.mark.django_db
def test_it_makes_a_queue_from_a_dataset_version(researcher, annotator, data_dir):
    queue = make_queue(
        researcher,
        annotators=[annotator],
        overlap=2,
        guidelines="# Accept\nCorrect, readable traces.",
        questions={"rating": False, "tags": "language-mix, verbose"},
        gold={2: "reject"},
    )

    items = list(queue.items.order_by("position"))
    assert [i.position for i in items] == [1, 2, 3]
    first, second, third = items
    assert first.data["think"] == "Two and two.\n\nThat makes 4." and first.data["answer"] == "4"
    assert first.data["problem"] == "What is 2+2?" and first.data["source"] == "toy"
    assert first.data["checks"]["format_valid"] is True
    assert first.data["checks"]["verifier"] == 1.0
    assert first.data["checks"]["longest_paragraph"] == len("That makes 4.")
    assert second.data["checks"]["verifier"] == 0.0
    assert third.data["completion"] == "" and third.data["checks"]["verifier"] == 1.0, third.data
    # Completions of one prompt share a group; gold from the form and from the rows.
    assert first.group_key == second.group_key != third.group_key
    assert [i.gold_verdict for i in items] == ["", "reject", "accept"]
    assert queue.guidelines.get().number == 1
    assert queue.questions == {
        "verdict": True,
        "edit": True,
        "rating": False,
        "note": True,
        "tags": ["language-mix", "verbose"],
    }
    assert list(queue.annotators.all()) == [annotator]


@pytest.mark.django_db
def test_it_makes_a_queue_from_a_trace_selection(researcher):
    run = make_run(researcher)
    group = [
        sample("What is 2+3?", accuracy=1.0, advantage=0.7),
        sample("What is 2+3?", "<think>2+3 is 6</think> <answer>6</answer>", accuracy=0.0),
        sample("What is 2+3?", accuracy=1.0, advantage=0.2),
    ]
    add_samples(run, 4, group)
    add_samples(run, 5, [sample("What is 1+1?", accuracy=1.0)])

    queue = queue_create(
        user=researcher,
        name="R1-Zero's correct samples",
        trace_filters={"run_id": run.pk, "correct": True},
    )

    items = list(queue.items.all())
    assert len(items) == 3  # the wrong completion is not selected
    at_step_4 = [i for i in items if i.data["step"] == 4]
    assert len(at_step_4) == 2 and at_step_4[0].group_key == at_step_4[1].group_key
    assert {i.data["advantage"] for i in at_step_4} == {0.7, 0.2}
    assert at_step_4[0].data["rewards"]["accuracy"] == 1.0
    assert at_step_4[0].data["problem"] == "What is 2+3?"
    assert at_step_4[0].data["checks"]["verifier"] == 1.0
    assert at_step_4[0].source_ref.startswith("trace:")
    assert queue.source_filters["correct"] is True


@pytest.mark.django_db
def test_it_keeps_to_the_limit_and_refuses_an_empty_selection(researcher, data_dir):
    version = make_version(researcher)
    queue = queue_create(user=researcher, name="two", version=version, limit=2)
    assert queue.items.count() == 2 and queue.source_filters == {"limit": 2}

    with pytest.raises(AnnotationError):
        queue_create(user=researcher, name="none", trace_filters={"step_min": 10_000})
    assert not AnnotationQueue.objects.filter(name="none").exists()


@pytest.mark.django_db
def test_it_refuses_users_without_a_role_and_annotators_making_queues(
    researcher, annotator, data_dir
):
    nobody = get_user_model().objects.create_user("nobody")
    version = make_version(researcher)
    with pytest.raises(AnnotationError):
        queue_create(user=researcher, name="q", version=version, annotators=[nobody])
    with pytest.raises(PermissionDenied):
        queue_create(user=annotator, name="q", version=version)


@pytest.mark.django_db
def test_the_new_queue_form_makes_a_queue(researcher_client, researcher, annotator, data_dir):
    version = make_version(researcher)
    response = researcher_client.post(
        reverse("curation:queue_new"),
        {
            "name": "from the form",
            "source": "version",
            "version": version.pk,
            "limit": 10,
            "ask_verdict": "on",
            "ask_edit": "on",
            "tags": "",
            "overlap": 2,
            "lease_minutes": 30,
            "language": "en",
            "annotators": [annotator.pk],
            "gold": "1 accept",
        },
    )
    queue = AnnotationQueue.objects.get(name="from the form")
    assert response.status_code == 302
    assert response["Location"] == reverse("curation:queue", args=[queue.pk])
    assert queue.items.count() == 3 and queue.overlap == 2
    assert queue.items.get(position=1).gold_verdict == "accept"
    assert queue.questions["rating"] is False


@pytest.mark.django_db
def test_the_new_queue_form_takes_trace_filters(researcher_client, researcher):
    run = make_run(researcher)
    add_samples(run, 1, [sample(accuracy=1.0), sample("What is 9+9?", accuracy=0.0)])
    page = researcher_client.get(reverse("curation:queue_new") + f"?source=traces&t-run={run.pk}")
    assert page.status_code == 200
    response = researcher_client.post(
        reverse("curation:queue_new"),
        {
            "name": "wrong ones",
            "source": "traces",
            "t-run": run.pk,
            "t-correct": "no",
            "limit": 100,
            "ask_verdict": "on",
            "overlap": 1,
            "lease_minutes": 30,
            "language": "en",
        },
    )
    assert response.status_code == 302
    queue = AnnotationQueue.objects.get(name="wrong ones")
    assert [i.data["problem"] for i in queue.items.all()] == ["What is 9+9?"]


@pytest.mark.django_db
def test_an_annotator_sees_only_the_queues_assigned(client, make_user, researcher, data_dir):
    ada, bo = make_user("annotator"), make_user("annotator")
    version = make_version(researcher)
    mine = make_queue(researcher, annotators=[ada], name="for ada", version=version)
    make_queue(researcher, annotators=[bo], name="for bo", version=version)
    client.force_login(ada)

    page = client.get(reverse("curation:annotate")).content.decode()

    assert "for ada" in page and "for bo" not in page
    assert reverse("curation:label", args=[mine.pk]) in page
    assert "0 / 3" in page  # progress: items done of all


@pytest.mark.django_db
def test_annotators_get_403_on_the_researchers_queue_pages(annotator_client, researcher, data_dir):
    queue = make_queue(researcher, annotators=[])
    item = AnnotationItem.objects.filter(queue=queue).first()
    pages = [
        reverse("curation:queues"),
        reverse("curation:queue_new"),
        reverse("curation:queue", args=[queue.pk]),
        reverse("curation:review", args=[queue.pk]),
        reverse("curation:review_item", args=[queue.pk, item.pk]),
    ]
    for url in pages:
        assert annotator_client.get(url).status_code == 403, url
    actions = [
        "queue_guidelines",
        "queue_settings",
        "queue_gold",
        "queue_promote",
        "review_agreeing",
    ]
    for name in actions:
        url = reverse(f"curation:{name}", args=[queue.pk])
        assert annotator_client.post(url).status_code == 403, url


@pytest.mark.django_db
def test_the_researcher_pages_render(researcher_client, researcher, annotator, data_dir):
    queue = make_queue(researcher, annotators=[annotator], overlap=2)
    for url in (
        reverse("curation:queues"),
        reverse("curation:queue_new"),
        reverse("curation:queue", args=[queue.pk]),
        reverse("curation:review", args=[queue.pk]),
    ):
        response = researcher_client.get(url)
        assert response.status_code == 200, url
        assert b"<script>" not in response.content  # no inline scripts under the CSP


@pytest.mark.django_db
def test_editing_the_guidelines_publishes_a_new_version(researcher_client, researcher, data_dir):
    queue = make_queue(researcher, annotators=[], guidelines="v1")
    url = reverse("curation:queue_guidelines", args=[queue.pk])
    researcher_client.post(url, {"text": "v2: reject language mixing"})
    researcher_client.post(url, {"text": "v2: reject language mixing"})  # unchanged: no v3
    assert list(queue.guidelines.values_list("number", "text")) == [
        (2, "v2: reject language mixing"),
        (1, "v1"),
    ]


@pytest.mark.django_db
def test_settings_and_gold_change_the_queue(researcher_client, researcher, make_user, data_dir):
    ada = make_user("annotator")
    queue = make_queue(researcher, annotators=[])
    researcher_client.post(
        reverse("curation:queue_settings", args=[queue.pk]),
        {"annotators": [ada.pk], "lease_minutes": 10},
    )
    researcher_client.post(reverse("curation:queue_gold", args=[queue.pk]), {"gold": "1 reject"})
    queue.refresh_from_db()
    assert list(queue.annotators.all()) == [ada] and queue.lease_seconds == 600
    assert queue.items.get(position=1).gold_verdict == "reject"
