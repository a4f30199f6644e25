"""API authentication: `Authorization: Bearer <token>`, or the browser's session."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, django_auth

from r1studio.api.services import api_token_user


class ApiTokenAuth(HttpBearer):
    """A per-user API token (made on the tokens page or by `manage.py createtoken`)."""

    openapi_description = "A token from /api/tokens/ or `python manage.py createtoken USERNAME`."

    def authenticate(self, request: HttpRequest, token: str) -> Any | None:
        user = api_token_user(token=token)
        if user is not None:
            request.user = user  # the role checks read request.user
        return user


# The session needs CSRF on writes, as any form of the site does.
API_AUTH = [ApiTokenAuth(), django_auth]
