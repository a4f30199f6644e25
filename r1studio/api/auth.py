"""API authentication: `Authorization: Bearer <token>`, or the browser's session."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth, django_auth

from r1studio.api.services import api_token_user
from r1studio.core.roles import RESEARCHER, user_has_role


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


def _researcher_only(user: Any) -> Any:
    if user is not None and not user_has_role(user, RESEARCHER):
        raise PermissionDenied("This part of the API needs the researcher role.")
    return user


class ResearcherTokenAuth(ApiTokenAuth):
    """A token whose user is a researcher or an admin; an annotator's is refused (403)."""

    def authenticate(self, request: HttpRequest, token: str) -> Any | None:
        return _researcher_only(super().authenticate(request, token))


class ResearcherSessionAuth(SessionAuth):
    """The browser's session, for researchers and admins only."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any | None:
        return _researcher_only(super().authenticate(request, key))


# Refuses an annotator before the body is parsed (else a bad body would answer 422 first).
RESEARCHER_AUTH = [ResearcherTokenAuth(), ResearcherSessionAuth()]
