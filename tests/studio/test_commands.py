"""`manage.py createuser` and `manage.py roles`."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command

from r1studio.core.roles import ROLES

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_it_creates_a_user_with_a_role_and_the_given_password() -> None:
    output = run("createuser", "ada", "--role", "researcher", "--password", "s3cret-pass")
    assert "Created researcher 'ada'" in output
    assert "password:" not in output
    user = authenticate(username="ada", password="s3cret-pass")
    assert user is not None
    assert list(user.groups.values_list("name", flat=True)) == ["researcher"]
    assert not user.is_staff


def test_it_prints_a_generated_password_once() -> None:
    output = run("createuser", "bo", "--role", "annotator")
    password = next(line for line in output.splitlines() if line.startswith("password: "))
    password = password.removeprefix("password: ")
    user = authenticate(username="bo", password=password)
    assert user is not None
    assert password not in user.password  # only the hash is stored


def test_it_makes_admins_staff_and_superusers() -> None:
    run("createuser", "root", "--role", "admin", "--password", "s3cret-pass")
    user = authenticate(username="root", password="s3cret-pass")
    assert user.is_staff and user.is_superuser


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("password", "This password is too common."),
        ("short1", "This password is too short. It must contain at least 8 characters."),
        ("4815162342", "This password is entirely numeric."),
        ("mallory-the-admin", "The password is too similar to the username."),
    ],
)
def test_it_refuses_a_password_the_validators_refuse(password: str, message: str) -> None:
    username = "mallory-the-admin" if "mallory" in password else "mallory"
    with pytest.raises(CommandError, match=re.escape(message)):
        run("createuser", username, "--role", "admin", "--password", password)
    assert not get_user_model().objects.filter(username=username).exists()


def test_the_test_password_and_generated_passwords_pass_the_validators() -> None:
    from django.contrib.auth.password_validation import validate_password

    from r1studio.core.services import demo_admin_ensure, generate_password
    from tests.conftest import TEST_PASSWORD

    validate_password(TEST_PASSWORD, user=get_user_model()(username="researcher-1"))
    for _ in range(50):
        validate_password(generate_password(), user=get_user_model()(username="admin"))
    created = demo_admin_ensure()
    assert created is not None and created.password_generated
    assert created.user.check_password(created.password)


def test_it_refuses_a_duplicate_username(researcher: Any) -> None:
    with pytest.raises(CommandError, match="already exists"):
        run("createuser", researcher.username, "--role", "annotator")


def test_it_refuses_an_unknown_role() -> None:
    with pytest.raises(CommandError):
        run("createuser", "cy", "--role", "owner")


def permissions_by_group() -> dict[str, set[str]]:
    return {
        group.name: set(group.permissions.values_list("codename", flat=True))
        for group in Group.objects.all()
    }


def test_it_syncs_roles_idempotently() -> None:
    output = run("roles")
    first = permissions_by_group()
    assert set(first) == set(ROLES)
    assert first["annotator"] == {"annotate"}
    assert {"research", "curate", "annotate", "view_workerheartbeat"} <= first["researcher"]
    assert first["admin"] == set(Permission.objects.values_list("codename", flat=True))
    assert "researcher" in output

    # A permission granted by hand is taken back; nothing else changes.
    Group.objects.get(name="annotator").permissions.add(Permission.objects.get(codename="research"))
    run("roles")
    assert permissions_by_group() == first
    assert Group.objects.count() == 3
