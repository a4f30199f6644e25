"""Word search in traces: the `q` of the trace browser and of the API, on SQLite and PostgreSQL.

What a query matches, the same on both databases:

- the text searched is a trace's prompt and completion (the first `SEARCH_CHARS` of each);
- a *word* is a run of letters and digits; everything else (spaces, punctuation, the `<think>`
  tags) separates words, and case does not matter: `wait` finds "Wait," and "WAIT";
- every word of the query must occur, anywhere: `carry digits` finds traces with both;
- words the query joins by punctuation or quotes must occur next to each other, in order:
  `re-check`, `2+3` and `"let me check"` are phrases;
- a trailing `*` makes the last word a prefix: `verif*` finds verify, verified, verification.

A query with no word at all matches nothing. This is word search, not substring search:
`check` does not find "rechecked" (`recheck*` does).

How it stays fast on a million traces:

- PostgreSQL: a generated `tsvector` column `search_doc` (the `simple` configuration: no
  stemming, no stop words) with a GIN index, both made by migration 0004 and unknown to the
  model. Punctuation becomes spaces before PostgreSQL's parser sees the text, so that both
  databases split words alike (the parser alone keeps `re-check` and `0.5` whole and drops
  `<think>` as a tag). The query is a `tsquery` of the same words; the planner either walks
  the (step, id) index checking the stored vector (common words) or reads the GIN matches
  and sorts them (rare words).
- SQLite: an FTS5 table `traces_trace_search` (contentless: the text stays in traces_trace)
  kept in sync by triggers on traces_trace, from migration 0004. Its rowid is the trace's
  (step, id) packed into one integer (`sort_key`), so FTS5 hands matches back newest first in
  the trace browser's keyset order and a page stops after `limit` matches that pass the other
  filters (`sqlite_matching_ids`). Steps beyond +-`MAX_STEP` share the extreme key range.
  A later migration that makes SQLite rebuild traces_trace (an AlterField does) drops the
  triggers with the old table: it must create them again (tests/studio/traces/test_search.py
  fails if it does not).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

SEARCH_CHARS = 100_000
FTS_TABLE = "traces_trace_search"
STEP_SHIFT = 40  # trace ids below 2**40
MAX_STEP = 2**23 - 1
MAX_TERMS = 16

_CHUNK = re.compile(r'"([^"]*)"(\*?)|(\S+)')
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Term:
    """Words that must occur next to each other, in order; `prefix`: the last one as a prefix."""

    words: tuple[str, ...]
    prefix: bool = False


def parse_query(q: str | None) -> list[Term]:
    """The terms of a search box query (see the module docstring); at most MAX_TERMS."""
    terms = []
    for quoted, star, bare in _CHUNK.findall(q or ""):
        words = tuple(w.lower() for w in _WORD.findall(bare or quoted))
        if words:
            prefix = bare.endswith("*") if bare else star == "*"
            terms.append(Term(words, prefix))
    return terms[:MAX_TERMS]


def fts5_query(terms: list[Term]) -> str:
    """The FTS5 MATCH expression: one quoted phrase per term, all required."""
    return " ".join(f'"{" ".join(t.words)}"' + ("*" if t.prefix else "") for t in terms)


def tsquery(terms: list[Term]) -> str:
    """The `to_tsquery('simple', ...)` text: `<->` inside a term, `&` between terms."""
    parts = []
    for t in terms:
        phrase = " <-> ".join(f"'{w}'" for w in t.words)
        parts.append(phrase + (":*" if t.prefix else ""))
    return " & ".join(parts)


def sort_key(step: int, pk: int) -> int:
    """The FTS5 rowid of a trace: its (step, id) keyset order as one signed 64-bit integer."""
    return (max(-MAX_STEP - 1, min(MAX_STEP, step)) << STEP_SHIFT) + pk


def trace_id(key: int) -> int:
    return key & ((1 << STEP_SHIFT) - 1)


def traces_search(qs: QuerySet, q: str | None) -> QuerySet:
    """`qs` narrowed to the traces that match `q` (all of `qs` for an empty query)."""
    if not (q or "").strip():
        return qs
    terms = parse_query(q)
    if not terms:
        return qs.none()
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(qs.model._meta.db_table)
        return qs.filter(
            RawSQL(
                f"{table}.search_doc @@ to_tsquery('simple', %s)",
                [tsquery(terms)],
                output_field=BooleanField(),
            )
        )
    if connection.vendor == "sqlite":
        mask = (1 << STEP_SHIFT) - 1
        matches = RawSQL(
            f"SELECT rowid & {mask} FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s",
            [fts5_query(terms)],
        )
        return qs.filter(pk__in=matches)
    raise NotImplementedError(f"trace search on {connection.vendor}")


def _key_range(
    before: tuple[int, int] | None,
    after: tuple[int, int] | None,
    step_min: int | None,
    step_max: int | None,
) -> tuple[int | None, int | None]:
    """[low, high) bounds of the FTS5 rowid for cursors and a step range (None: unbounded).

    Only a hint: `qs` keeps the exact filters, which also cover steps beyond +-MAX_STEP."""
    highs, lows = [], []
    if before is not None:
        highs.append(sort_key(*before))
    if step_max is not None and step_max < MAX_STEP:
        highs.append(sort_key(step_max + 1, 0))
    if after is not None:
        lows.append(sort_key(*after) + 1)
    if step_min is not None and step_min > -MAX_STEP:
        lows.append(sort_key(step_min, 0))
    return max(lows, default=None), min(highs, default=None)


def sqlite_matching_ids(
    qs: QuerySet,
    q: str,
    *,
    limit: int,
    before: tuple[int, int] | None = None,
    after: tuple[int, int] | None = None,
    step_min: int | None = None,
    step_max: int | None = None,
    oldest_first: bool = False,
) -> list[int]:
    """SQLite: ids of the first `limit` traces of `qs` that match `q` in the trace browser's
    order (newest first by step, id; `oldest_first` reverses it), between the cursors `after`
    and `before` (step, id), both excluded.

    FTS5 walks its matches in rowid order, i.e. in that order, from the cursor or the step
    bound on, and each is checked against `qs`'s filters by primary key (CROSS JOIN keeps
    SQLite from walking an index of traces_trace instead); the walk stops at `limit`.
    """
    terms = parse_query(q)
    if not terms:
        return []
    compiler = qs.query.get_compiler(connection=connection)
    try:
        where, params = compiler.compile(qs.query.where)
    except EmptyResultSet:
        return []
    except FullResultSet:
        where, params = "", []
    table = connection.ops.quote_name(qs.model._meta.db_table)
    sql = [
        f"SELECT {table}.id FROM {FTS_TABLE} CROSS JOIN {table}"
        f" ON {table}.id = ({FTS_TABLE}.rowid & {(1 << STEP_SHIFT) - 1})"
        f" WHERE {FTS_TABLE} MATCH %s"
    ]
    args: list[Any] = [fts5_query(terms)]
    low, high = _key_range(before, after, step_min, step_max)
    if low is not None:
        sql.append(f" AND {FTS_TABLE}.rowid >= %s")
        args.append(low)
    if high is not None:
        sql.append(f" AND {FTS_TABLE}.rowid < %s")
        args.append(high)
    if where:
        sql.append(f" AND ({where})")
        args += list(params)
    sql.append(f" ORDER BY {FTS_TABLE}.rowid {'ASC' if oldest_first else 'DESC'} LIMIT %s")
    args.append(int(limit))
    with connection.cursor() as cursor:
        cursor.execute("".join(sql), args)
        return [row[0] for row in cursor.fetchall()]
