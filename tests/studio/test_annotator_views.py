"""Annotators see their queue, nothing about the servers behind it, and not the API docs."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse


def test_the_annotators_dashboard_shows_no_servers_and_no_paths(
    annotator_client: Any, data_dir: Any
) -> None:
    (data_dir / "toy").mkdir()
    response = annotator_client.get(reverse("core:dashboard"))
    page = response.content.decode()
    assert response.status_code == 200
    assert reverse("curation:annotate") in page
    for hidden in ("Database", "Redis", "Workers online", "Demo models", "launch", str(data_dir)):
        assert hidden not in page, hidden
    assert "health" not in response.context


def test_the_researchers_dashboard_shows_the_servers(researcher_client: Any, data_dir: Any) -> None:
    (data_dir / "toy").mkdir()
    page = researcher_client.get(reverse("core:dashboard")).content.decode()
    for shown in ("Database", "Redis", "Workers online", str(data_dir / "toy")):
        assert shown in page, shown


@pytest.mark.parametrize("url", ["/api/docs", "/api/openapi.json"])
def test_annotators_cannot_read_the_api_docs(annotator_client: Any, url: str) -> None:
    assert annotator_client.get(url).status_code == 403


@pytest.mark.parametrize("url", ["/api/docs", "/api/openapi.json"])
def test_researchers_read_the_api_docs(researcher_client: Any, url: str) -> None:
    assert researcher_client.get(url).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/docs", "/api/openapi.json"])
def test_anonymous_visitors_are_sent_to_sign_in_for_the_api_docs(client: Any, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
