"""Writes for users and roles: syncing the role groups, creating users, the demo admin."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.db.models import Q

from r1studio.core.roles import ADMIN, ROLE_PERMISSIONS, ROLES


class RoleError(ValueError):
    """A role or permission name that does not exist."""


def _permissions_for(role: str) -> list[Permission]:
    wanted = ROLE_PERMISSIONS[role]
    if "*" in wanted:
        return list(Permission.objects.all())
    found = []
    for dotted in wanted:
        app_label, _, codename = dotted.partition(".")
        perm = Permission.objects.filter(
            content_type__app_label=app_label, codename=codename
        ).first()
        if perm is None:
            raise RoleError(f"permission {dotted!r} of role {role!r} does not exist (migrated?)")
        found.append(perm)
    return found


@transaction.atomic
def roles_sync() -> dict[str, int]:
    """Create the role groups and give each exactly the permissions `ROLE_PERMISSIONS` lists.

    Idempotent: running it again changes nothing; a permission added to a group by hand is
    taken away again. Returns the number of permissions per role.
    """
    counts = {}
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        perms = _permissions_for(role)
        group.permissions.set(perms)
        counts[role] = len(perms)
    return counts


def generate_password() -> str:
    """A random password that is easy to copy from a terminal."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class CreatedUser:
    user: AbstractUser
    password: str
    password_generated: bool


@transaction.atomic
def user_create(
    *, username: str, role: str, password: str | None = None, email: str = ""
) -> CreatedUser:
    """Create a user holding `role`; a random password is generated when none is given.

    Admins also get `is_staff` and `is_superuser` so that Django's admin site works for them.
    The password must pass AUTH_PASSWORD_VALIDATORS (django.core.exceptions.ValidationError
    with the validators' messages otherwise). Only the password hash is stored.
    """
    if role not in ROLES:
        raise RoleError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValueError(f"user {username!r} already exists")
    roles_sync()
    generated = password is None
    password = generate_password() if generated else password
    is_admin = role == ADMIN
    user = User(
        username=User.normalize_username(username),
        email=User.objects.normalize_email(email),
        is_staff=is_admin,
        is_superuser=is_admin,
    )
    # Checked against the unsaved user, so the similarity validator sees the username and email.
    validate_password(password, user=user)
    user.set_password(password)
    user.save()
    user.groups.set([Group.objects.get(name=role)])
    return CreatedUser(user=user, password=password, password_generated=generated)


def demo_admin_ensure(*, username: str = "admin") -> CreatedUser | None:
    """Create the demo admin when no admin exists yet; returns it (with its one-time password).

    Returns None when an admin is already there, so a second `make run` prints nothing.
    """
    User = get_user_model()
    if User.objects.filter(Q(is_superuser=True) | Q(groups__name=ADMIN)).exists():
        return None
    candidate, n = username, 1
    while User.objects.filter(username=candidate).exists():
        n += 1
        candidate = f"{username}{n}"
    return user_create(username=candidate, role=ADMIN)
