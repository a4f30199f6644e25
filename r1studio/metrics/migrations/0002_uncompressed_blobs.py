"""PostgreSQL: store the packed points uncompressed (STORAGE EXTERNAL).

Packed float64 points do not compress, yet PostgreSQL tries pglz on every value larger than
2 kB it writes; skipping that halves the cost of an ingest. Other databases: nothing to do.
"""

from __future__ import annotations

from django.db import migrations

COLUMNS = [
    ("metrics_metricseries", "tail"),
    ("metrics_metricchunk", "summary"),
    ("metrics_metricchunk", "data"),
]


def set_storage(apps, schema_editor, storage: str = "EXTERNAL") -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in COLUMNS:
        schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE {storage}")


def reset_storage(apps, schema_editor) -> None:
    set_storage(apps, schema_editor, "EXTENDED")


class Migration(migrations.Migration):
    dependencies = [("metrics", "0001_initial")]

    operations = [migrations.RunPython(set_storage, reset_storage)]
