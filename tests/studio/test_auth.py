"""Every page needs a login, and roles decide which pages a user may open."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from tests.conftest import TEST_PASSWORD

NAV_PAGES = [
    "runs:list",
    "traces:list",
    "curation:datasets",
    "curation:annotate",
    "evals:benchmarks",
    "workers:list",
]
RESEARCHER_ONLY = [
    "runs:list",
    "traces:list",
    "curation:datasets",
    "evals:benchmarks",
    "workers:list",
]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["core:dashboard", *NAV_PAGES])
def test_it_redirects_anonymous_users_to_the_login_page(client: Any, name: str) -> None:
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.django_db
def test_it_shows_the_login_page_without_a_login(client: Any) -> None:
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Sign in to R1 Studio" in response.content


def test_it_shows_the_error_for_a_wrong_password(client: Any, researcher: Any) -> None:
    response = client.post(
        reverse("login"), {"username": researcher.username, "password": "not-the-password"}
    )
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert "_auth_user_id" not in client.session


def test_it_signs_in_and_lands_on_the_dashboard(client: Any, researcher: Any) -> None:
    response = client.post(
        reverse("login"), {"username": researcher.username, "password": TEST_PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("core:dashboard")
    page = client.get(reverse("core:dashboard"))
    assert page.status_code == 200
    assert b"Where to start" in page.content
    assert researcher.username.encode() in page.content


def test_it_signs_out_with_a_post(researcher_client: Any) -> None:
    response = researcher_client.post(reverse("logout"))
    assert response.status_code == 302
    assert researcher_client.get(reverse("core:dashboard")).status_code == 302


@pytest.mark.parametrize("name", NAV_PAGES)
def test_it_opens_every_page_for_a_researcher(researcher_client: Any, name: str) -> None:
    response = researcher_client.get(reverse(name))
    assert response.status_code == 200
    assert b'class="empty-state"' in response.content


@pytest.mark.parametrize("name", RESEARCHER_ONLY)
def test_it_forbids_researcher_pages_to_annotators(annotator_client: Any, name: str) -> None:
    response = annotator_client.get(reverse(name))
    assert response.status_code == 403
    assert b"needs the researcher role" in response.content


def test_it_lets_annotators_annotate(annotator_client: Any) -> None:
    response = annotator_client.get(reverse("curation:annotate"))
    assert response.status_code == 200
    assert b"Nothing to annotate" in response.content


def test_it_shows_annotators_only_their_nav_items(annotator_client: Any) -> None:
    response = annotator_client.get(reverse("core:dashboard"))
    nav = [item["label"] for item in response.context["nav"]]
    assert nav == ["Annotate"]


def test_it_tells_a_user_without_a_role_to_ask_for_one(client: Any, django_user_model: Any) -> None:
    user = django_user_model.objects.create_user("nobody", password=TEST_PASSWORD)
    client.force_login(user)
    assert client.get(reverse("curation:annotate")).status_code == 403
    page = client.get(reverse("core:dashboard"))
    assert b"No role yet" in page.content


def test_it_lets_admins_in_everywhere(client: Any, studio_admin: Any) -> None:
    client.force_login(studio_admin)
    for name in NAV_PAGES:
        assert client.get(reverse(name)).status_code == 200
    assert client.get("/admin/").status_code == 200
