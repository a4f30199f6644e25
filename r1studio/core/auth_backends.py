"""The sign-in throttle as an authentication backend (django-axes)."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class SignInThrottle(AxesStandaloneBackend):
    """Refuses a username and address that are locked out; authenticates nobody itself.

    Every sign-in form passes the request. A call without one (a script or a test calling
    `authenticate(username=..., password=...)`, `Client.login`) has no address to throttle by,
    so it is left to the next backend instead of failing as django-axes' own backend does.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
