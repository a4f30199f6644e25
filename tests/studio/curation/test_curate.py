"""Curation jobs on a real Celery worker: a version's rows through operations into a child
version with its funnel and the dropped rows with their reasons; bad operations are named."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from pipeline.data import benchmarks_dir
from r1studio.curation import jobs, storage
from r1studio.curation.curate import curation_start
from r1studio.curation.models import DatasetJob, JobStatus
from r1studio.curation.services import DatasetError, dataset_create, version_write
from tests.conftest import wait_for


def _row(i: int, **extra) -> dict:
    think = f"step {i}: we add {i} and {i} to get {2 * i}, then check it once more by halving"
    return {
        "problem": f"What is {i} + {i}?",
        "think": think,
        "answer": str(2 * i),
        "reference": str(2 * i),
        **extra,
    }


def _version(user, name: str, rows: list[dict]):
    dataset = dataset_create(user=user, name=name, kind="reasoning")
    return version_write(
        dataset=dataset,
        table=pa.Table.from_pylist(rows),
        user=user,
        provenance_type="import",
        provenance={"file": f"{name}.jsonl"},
    )


def _ended(job: DatasetJob) -> DatasetJob | None:
    job.refresh_from_db()
    return job if job.status in (JobStatus.FINISHED, JobStatus.FAILED) else None


def _math500_problem() -> str:
    with (benchmarks_dir() / "math500.jsonl").open() as fh:
        return json.loads(fh.readline())["problem"]


@pytest.mark.django_db(transaction=True)
def test_it_curates_a_version_into_a_child_with_its_funnel_and_dropped_rows(
    celery_worker, researcher, data_dir
):
    rows = [_row(i) for i in range(12)]
    rows += [_row(3), _row(7)]  # exact duplicates
    rows += [_row(20, answer="41")]  # a wrong answer
    rows += [_row(21, think="let me run it\n```python\nprint(42)\n```")]
    rows += [_row(22, problem=_math500_problem())]  # a benchmark problem
    source = _version(researcher, "reasoning", rows)
    operations = [
        {"op": "verify"},
        {"op": "code_blocks"},
        {"op": "exact_dedup"},
        {"op": "decontaminate", "benchmarks": ["math500"]},
        {"op": "split", "n": 2, "seed": 0},
    ]

    job = curation_start(user=researcher, version=source, operations=operations)
    wait_for(lambda: _ended(job), timeout=120)

    assert job.status == JobStatus.FINISHED, job.error
    child = job.result
    assert child.parent == source and child.dataset == source.dataset and child.number == 2
    assert child.provenance_type == "curation"
    assert child.provenance["job"] == job.pk and child.provenance["source"] == source.ref
    assert [op["op"] for op in child.provenance["operations"]] == [o["op"] for o in operations]
    assert [(s["step"], s["rows_in"], s["rows_out"], s["dropped"]) for s in child.funnel] == [
        ("verify", 17, 16, 1),
        ("code_blocks", 16, 15, 1),
        ("exact_dedup", 15, 13, 2),
        ("decontaminate", 13, 12, 1),
        ("split", 12, 12, 0),
    ]
    kept = storage.parquet_open(child.path).read()
    assert kept.num_rows == child.rows == 12
    assert kept.column("problem").to_pylist() == [f"What is {i} + {i}?" for i in range(12)]
    assert kept.column("split").to_pylist().count("validation") == 2
    assert storage.table_sha256(kept) == child.sha256

    dropped = storage.parquet_open(child.dropped_path).read().to_pylist()
    reasons = {(r["reason"], r["input_row"]): r["detail"] for r in dropped}
    assert reasons[("verify", 14)] == "answer '41' is not the reference '40'"
    assert reasons[("code_blocks", 15)] == "1 code block in the reasoning"
    assert reasons[("exact_dedup", 12)] == "exact duplicate of row 3"
    assert reasons[("exact_dedup", 13)] == "exact duplicate of row 7"
    assert reasons[("decontaminate", 16)].startswith("overlaps math500 problem 0 (")
    assert {r["problem"] for r in dropped if r["reason"] == "verify"} == {"What is 20 + 20?"}


@pytest.mark.django_db(transaction=True)
def test_it_mixes_in_another_version_by_its_id(celery_worker, researcher, data_dir):
    source = _version(researcher, "reasoning", [_row(i) for i in range(30)])
    chat = _version(
        researcher, "chat", [{"problem": f"hi {i}", "source": "chat"} for i in range(40)]
    )
    parts = [{"version": "input", "ratio": 3}, {"version": chat.pk, "ratio": 1}]

    job = curation_start(
        user=researcher, version=source, operations=[{"op": "mix", "parts": parts}]
    )
    wait_for(lambda: _ended(job), timeout=120)

    assert job.status == JobStatus.FINISHED, job.error
    child = job.result
    kept = storage.parquet_open(child.path).read()
    assert child.rows == 40 and kept.column("source").to_pylist().count("chat") == 10
    assert child.funnel == [
        {"step": "mix", "op": "mix", "rows_in": 30, "rows_out": 40, "dropped": 0, "added": 10}
    ]
    assert child.provenance["mixed"] == [chat.ref] and not child.dropped_path


@pytest.mark.django_db(transaction=True)
def test_it_fails_a_job_with_a_bad_operation_naming_it(celery_worker, researcher, data_dir):
    source = _version(researcher, "reasoning", [_row(i) for i in range(3)])
    # As a job row written without the service's checks would hold it.
    job = jobs.job_create(
        kind="curate",
        dataset=source.dataset,
        user=researcher,
        source=source,
        params={"operations": [{"op": "verify"}, {"op": "near_dedup", "threshold": 1.5}]},
    )
    wait_for(lambda: _ended(job), timeout=60)

    assert job.status == JobStatus.FAILED
    assert job.error == (
        "operation 2 (near_dedup), threshold: Input should be less than or equal to 1"
    )
    assert job.traceback == "" and job.result is None
    assert source.dataset.versions.count() == 1


@pytest.mark.django_db
def test_it_refuses_bad_operations_before_queueing_anything(researcher, data_dir):
    source = _version(researcher, "reasoning", [_row(0)])
    cases = {
        "operation 1, op: unknown op 'dedup'": [{"op": "dedup"}],
        "operation 1 (mix), parts.1.version: there is no dataset version 999": [
            {"op": "mix", "parts": [{"version": "input"}, {"version": 999}]}
        ],
        "operation 1 (decontaminate), benchmarks.0: 'mmlu' is neither a benchmark preset": [
            {"op": "decontaminate", "benchmarks": ["mmlu"]}
        ],
        "operation 2 (length), tokenizer: /etc is outside the folders runs may read": [
            {"op": "verify"},
            {"op": "length", "tokenizer": "/etc"},
        ],
    }
    for message, operations in cases.items():
        with pytest.raises(DatasetError) as caught:
            curation_start(user=researcher, version=source, operations=operations)
        assert caught.value.messages[0].startswith(message), caught.value.messages[0]
    assert not DatasetJob.objects.exists()


@pytest.mark.django_db
def test_its_funnel_partial_carries_the_funnel_as_json_for_the_chart(researcher, data_dir):
    from django.template.loader import render_to_string
    from django.urls import NoReverseMatch, reverse

    source = _version(researcher, "reasoning", [_row(i) for i in range(3)])
    funnel = [{"step": "near_dedup", "op": "near_dedup", "rows_in": 3, "rows_out": 2, "dropped": 1}]
    child = version_write(
        dataset=source.dataset,
        table=pa.Table.from_pylist([_row(0), _row(1)]),
        user=researcher,
        provenance_type="curation",
        provenance={"job": None, "operations": [], "source": source.ref},
        parent=source,
        funnel=funnel,
        dropped=pa.Table.from_pylist([{**_row(2), "reason": "near_dedup", "detail": "x"}]),
    )

    html = render_to_string("curation/_funnel.html", {"version": child})

    assert f'<script id="funnel-data-{child.pk}" type="application/json">' in html
    assert json.dumps(funnel) in html.replace("&quot;", '"')
    assert "js/funnel.js" in html and "<script>" not in html  # no inline script (CSP)
    try:
        rows_url = reverse("curation:rows", args=[child.dataset_id, child.number])
    except NoReverseMatch:
        return  # the rows pages are not there: the steps are not links
    assert f'href="{rows_url}?dropped=1&amp;col_reason=near_dedup"' in html
