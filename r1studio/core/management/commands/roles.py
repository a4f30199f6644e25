"""`manage.py roles`: create the role groups and set their permissions (safe to repeat)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from r1studio.core.roles import ROLE_HELP
from r1studio.core.services import RoleError, roles_sync


class Command(BaseCommand):
    help = "Create the groups admin, researcher and annotator with their permissions."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            counts = roles_sync()
        except RoleError as error:
            raise CommandError(str(error)) from error
        for role, count in counts.items():
            self.stdout.write(f"{role:<11} {count:>3} permissions  ({ROLE_HELP[role]})")
