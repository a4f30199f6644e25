"""Sign-in throttling: too many wrong passwords lock a username+address out for a while."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone

from tests.conftest import TEST_PASSWORD


@pytest.fixture(autouse=True)
def throttle(settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


def sign_in(client: Any, username: str, password: str, *, ip: str = "10.0.0.7") -> Any:
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def test_it_refuses_the_right_password_after_too_many_wrong_ones(
    client: Any, researcher: Any
) -> None:
    for _ in range(6):
        response = sign_in(client, researcher.username, "not-the-password")
    assert response.status_code == 429

    response = sign_in(client, researcher.username, TEST_PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    page = response.content.decode()
    assert "Too many failed sign-ins" in page
    assert "Sign-in is locked for 15 minutes" in page
    assert 'id="id_username"' in page and researcher.username in page  # the form is still there


def test_it_accepts_the_right_password_once_the_cool_off_has_passed(
    client: Any, researcher: Any, settings: Any
) -> None:
    for _ in range(6):
        sign_in(client, researcher.username, "not-the-password")
    assert sign_in(client, researcher.username, TEST_PASSWORD).status_code == 429

    # A shorter cool-off that the last failure is already older than.
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=2))

    response = sign_in(client, researcher.username, TEST_PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == reverse("core:dashboard")
    assert client.session["_auth_user_id"] == str(researcher.pk)


def test_it_locks_only_that_username_from_that_address(
    client: Any, researcher: Any, make_user: Any
) -> None:
    for _ in range(5):
        sign_in(client, researcher.username, "not-the-password")
    assert sign_in(client, researcher.username, TEST_PASSWORD).status_code == 429

    colleague = make_user("researcher")
    assert sign_in(client, colleague.username, TEST_PASSWORD).status_code == 302
    client.logout()
    assert sign_in(client, researcher.username, TEST_PASSWORD, ip="10.0.0.8").status_code == 302


def test_it_forgets_failures_after_a_successful_sign_in(client: Any, researcher: Any) -> None:
    for _ in range(4):
        sign_in(client, researcher.username, "not-the-password")
    assert sign_in(client, researcher.username, TEST_PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        assert sign_in(client, researcher.username, "not-the-password").status_code == 200
    assert sign_in(client, researcher.username, TEST_PASSWORD).status_code == 302


def test_api_tokens_are_not_throttled(client: Any, researcher: Any) -> None:
    from r1studio.api.services import api_token_create

    _, token = api_token_create(user=researcher, name="script")
    for _ in range(6):
        sign_in(client, researcher.username, "not-the-password", ip="127.0.0.1")
    response = client.get("/api/runs", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_it_locks_out_under_asgi_too(researcher: Any) -> None:
    # uvicorn runs the middleware chain in async mode, where django-axes takes another path.
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    client = AsyncClient()
    post = async_to_sync(client.post)
    data = {"username": researcher.username, "password": "not-the-password"}
    for _ in range(6):
        post(reverse("login"), data)
    response = post(reverse("login"), {"username": researcher.username, "password": TEST_PASSWORD})
    assert response.status_code == 429
    assert "Sign-in is locked for 15 minutes" in response.content.decode()
