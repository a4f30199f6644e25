"""Studio-wide permissions that belong to no single table.

`StudioAccess` has no table (`managed = False`); it exists so that Django creates the studio's
own permissions, which the role groups (admin, researcher, annotator) are granted in
`r1studio.core.roles`. Model permissions (`runs.add_run`, ...) are granted the same way.
"""

from __future__ import annotations

from django.db import models


class StudioAccess(models.Model):
    """Carrier of the studio's capability permissions; never queried."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("research", "Can configure, launch and inspect runs, traces and benchmarks"),
            ("curate", "Can create, import and version datasets"),
            ("annotate", "Can label traces in the annotation queue"),
            ("manage_users", "Can create users and change their roles"),
        ]
