"""Word search over prompts and completions (see r1studio/traces/search.py for what it matches).

PostgreSQL: a generated tsvector column `search_doc` and its GIN index. Adding the column
rewrites traces_trace (minutes for millions of traces, with the table locked).
SQLite: the FTS5 table `traces_trace_search` and the triggers that keep it in sync, filled
with the traces already stored.
Neither is part of the model: Django never reads or writes them.

The SQL is written out here rather than imported, so that this migration stays as it ran.
"""

import string

from django.db import migrations

SEARCH_CHARS = 100_000
# PostgreSQL's parser reads `re-check` or `0.5` as one word and drops `<think>` as a tag;
# FTS5's unicode61 tokenizer splits all of them at the punctuation. Punctuation becomes spaces.
_PUNCTUATION = string.punctuation.replace("'", "''")
_TEXT = (
    f"translate(left(prompt, {SEARCH_CHARS}) || ' ' || left(completion, {SEARCH_CHARS}), "
    f"'{_PUNCTUATION}', '{' ' * len(string.punctuation)}')"
)
POSTGRES_FORWARD = [
    "ALTER TABLE traces_trace ADD COLUMN search_doc tsvector GENERATED ALWAYS AS "
    f"(to_tsvector('simple'::regconfig, {_TEXT})) STORED",
    "CREATE INDEX traces_trace_search_doc ON traces_trace USING gin (search_doc)",
]
POSTGRES_BACKWARD = [
    "DROP INDEX IF EXISTS traces_trace_search_doc",
    "ALTER TABLE traces_trace DROP COLUMN IF EXISTS search_doc",
]


def _key(row: str) -> str:
    """The FTS5 rowid: (step, id) packed so that rowid order is the browser's keyset order."""
    return f"(max(-8388608, min(8388607, {row}.step)) * 1099511627776 + {row}.id)"


def _body(row: str) -> str:
    return f"(substr({row}.prompt, 1, {SEARCH_CHARS}) || ' ' || substr({row}.completion, 1, {SEARCH_CHARS}))"


def _insert(row: str) -> str:
    return f"INSERT INTO traces_trace_search(rowid, body) VALUES ({_key(row)}, {_body(row)});"


def _delete(row: str) -> str:
    # A contentless table forgets a row only when given the values it indexed.
    return (
        "INSERT INTO traces_trace_search(traces_trace_search, rowid, body) "
        f"VALUES ('delete', {_key(row)}, {_body(row)});"
    )


SQLITE_FORWARD = [
    "CREATE VIRTUAL TABLE traces_trace_search USING fts5("
    "body, content='', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER traces_trace_search_insert AFTER INSERT ON traces_trace "
    f"BEGIN {_insert('new')} END",
    "CREATE TRIGGER traces_trace_search_delete AFTER DELETE ON traces_trace "
    f"BEGIN {_delete('old')} END",
    "CREATE TRIGGER traces_trace_search_update AFTER UPDATE OF step, prompt, completion "
    f"ON traces_trace BEGIN {_delete('old')} {_insert('new')} END",
    "INSERT INTO traces_trace_search(rowid, body) "
    f"SELECT {_key('traces_trace')}, {_body('traces_trace')} FROM traces_trace",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS traces_trace_search_insert",
    "DROP TRIGGER IF EXISTS traces_trace_search_delete",
    "DROP TRIGGER IF EXISTS traces_trace_search_update",
    "DROP TABLE IF EXISTS traces_trace_search",
]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor):
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("traces", "0003_trace_source_probe")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
