"""`python manage.py createtoken USERNAME [--name NAME]`: print a new API token for a user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from r1studio.api.services import api_token_create


class Command(BaseCommand):
    help = "Make an API token for USERNAME and print it (it is shown only this once)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="created with manage.py createtoken")

    def handle(self, *args: Any, username: str, name: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive")
        _, token = api_token_create(user=user, name=name)
        self.stdout.write(token)
