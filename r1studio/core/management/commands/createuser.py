"""`manage.py createuser NAME --role researcher [--password P]`: add a user with a role."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from r1studio.core.roles import RESEARCHER, ROLES
from r1studio.core.services import RoleError, user_create


class Command(BaseCommand):
    help = "Create a user with a role; prints a generated password when none is given."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=ROLES, default=RESEARCHER)
        parser.add_argument("--password", help="Omit to generate one (printed once).")
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            created = user_create(
                username=options["username"],
                role=options["role"],
                password=options["password"],
                email=options["email"],
            )
        except ValidationError as error:  # the password validators' messages
            raise CommandError(" ".join(error.messages)) from error
        except (RoleError, ValueError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Created {options['role']} {created.user.get_username()!r}.")
        if created.password_generated:
            self.stdout.write(f"password: {created.password}")
            self.stdout.write("(shown once; only its hash is stored)")
