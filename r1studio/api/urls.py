"""/api/: the token pages and the django-ninja API (its docs at /api/docs)."""

from __future__ import annotations

from typing import Any

from django.urls import path

from r1studio.api import views
from r1studio.api.api import api


def _token_authenticated(patterns: list[Any]) -> list[Any]:
    # API clients send a bearer token, not a session: the API does its own authentication,
    # so LoginRequiredMiddleware must let its endpoints through (the docs keep their login).
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            _token_authenticated(pattern.url_patterns)
        elif getattr(pattern, "name", "") not in ("openapi-view",):
            pattern.callback.login_required = False
    return patterns


api_patterns, api_app_name, api_namespace = api.urls

app_name = "api"
urlpatterns = [
    path("tokens/", views.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke", views.token_revoke, name="token_revoke"),
    *_token_authenticated(api_patterns),
]
