"""Reading versions without loading them: pages, filters, search, one row, stats, diffs."""

from __future__ import annotations

import pyarrow as pa
import pytest

from r1studio.curation import browse
from r1studio.curation.selectors import (
    RowsError,
    version_columns,
    version_diff,
    version_overview,
    version_row,
    version_row_neighbours,
    version_rows,
)
from tests.studio.curation.browse_helpers import known_rows, make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(researcher, data_dir):
    return make_version(researcher)


def indices(rows):
    return [r["index"] for r in rows]


def test_it_pages_rows_in_file_order(version):
    rows, total = version_rows(version=version, offset=100, limit=20)

    assert total == 300
    assert indices(rows) == list(range(100, 120))
    assert rows[0]["values"]["problem"] == "Problem 100: what is 100 + 100?"
    assert rows[0]["values"]["correct"] is True and rows[0]["lengths"]["think"] == 1100


def test_it_filters_on_column_values_and_a_length_range(version):
    filters = {"source": "math", "correct": "true", "min_length": 500, "max_length": 2000}
    expected = [
        i
        for i, row in enumerate(known_rows())
        if row["source"] == "math" and row["correct"] and 500 <= len(row["think"]) <= 2000
    ]

    rows, total = version_rows(version=version, offset=0, limit=200, filters=filters)

    assert total == len(expected) > 0
    assert indices(rows) == expected


def test_it_searches_problem_think_and_answer_case_insensitively(version):
    rows, total = version_rows(version=version, offset=0, limit=50, q="NEEDLE")
    assert (total, indices(rows)) == (3, [7, 70, 170])

    rows, total = version_rows(
        version=version, offset=0, limit=50, q="needle", filters={"source": "aime"}
    )
    assert (total, indices(rows)) == (1, [170])
    assert indices(version_rows(version=version, offset=1, limit=1, q="needle")[0]) == [70]

    rows, total = version_rows(version=version, offset=0, limit=50, q="Problem 17:")
    assert indices(rows) == [17]
    assert version_rows(version=version, offset=0, limit=5, q="%")[1] == 0  # literal, no wildcard


def test_it_cuts_long_text_unless_asked_for_whole_rows(version):
    (row,), _ = version_rows(version=version, offset=299, limit=1)
    (whole,), _ = version_rows(version=version, offset=299, limit=1, full=True)

    assert len(row["values"]["think"]) == browse.PREVIEW_CHARS
    assert whole["values"]["think"] == known_rows()[299]["think"]
    assert row["lengths"]["think"] == len(whole["values"]["think"]) == 3090


def test_it_reads_one_row_whole_and_its_neighbours_within_the_filters(version):
    assert version_row(version=version, index=42) == known_rows()[42]
    assert version_row(version=version, index=300) is None

    filters = {"source": "gsm8k"}
    assert version_row_neighbours(version=version, index=42, filters=filters) == (39, 45)
    assert version_row_neighbours(version=version, index=0, filters=filters) == (None, 3)
    assert version_row_neighbours(version=version, index=70, q="needle") == (7, 170)


def test_it_refuses_an_unknown_column_or_a_bad_value(version):
    with pytest.raises(RowsError, match="no column 'nope'"):
        version_rows(version=version, offset=0, limit=5, filters={"nope": "1"})
    with pytest.raises(RowsError, match="not a value of column 'correct'"):
        version_rows(version=version, offset=0, limit=5, filters={"correct": "maybe"})


def test_it_offers_menus_for_columns_with_few_values(version):
    columns = version_columns(version=version)

    assert set(columns["choices"]) == {"source", "correct", "split"}
    assert dict(map(tuple, columns["choices"]["split"])) == {"train": 270, "validation": 30}
    assert columns["length_column"] == "think"


def test_it_bins_lengths_on_the_server_and_summarises_the_version(version):
    overview = version_overview(version=version)

    think = next(h for h in overview["histograms"] if h["column"] == "think")
    assert sum(n for _, n in think["bins"]) == 300
    assert (
        think["bins"][0][0] <= 100
        and think["bins"][-1][0] <= 3090 < think["bins"][-1][0] + think["width"]
    )
    assert {s["value"]: s["rows"] for s in overview["sources"]} == {
        "gsm8k": 100,
        "math": 100,
        "aime": 100,
    }
    assert {s["value"]: s["rows"] for s in overview["correct"]} == {"True": 75, "False": 225}
    assert overview["language"][0]["value"] == "Latin"


def test_it_tells_scripts_apart():
    english = "So we add the digits and carry the one, then check again. " * 20
    assert browse.text_script(english) == "Latin"
    assert browse.text_script("我们先计算这个数的平方然后再检查结果 x = 5") == "CJK"
    assert (
        browse.text_script(english + "我们先计算这个数的平方然后再检查结果是否正确所以答案")
        == "mixed"
    )
    assert browse.text_script("2 + 3 = 5") == "none"


def test_it_pages_the_dropped_rows_by_reason(researcher, data_dir):
    rows = known_rows(20)
    dropped = pa.Table.from_pylist(
        [
            {**row, "reason": "verify" if i % 2 else "language", "detail": "why"}
            for i, row in enumerate(known_rows(6))
        ]
    )
    version = make_version(
        researcher, rows, dropped=dropped, provenance_type="curation", provenance={}
    )

    page, total = version_rows(
        version=version, offset=0, limit=10, dropped=True, filters={"reason": "verify"}
    )

    assert (total, indices(page)) == (3, [1, 3, 5])
    reasons = version_overview(version=version)["dropped"]
    assert reasons["column"] == "reason" and {
        r["value"]: r["rows"] for r in reasons["reasons"]
    } == {"verify": 3, "language": 3}
    other = make_version(researcher, rows, name="plain")
    with pytest.raises(RowsError, match="no dropped rows"):
        version_rows(version=other, offset=0, limit=5, dropped=True)


def test_it_rebuilds_its_browse_file_when_the_cache_is_cleared(version):
    path, _ = browse.browse_files(version.path)
    version_rows(version=version, offset=0, limit=1)
    assert path.exists()

    browse.browse_files_remove(version.path)
    assert not path.exists()
    assert version_rows(version=version, offset=0, limit=1)[1] == 300 and path.exists()


def test_it_never_installs_or_loads_a_duckdb_extension():
    settings = dict(
        browse.connection()
        .execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('autoinstall_known_extensions', 'autoload_known_extensions', 'lock_configuration')"
        )
        .fetchall()
    )
    assert settings == {
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "lock_configuration": "true",
    }
    with pytest.raises(Exception):  # noqa: B017 - locked: a query cannot turn it back on
        browse.connection().execute("SET autoinstall_known_extensions=true")


def test_it_diffs_two_versions_by_problem_and_source(researcher, data_dir):
    rows = known_rows(50)
    old = make_version(researcher, rows)
    changed = [dict(row) for row in rows if row["answer"] not in ("2", "4", "6")]  # rows 1-3 gone
    changed[10]["think"] = changed[10]["think"] + " and a new thought"
    changed[20]["correct"] = not changed[20]["correct"]
    changed += [{**rows[0], "problem": f"New problem {i}"} for i in range(4)]
    new = make_version(researcher, changed, dataset=old.dataset, parent=old)

    result = version_diff(old=old, new=new)

    assert result["key"] == "problem + source"
    assert result["counts"] == {
        "old_rows": 50, "new_rows": 51, "removed": 3, "added": 4, "changed": 2, "unchanged": 45,
    }  # fmt: skip
    assert [r["index"] for r in result["removed"]] == [1, 2, 3]
    assert [r["values"]["problem"] for r in result["added"]] == [
        f"New problem {i}" for i in range(4)
    ]
    first, second = result["changed"]
    assert (first["old_index"], first["new_index"]) == (13, 10)
    assert [c["name"] for c in first["columns"]] == ["think"]
    inserted = [p["text"] for p in first["columns"][0]["parts"] if p["op"] == "insert"]
    assert "".join(inserted).strip() == "and a new thought"
    assert [(c["name"], c["old"], c["new"]) for c in second["columns"]] == [
        ("correct", False, True)
    ]
