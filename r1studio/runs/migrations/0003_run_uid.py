"""Give every run a unique id for its folder (rows that exist get a fresh one each)."""

import uuid

from django.db import migrations, models


def fill_uids(apps, schema_editor):
    Run = apps.get_model("runs", "Run")
    for run in Run.objects.filter(uid__isnull=True).only("pk"):
        Run.objects.filter(pk=run.pk).update(uid=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("runs", "0002_run_tags_preset")]

    operations = [
        migrations.AddField(model_name="run", name="uid", field=models.UUIDField(null=True)),
        migrations.RunPython(fill_uids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="run",
            name="uid",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
