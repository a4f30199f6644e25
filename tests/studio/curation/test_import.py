"""Imports: a file becomes a version through a real Celery worker, all or nothing."""

from __future__ import annotations

import csv
import io
import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from r1studio.curation import storage
from r1studio.curation.imports import ImportProblem, import_preview, import_start, upload_save
from r1studio.curation.mapping import block_map, mapping_parse, messages_build
from r1studio.curation.models import DatasetJob, DatasetVersion, JobStatus
from r1studio.curation.services import dataset_create
from tests.studio.curation.datafiles import (
    jsonl_bytes,
    reasoning_rows,
    upload,
    wait_for_job,
    write_jsonl,
)

WORKER = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dataset(researcher, data_dir):
    return dataset_create(user=researcher, name="cold-start", kind="cold-start")


def _uploads_left(data_dir) -> list:
    return [p for p in (data_dir / "uploads").rglob("*") if p.is_file()]


def _versions_written(data_dir) -> list:
    return list((data_dir / "datasets").rglob("*.parquet"))


@WORKER
def test_it_imports_a_jsonl_upload_as_a_version(celery_worker, researcher, dataset, data_dir):
    rows = reasoning_rows(30)
    job = import_start(
        user=researcher, dataset=dataset, uploaded_file=upload("cold.jsonl", jsonl_bytes(rows))
    )

    job = wait_for_job(job)
    assert job.status == JobStatus.FINISHED, job.error
    version = job.result
    assert (version.number, version.rows, version.provenance_type) == (1, 30, "import")
    assert version.provenance["file"] == "cold.jsonl"
    assert version.provenance["mapping"]["problem"] == "problem"
    assert version.provenance["derived"] == ["messages"]
    table = storage.parquet_open(version.path).read()
    assert storage.table_sha256(table) == version.sha256
    first = table.slice(0, 1).to_pylist()[0]
    assert first["difficulty"] == 0  # other columns kept, with their type
    assert first["messages"] == [
        {"role": "user", "content": "What is 0 + 0?"},
        {
            "role": "assistant",
            "content": f"<think>\n{rows[0]['think']}\n</think>\n<answer>\n0\n</answer>",
        },
    ]
    assert _uploads_left(data_dir) == []  # the upload goes once the job ends


@WORKER
def test_it_names_line_7_of_a_malformed_file_and_writes_nothing(
    celery_worker, researcher, dataset, data_dir
):
    lines = jsonl_bytes(reasoning_rows(10)).splitlines(keepends=True)
    lines[6] = b'{"problem": "7?", "think": "x" "answer": "7"}\n'  # a missing comma
    job = import_start(
        user=researcher,
        dataset=dataset,
        uploaded_file=upload("bad.jsonl", b"".join(lines)),
        check_now=False,  # the worker finds it
    )

    job = wait_for_job(job)
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("line 7: not valid JSON"), job.error
    assert job.traceback == ""  # a user's mistake, not a crash
    assert not DatasetVersion.objects.exists()
    assert _versions_written(data_dir) == [] and _uploads_left(data_dir) == []


@pytest.mark.django_db
def test_it_refuses_a_small_malformed_file_before_creating_a_job(researcher, dataset, data_dir):
    lines = jsonl_bytes(reasoning_rows(10)).splitlines(keepends=True)
    lines[6] = b"[1, 2]\n"

    with pytest.raises(
        ImportProblem,
        match=r"^line 7: expected one JSON object per line \(JSON Lines\), got a list",
    ):
        import_start(
            user=researcher, dataset=dataset, uploaded_file=upload("b.jsonl", b"".join(lines))
        )
    assert not DatasetJob.objects.exists() and _uploads_left(data_dir) == []


@pytest.mark.parametrize(
    ("change", "mapping", "expected"),
    [
        (
            {"question": None},
            {"problem": "question"},
            r"line 4: column 'question' \(mapped to problem\) has no value",
        ),
        ({"problem": ["a", "list"]}, None, r"line 4: column 'problem' is a list here but a string"),
        (
            {"difficulty": "hard"},
            None,
            r"line 4: column 'difficulty' is a string here but a number",
        ),
    ],
)
@pytest.mark.django_db
def test_it_names_the_line_and_column_of_a_bad_value(
    researcher, dataset, change, mapping, expected
):
    rows = [{**row, "question": row["problem"]} for row in reasoning_rows(6)]
    rows[3].update(change)
    rows[3] = {k: v for k, v in rows[3].items() if v is not None}  # None: the column is missing

    with pytest.raises(ImportProblem, match=expected):
        import_start(
            user=researcher,
            dataset=dataset,
            uploaded_file=upload("x.jsonl", jsonl_bytes(rows)),
            mapping=mapping,
        )


@pytest.mark.django_db
def test_it_names_a_mapped_column_the_file_lacks(researcher, dataset):
    with pytest.raises(ImportProblem, match=r"line 1: no column 'prompt' \(mapped to problem\)"):
        import_start(
            user=researcher,
            dataset=dataset,
            uploaded_file=upload("x.jsonl", jsonl_bytes(reasoning_rows(3))),
            mapping=json.dumps({"problem": "prompt"}),
        )


@pytest.mark.django_db
def test_it_refuses_a_file_over_the_size_limit(researcher, dataset, data_dir, settings):
    settings.R1STUDIO_MAX_IMPORT_BYTES = 1000

    with pytest.raises(ImportProblem) as refused:
        import_start(
            user=researcher,
            dataset=dataset,
            uploaded_file=upload("big.jsonl", jsonl_bytes(reasoning_rows(50))),
        )
    message = str(refused.value)
    assert message.startswith("big.jsonl is ") and "R1STUDIO_MAX_IMPORT_BYTES = 1000" in message
    assert _uploads_left(data_dir) == []


@WORKER
def test_it_imports_parquet_csv_and_an_hf_folder(
    celery_worker, researcher, dataset, data_dir, tmp_path
):
    rows = reasoning_rows(12)
    conversations = [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": row["problem"]},
                {
                    "role": "assistant",
                    "content": f"<think>{row['think']}</think><answer>{row['answer']}</answer>",
                },
            ],
            "source": "chat",
        }
        for row in rows
    ]
    parquet = tmp_path / "chat.parquet"
    pq.write_table(pa.Table.from_pylist(conversations), parquet)
    text = io.StringIO("\ufeff")  # as spreadsheets save it, with a byte order mark
    text.seek(1)
    writer = csv.DictWriter(text, fieldnames=["question", "answer", "note"])
    writer.writeheader()
    writer.writerows(
        {"question": r["problem"], "answer": r["answer"], "note": "a, b"} for r in rows
    )
    folder = tmp_path / "hf"
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))

    jobs = [
        import_start(
            user=researcher,
            dataset=dataset,
            uploaded_file=upload("chat.parquet", parquet.read_bytes()),
            check_now=False,
        ),
        import_start(
            user=researcher,
            dataset=dataset,
            uploaded_file=upload("plain.csv", text.getvalue().encode()),
            mapping={"problem": "question", "answer": "answer"},
        ),
        import_start(user=researcher, dataset=dataset, server_path=str(folder)),
    ]

    chat, plain, hf = (wait_for_job(job) for job in jobs)
    assert [j.status for j in (chat, plain, hf)] == ["finished"] * 3, [j.error for j in jobs]
    first = storage.parquet_open(chat.result.path).read().slice(0, 1).to_pylist()[0]
    assert (first["problem"], first["think"], first["answer"]) == (
        rows[0]["problem"],
        rows[0]["think"],
        rows[0]["answer"],
    )  # derived from the conversation with pipeline.template's parser
    assert chat.result.provenance["derived"] == ["problem", "think", "answer"]
    csv_first = storage.parquet_open(plain.result.path).read().slice(0, 1).to_pylist()[0]
    assert csv_first["problem"] == rows[0]["problem"] and csv_first["note"] == "a, b"
    assert csv_first["messages"][1]["content"] == "<answer>\n0\n</answer>"
    assert hf.result.rows == 12 and hf.result.provenance["server_path"] == str(folder)
    assert folder.exists()  # a server path is read where it is, never removed


@pytest.mark.django_db
def test_it_refuses_a_server_path_outside_the_allowed_folders(researcher, dataset):
    with pytest.raises(ImportProblem, match="outside the folders runs may read"):
        import_start(user=researcher, dataset=dataset, server_path="/etc")


@pytest.mark.django_db
def test_it_previews_the_head_of_an_upload_with_a_suggested_mapping(researcher, data_dir):
    rows = [{"question": f"q{i}", "reasoning": "r", "answer": "a"} for i in range(1000)]
    relative = upload_save(user=researcher, uploaded_file=upload("p.jsonl", jsonl_bytes(rows)))

    preview = import_preview(upload=relative, rows=5)

    assert preview["format"] == "jsonl" and len(preview["rows"]) == 5
    assert [c["name"] for c in preview["columns"]] == ["question", "reasoning", "answer"]
    assert preview["suggested"] == {"problem": "question", "think": "reasoning", "answer": "answer"}


@pytest.mark.django_db
def test_it_keeps_dates_as_written_and_widens_types_across_blocks(tmp_path, researcher, dataset):
    from r1studio.curation import readers
    from r1studio.curation.imports import table_read

    path = write_jsonl(
        tmp_path / "d.jsonl",
        [{"problem": "p", "answer": "a", "day": "2024-01-01", "score": None}] * 3
        + [{"problem": "p", "answer": "a", "day": "2024-01-02", "score": 0.5}],
    )
    readers.JSONL_PIECE_BYTES, old = 100, readers.JSONL_PIECE_BYTES  # one line a piece
    try:
        table, _, _ = table_read(path, "jsonl", mapping_parse({}))
    finally:
        readers.JSONL_PIECE_BYTES = old
    assert table.column("day").to_pylist()[-1] == "2024-01-02"
    assert table.column("score").to_pylist() == [None, None, None, 0.5]


def test_it_derives_messages_and_think_answer_the_same_way_both_ways():
    problem = pa.array(["1+1?", "Say hi"])
    think = pa.array(["one and one", None])
    answer = pa.array(["2", "hi"])
    messages = messages_build(problem, think, answer)

    table = pa.table({"messages": messages})
    back, derived = block_map(table, mapping_parse({"messages": "messages"}), lambda i: f"row {i}")

    assert derived == ["problem", "think", "answer"]
    assert back.column("problem").to_pylist() == ["1+1?", "Say hi"]
    assert back.column("think").to_pylist() == ["one and one", None]
    assert back.column("answer").to_pylist() == ["2", "hi"]
