"""`manage.py recipes_demo`: make the toy demo recipe (a draft, launchable with one click) once.

`manage.py studio` calls it on every start after the toy assets are built; it does nothing when
the demo recipe exists or the toy assets are missing. The recipe belongs to the first admin.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db.models import Q

from r1studio.core.roles import ADMIN
from r1studio.recipes.services import recipe_demo_ensure


class Command(BaseCommand):
    help = "Make the toy demo recipe once (needs the toy assets and an admin)."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        admin = (
            User.objects.filter(Q(is_superuser=True) | Q(groups__name=ADMIN)).order_by("pk").first()
        )
        if admin is None:
            self.stdout.write("No admin yet: the demo recipe is made on a later start.")
            return
        recipe = recipe_demo_ensure(user=admin)
        if recipe is not None:
            self.stdout.write(f"Made the toy demo recipe #{recipe.pk}: launch it on /recipes/.")
