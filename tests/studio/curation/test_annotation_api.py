"""The annotation API: next item → label → save → 409; who may call what; promotion; and the
leasing guarantees over HTTP with twenty annotators asking at once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from r1studio.api.services import api_token_create
from r1studio.curation.annotation.models import AnnotationItem, AnnotationQueue, Label, Lease
from r1studio.curation.annotation.services import guideline_publish


def make_queue(owner: Any, *, items: int, overlap: int, annotators: list) -> AnnotationQueue:
    queue = AnnotationQueue.objects.create(name="q", overlap=overlap, created_by=owner)
    queue.annotators.set(annotators)
    AnnotationItem.objects.bulk_create(
        AnnotationItem(
            queue=queue,
            position=i,
            data={"problem": f"p{i}", "reference": "4", "think": "2+2=4", "answer": "4"},
        )
        for i in range(items)
    )
    return queue


class Api:
    """A client that speaks to the API with a user's bearer token."""

    def __init__(self, user: Any) -> None:
        _, token = api_token_create(user=user, name="test")
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def post(self, url: str, body: Any = None) -> Any:
        data = json.dumps(body) if body is not None else ""
        return self.client.post(f"/api{url}", data=data, content_type="application/json")

    def put(self, url: str, body: Any) -> Any:
        return self.client.put(f"/api{url}", data=json.dumps(body), content_type="application/json")

    def get(self, url: str) -> Any:
        return self.client.get(f"/api{url}")


@pytest.mark.django_db
def test_it_leases_an_item_with_its_label_and_saves_it_once_per_version(researcher, annotator):
    queue = make_queue(researcher, items=2, overlap=1, annotators=[annotator])
    guideline_publish(queue=queue, user=researcher, text="Accept correct, readable traces.")
    api = Api(annotator)

    response = api.post(f"/queues/{queue.pk}/next")
    assert response.status_code == 200, response.content
    item = response.json()
    assert item["fields"]["problem"] == "p0" and item["position"] == 0
    assert item["guideline"] == {"number": 1, "text": "Accept correct, readable traces."}
    label = item["label"]
    assert label["status"] == "draft" and label["think"] == "2+2=4" and label["guideline"] == 1
    assert "gold_verdict" not in item and "gold_verdict" not in item["fields"]

    draft = {"version": label["version"], "verdict": "accept", "think": "2 + 2 = 4", "rating": 4}
    saved = api.put(f"/labels/{label['id']}", draft)
    assert saved.status_code == 200, saved.content
    assert saved.json()["version"] == label["version"] + 1 and saved.json()["edited"] is True

    stale = api.put(f"/labels/{label['id']}", {**draft, "verdict": "reject"})  # same version
    assert stale.status_code == 409
    assert stale.json()["current"]["verdict"] == "accept"
    assert stale.json()["current"]["version"] == label["version"] + 1
    assert Label.objects.get(pk=label["id"]).verdict == "accept"  # not overwritten

    submitted = api.put(
        f"/labels/{label['id']}", {"version": saved.json()["version"], "submit": True}
    )
    assert submitted.status_code == 200 and submitted.json()["status"] == "submitted"
    assert AnnotationItem.objects.get(pk=item["id"]).labels_done == 1

    second = api.post(f"/queues/{queue.pk}/next")
    assert second.status_code == 200 and second.json()["fields"]["problem"] == "p1"
    api.put(
        f"/labels/{second.json()['label']['id']}",
        {"version": second.json()["label"]["version"], "verdict": "reject", "submit": True},
    )
    assert api.post(f"/queues/{queue.pk}/next").status_code == 204  # nothing left


@pytest.mark.django_db
def test_it_refuses_bad_label_values(researcher, annotator):
    queue = make_queue(researcher, items=1, overlap=1, annotators=[annotator])
    api = Api(annotator)
    label = api.post(f"/queues/{queue.pk}/next").json()["label"]
    url = f"/labels/{label['id']}"
    version = label["version"]
    for body in (
        {"version": version, "rating": 6},
        {"version": version, "verdict": "maybe"},
        {"version": version, "note": "a\x00b"},
        {"version": version, "tags": ["ok", "bad\x00"]},
        {"version": version, "tags": "not a list"},
        {"version": 0},
        {"verdict": "accept"},  # no version
    ):
        assert api.put(url, body).status_code == 422, body
    assert Label.objects.get(pk=label["id"]).version == version  # nothing was saved


@pytest.mark.django_db
def test_an_annotator_reaches_only_their_queues_and_their_labels(make_user, researcher):
    ada, bo = make_user("annotator"), make_user("annotator")
    mine = make_queue(researcher, items=2, overlap=2, annotators=[ada, bo])
    theirs = make_queue(researcher, items=2, overlap=1, annotators=[bo])
    ada_api, bo_api = Api(ada), Api(bo)

    assert ada_api.post(f"/queues/{theirs.pk}/next").status_code == 404
    assert Lease.objects.filter(annotator=ada).count() == 0

    bo_label = bo_api.post(f"/queues/{mine.pk}/next").json()["label"]
    stolen = ada_api.put(f"/labels/{bo_label['id']}", {"version": 1, "verdict": "reject"})
    assert stolen.status_code == 404
    assert Label.objects.get(pk=bo_label["id"]).verdict == ""

    # Taken off the queue: their own draft cannot be saved any more either.
    ada_label = ada_api.post(f"/queues/{mine.pk}/next").json()["label"]
    mine.annotators.remove(ada)
    gone = ada_api.put(f"/labels/{ada_label['id']}", {"version": 1, "verdict": "accept"})
    assert gone.status_code == 404

    # Nothing else of the API: runs, and the researchers' side of queues.
    assert ada_api.get("/runs").status_code == 403
    assert ada_api.get(f"/queues/{mine.pk}").status_code in (403, 404)
    assert ada_api.post("/queues", {"name": "x", "overlap": 1}).status_code in (403, 422)
    promote = ada_api.post(f"/queues/{mine.pk}/promote", {"dataset_name": "cold"})
    assert promote.status_code in (403, 404)


@pytest.mark.django_db
def test_a_request_without_a_token_gets_401(researcher):
    queue = make_queue(researcher, items=1, overlap=1, annotators=[])
    assert Client().post(f"/api/queues/{queue.pk}/next").status_code == 401
    assert (
        Client().put("/api/labels/1", data="{}", content_type="application/json").status_code == 401
    )


@pytest.mark.django_db
def test_it_checks_an_edit_on_save_and_refuses_answers_the_queue_does_not_ask(
    researcher, annotator
):
    queue = make_queue(researcher, items=1, overlap=1, annotators=[annotator])
    queue.questions = {"rating": False, "tags": ["slip", "unreadable"]}
    queue.save()
    api = Api(annotator)
    label = api.post(f"/queues/{queue.pk}/next").json()["label"]
    url, version = f"/labels/{label['id']}", label["version"]

    assert api.put(url, {"version": version, "rating": 3}).status_code == 422
    assert api.put(url, {"version": version, "tags": ["great"]}).status_code == 422
    assert api.put(url, {"version": version, "submit": True}).status_code == 422  # no verdict

    wrong = api.put(url, {"version": version, "answer": "5", "tags": ["slip"]})
    assert wrong.status_code == 200
    assert wrong.json()["flagged"] is True and "verifier" in wrong.json()["checks"]["broken"]
    submitted = api.put(
        url, {"version": wrong.json()["version"], "verdict": "reject", "submit": True}
    )
    assert submitted.status_code == 200  # a flagged edit may still be submitted, flag and all
    assert submitted.json()["status"] == "submitted" and submitted.json()["flagged"] is True


# --- queues and promotion (researchers) -------------------------------------------------------


@pytest.fixture
def version(researcher, data_dir):
    import pyarrow as pa

    from r1studio.curation.services import dataset_create, version_write

    rows = [
        {"problem": f"What is {i}+{i}?", "think": f"{i} and {i}", "answer": str(2 * i)}
        | {"reference": str(2 * i)}
        for i in range(1, 4)
    ]
    dataset = dataset_create(user=researcher, name="r1-zero-samples")
    return version_write(
        dataset=dataset,
        table=pa.Table.from_pylist(rows),
        user=researcher,
        provenance_type="import",
        provenance={},
    )


@pytest.mark.django_db
def test_a_researcher_makes_a_queue_from_a_version_and_reads_its_dashboard(
    researcher, annotator, version
):
    api = Api(researcher)
    body = {
        "name": "cold start, round 1",
        "dataset": "r1-zero-samples",
        "version": 1,
        "overlap": 2,
        "annotators": [annotator.username],
        "guidelines": "Accept correct, readable traces.",
        "questions": {"tags": ["slip"]},
    }
    made = api.post("/queues", body)
    assert made.status_code == 201, made.content
    queue = made.json()
    assert queue["source_version"] == "dataset:r1-zero-samples@1" and queue["guideline"] == 1
    assert queue["annotators"] == [annotator.username] and queue["overlap"] == 2

    item = Api(annotator).post(f"/queues/{queue['id']}/next").json()
    assert item["fields"]["problem"] == "What is 1+1?" and item["questions"]["tags"] == ["slip"]

    dashboard = api.get(f"/queues/{queue['id']}")
    assert dashboard.status_code == 200, dashboard.content
    progress = dashboard.json()["progress"]
    assert progress["total"] == 3 and progress["leased"] == 1 and progress["done"] == 0
    assert dashboard.json()["agreement"] == []


@pytest.mark.django_db
def test_a_queue_can_be_made_from_a_trace_filter(researcher, annotator):
    from r1studio.runs.models import Run
    from r1studio.traces.services import traces_ingest
    from tests.studio.traces.conftest import sample

    run = Run.objects.create(owner=researcher, name="r1-zero", kind="grpo", status="finished")
    items = [sample(), sample(accuracy=0.0), sample("What is 1+1?")]
    traces_ingest(run=run, events=[{"type": "samples", "step": 10, "items": items}])
    body = {"name": "correct samples", "traces": {"run_id": run.pk, "correct": True}}

    made = Api(researcher).post("/queues", body)

    assert made.status_code == 201, made.content
    assert AnnotationItem.objects.filter(queue_id=made.json()["id"]).count() == 2
    assert made.json()["source_filters"]["correct"] is True


@pytest.mark.django_db
def test_it_refuses_a_queue_it_cannot_make(researcher, annotator, version):
    api = Api(researcher)
    base = {"name": "q", "dataset": "r1-zero-samples"}
    for body in (
        {"name": "q"},  # neither a version nor traces
        {**base, "traces": {}},  # both
        {**base, "dataset": "nope"},
        {**base, "version": 7},
        {**base, "annotators": ["nobody"]},
        {**base, "name": "bad\x00name"},
        {**base, "overlap": 0},
        {**base, "gold": {"9": "accept"}},  # no item 9
        {"name": "q", "traces": {"run_id": 10**6}},
    ):
        assert api.post("/queues", body).status_code == 422, body
    assert AnnotationQueue.objects.count() == 0


@pytest.mark.django_db
def test_promote_answers_the_new_version_with_its_rows(researcher, make_user, version):
    ada = make_user("annotator", username="ada")
    api = Api(researcher)
    queue = api.post(
        "/queues", {"name": "q", "dataset": "r1-zero-samples", "annotators": ["ada"]}
    ).json()
    ada_api = Api(ada)
    for verdict in ("accept", "reject", "accept"):
        label = ada_api.post(f"/queues/{queue['id']}/next").json()["label"]
        body = {"version": label["version"], "verdict": verdict, "submit": True}
        assert ada_api.put(f"/labels/{label['id']}", body).status_code == 200

    promoted = api.post(f"/queues/{queue['id']}/promote", {"dataset_name": "cold-start"})

    assert promoted.status_code == 201, promoted.content
    out = promoted.json()
    assert out["ref"] == "dataset:cold-start@1" and out["rows"] == 2
    assert out["provenance"]["queue"] == queue["id"] and out["provenance"]["annotators"] == ["ada"]
    again = api.post(f"/queues/{queue['id']}/promote", {"dataset_name": "bad name!"})
    assert again.status_code == 422


@pytest.mark.django_db
def test_promote_with_nothing_accepted_is_refused(researcher, annotator):
    queue = make_queue(researcher, items=1, overlap=1, annotators=[annotator])
    response = Api(researcher).post(f"/queues/{queue.pk}/promote", {"dataset_name": "cold"})
    assert response.status_code == 422 and "accepted" in response.json()["detail"]


# --- concurrency over HTTP --------------------------------------------------------------------


def _at_once(count: int, work: Any) -> tuple[list[Any], list[BaseException]]:
    """Run `work(i)` in `count` threads released together; their results and errors."""
    results: list[Any] = [None] * count
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = work(i)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_twenty_next_calls_at_once_never_exceed_the_overlap(make_user, researcher):
    annotators = [make_user("annotator") for _ in range(20)]
    queue = make_queue(researcher, items=6, overlap=2, annotators=annotators)
    apis = [Api(user) for user in annotators]

    def ask(i: int) -> Any:
        response = apis[i].post(f"/queues/{queue.pk}/next")
        return response.status_code, response.json()["id"] if response.status_code == 200 else None

    results, errors = _at_once(20, ask)

    assert errors == []
    assert sorted(status for status, _ in results) == [200] * 12 + [204] * 8
    counts = Counter(item for status, item in results if status == 200)
    assert len(counts) == 6 and set(counts.values()) == {2}  # 6 items x overlap 2, no more
    assert Lease.objects.count() == 12


@pytest.mark.django_db(transaction=True)
def test_two_saves_of_one_label_with_the_same_version_make_one_409(researcher, annotator):
    queue = make_queue(researcher, items=1, overlap=1, annotators=[annotator])
    apis = [Api(annotator), Api(annotator)]  # the same annotator in two tabs
    label = apis[0].post(f"/queues/{queue.pk}/next").json()["label"]

    def save(i: int) -> Any:
        body = {"version": label["version"], "verdict": ("accept", "reject")[i]}
        return apis[i].put(f"/labels/{label['id']}", body)

    results, errors = _at_once(2, save)

    assert errors == []
    assert sorted(r.status_code for r in results) == [200, 409]
    won = next(r for r in results if r.status_code == 200).json()
    lost = next(r for r in results if r.status_code == 409).json()
    assert lost["current"] == won
    assert Label.objects.get(pk=label["id"]).version == label["version"] + 1
