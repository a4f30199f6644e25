"""Reads for datasets: the list, a version and its stats, pages of rows, one row, a diff.

Datasets are shared by the researchers (and admins); annotators see none. The rows of a
version are read from its Parquet file with DuckDB (`browse.py`: a page of an 800k-row
version costs a few tens of milliseconds, without reading the long text); versions never
change, so what is slow to compute (a text search's matches, a diff) is kept in Django's
cache by the version files' paths.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Prefetch, QuerySet

from r1studio.core.roles import RESEARCHER, user_has_role
from r1studio.curation import browse
from r1studio.curation.diff import versions_diff
from r1studio.curation.models import Dataset, DatasetJob, DatasetUse, DatasetVersion, JobStatus
from r1studio.runs.selectors import runs_visible_to
from r1studio.traces.text import word_diff

MAX_LIMIT = 200
SEARCH_SECONDS = 600  # a search's matches are kept this long (paging through them is free)
DIFF_SECONDS = 7 * 24 * 3600
REASON_COLUMNS = ("reason", "drop_reason", "dropped_reason")
HISTOGRAM_COLUMNS = ("think", "completion", "problem", "prompt", "answer")
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class RowsError(browse.BrowseError):
    """A rows request that cannot be answered as asked; its message is shown as is."""


def datasets_for_user(*, user: Any) -> QuerySet[Dataset]:
    """Every dataset with its versions (newest first) for a researcher or admin; none else."""
    if not user_has_role(user, RESEARCHER):
        return Dataset.objects.none()
    versions = DatasetVersion.objects.only(
        "id", "dataset_id", "number", "rows", "size_bytes", "provenance_type", "created_at"
    ).order_by("-number")
    return (
        Dataset.objects.select_related("owner")
        .prefetch_related(Prefetch("versions", queryset=versions))
        .annotate(version_count=Count("versions"))
        .order_by("name")
    )


def dataset_for_user(*, user: Any, dataset_id: int) -> Dataset | None:
    return datasets_for_user(user=user).filter(pk=dataset_id).first()


def version_for_user(*, user: Any, dataset_id: int, number: int) -> DatasetVersion | None:
    """The version `number` of dataset `dataset_id`, or None (missing, or not for `user`)."""
    if not user_has_role(user, RESEARCHER):
        return None
    return (
        DatasetVersion.objects.select_related("dataset", "parent", "source_run", "created_by")
        .filter(dataset_id=dataset_id, number=number)
        .first()
    )


def _relative(version: DatasetVersion, dropped: bool) -> str:
    if not dropped:
        return version.path
    if not version.dropped_path:
        raise RowsError(f"{version} has no dropped rows")
    return version.dropped_path


def _row(record: dict[str, Any], kinds: dict[str, Any]) -> dict[str, Any]:
    lengths = {c: record.get(browse.LEN + c) for c, k in kinds.items() if k == "text"}
    values = {c: record.get(c) for c in kinds if c in record}
    return {"index": record[browse.ROW], "values": values, "lengths": lengths}


def _search_matches(relative: str, q: str, filters: dict[str, Any] | None) -> list[int]:
    digest = hashlib.sha256(
        json.dumps([relative, q, filters or {}], sort_keys=True, default=str).encode()
    ).hexdigest()
    key = f"curation:search:{digest}"
    matches = cache.get(key)
    if matches is None:
        matches = browse.search(relative, q, filters)
        cache.set(key, matches, SEARCH_SECONDS)
    return matches


def version_rows(
    *,
    version: DatasetVersion,
    offset: int,
    limit: int,
    q: str | None = None,
    filters: dict[str, Any] | None = None,
    dropped: bool = False,
    full: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """One page of a version's rows (or of its dropped rows) and how many pass the filters.

    `filters`: {column: value} (equality on a column, values as text or typed:
    `{"source": "gsm8k", "correct": "true"}`), `min_length` / `max_length` (characters of
    `length_column`, by default `think`). `q`: case-insensitive text in problem, think or
    answer; a search reads the text (seconds on 800k long rows, then kept ten minutes) and
    counts at most `browse.SEARCH_CAP + 1` matches (the total then means "more than").
    Each row is `{index, values, lengths}`: its position in the file, its values (text cut to
    `browse.PREVIEW_CHARS` characters unless `full`) and its text columns' lengths.
    RowsError (a ValueError) for an unknown column or a bad value.
    """
    relative = _relative(version, dropped)
    offset = max(0, int(offset))
    limit = max(1, min(int(limit), MAX_LIMIT))
    q = (q or "").strip()
    try:
        _, summary = browse.browse_file(relative)
        if q:
            matches = _search_matches(relative, q, filters)
            total = len(matches)
            positions = matches[: browse.SEARCH_CAP][offset : offset + limit]
        else:
            total = browse.count(relative, filters)
            positions = browse.positions(relative, filters, offset=offset, limit=limit)
        records = browse.previews(relative, positions)
        if full:
            whole = {r[browse.ROW]: r for r in browse.full_rows(relative, positions)}
            records = [{**r, **whole.get(r[browse.ROW], {})} for r in records]
    except browse.BrowseError as error:
        raise RowsError(str(error)) from None
    return [_row(r, summary["kinds"]) for r in records], total


def version_row(
    *, version: DatasetVersion, index: int, dropped: bool = False
) -> dict[str, Any] | None:
    """The whole row at position `index` (0-based) as {column: value}, or None."""
    relative = _relative(version, dropped)
    rows = browse.full_rows(relative, [int(index)]) if index >= 0 else []
    if not rows:
        return None
    row = rows[0]
    row.pop(browse.ROW, None)
    return row


def version_row_neighbours(
    *,
    version: DatasetVersion,
    index: int,
    q: str | None = None,
    filters: dict[str, Any] | None = None,
    dropped: bool = False,
) -> tuple[int | None, int | None]:
    """The positions of the rows before and after `index` in the table's order (file order)
    among the rows passing the same filters and search."""
    relative = _relative(version, dropped)
    try:
        if (q or "").strip():
            matches = _search_matches(relative, q.strip(), filters)[: browse.SEARCH_CAP]
            before = [m for m in matches if m < index]
            after = [m for m in matches if m > index]
            return (before[-1] if before else None), (after[0] if after else None)
        return browse.neighbours(relative, index, filters)
    except browse.BrowseError as error:
        raise RowsError(str(error)) from None


def version_columns(*, version: DatasetVersion, dropped: bool = False) -> dict[str, Any]:
    """What a rows table offers: the columns and their kinds, the values of the filter menus
    ({column: [[value, rows], ...]}) and the text column lengths are measured on."""
    _, summary = browse.browse_file(_relative(version, dropped))
    return {
        "kinds": summary["kinds"],
        "choices": summary["choices"],
        "length_column": browse.length_column(summary),
    }


def version_overview(*, version: DatasetVersion) -> dict[str, Any]:
    """The version page's statistics: length histograms (binned by DuckDB), the language
    mix, correctness and sources, and the dropped rows by reason."""
    _, summary = browse.browse_file(version.path)
    kinds = summary["kinds"]
    histograms = [
        browse.length_histogram(version.path, c)
        for c in HISTOGRAM_COLUMNS
        if kinds.get(c) == "text"
    ][:3]
    counts = version.stats.get("counts", {})
    if counts.get("language"):
        language = {"label": "language column", "counts": counts["language"]}
    elif summary.get("language", {}).get("counts"):
        sample = summary["language"]
        label = f"script of {sample['column']}, {sample['sampled']:,} sampled rows"
        language = {"label": label, "counts": sample["counts"]}
    else:
        language = None
    return {
        "histograms": histograms,
        "lengths": version.stats.get("lengths", {}),
        "language": _shares(language["counts"]) if language else [],
        "language_label": language["label"] if language else "",
        "correct": _shares(counts.get("correct", {})),
        "sources": _shares(counts.get("source", {})),
        "dropped": version_dropped_reasons(version=version),
    }


def _shares(counts: dict[str, int]) -> list[dict[str, Any]]:
    total = sum(counts.values()) or 1
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return [{"value": k, "rows": n, "percent": 100 * n / total} for k, n in ordered]


def version_dropped_reasons(*, version: DatasetVersion) -> dict[str, Any] | None:
    """{column, reasons: [{value, rows, percent}]} of the dropped rows, or None."""
    if not version.dropped_path:
        return None
    _, summary = browse.browse_file(version.dropped_path)
    column = next((c for c in REASON_COLUMNS if c in summary["kinds"]), None)
    if column is None:
        return {"column": None, "reasons": [], "rows": summary["rows"]}
    counts = dict((str(v), n) for v, n in summary["choices"].get(column, []))
    return {"column": column, "reasons": _shares(counts), "rows": summary["rows"]}


def version_jobs(*, version: DatasetVersion, limit: int = 5) -> list[DatasetJob]:
    """The latest jobs that read this version (curations), active ones first."""
    jobs = list(DatasetJob.objects.filter(source=version).select_related("result")[:limit])
    return sorted(jobs, key=lambda j: j.status not in ACTIVE)


def dataset_jobs(*, dataset: Dataset, limit: int = 5) -> list[DatasetJob]:
    """The dataset's latest jobs (imports and curations), active ones first."""
    jobs = list(dataset.jobs.select_related("source", "result")[:limit])
    return sorted(jobs, key=lambda j: j.status not in ACTIVE)


def version_uses(*, version: DatasetVersion, user: Any) -> list[DatasetUse]:
    """The runs (that `user` may see) which used this version."""
    visible = runs_visible_to(user=user).values("pk")
    return list(version.uses.filter(run__in=visible).select_related("run").order_by("-created_at"))


def version_diff(*, old: DatasetVersion, new: DatasetVersion) -> dict[str, Any]:
    """Rows added, removed and changed from `old` to `new` (see `diff.versions_diff`), the
    examples as table rows; a changed example lists its changed columns, text ones with a
    word diff."""
    key = "curation:diff:" + hashlib.sha256(f"{old.path}\n{new.path}".encode()).hexdigest()
    result = cache.get(key)
    if result is None:
        result = versions_diff(old.path, new.path)
        old_kinds = browse.browse_file(old.path)[1]["kinds"]
        new_kinds = browse.browse_file(new.path)[1]["kinds"]
        result["removed"] = [_row(r, old_kinds) for r in result["removed"]]
        result["added"] = [_row(r, new_kinds) for r in result["added"]]
        result["changed"] = [_change(c, old_kinds) for c in result["changed"]]
        cache.set(key, result, DIFF_SECONDS)
    return result


def _change(change: dict[str, Any], kinds: dict[str, Any]) -> dict[str, Any]:
    before, after = change["old"], change["new"]
    columns = []
    for name in change["columns"]:
        a, b = before.get(name), after.get(name)
        text = kinds.get(name) == "text" and isinstance(a, str) and isinstance(b, str)
        columns.append(
            {"name": name, "parts": word_diff(a, b) if text else None, "old": a, "new": b}
        )
    return {
        "old_index": before.get(browse.ROW),
        "new_index": after.get(browse.ROW),
        "problem": before.get("problem"),
        "columns": columns,
    }
