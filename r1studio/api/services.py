"""Writes and reads of API tokens: make one (shown once), revoke it, authenticate a bearer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.utils import timezone

from r1studio.api.models import ApiToken, token_generate, token_hash

# Stamping last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_token_create(*, user: Any, name: str) -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the token itself (never stored)."""
    if not getattr(user, "is_active", False):
        raise PermissionDenied("Inactive users get no API tokens.")
    token = token_generate()
    row = ApiToken.objects.create(
        user=user,
        name=(name or "").strip()[:100] or "API token",
        key_hash=token_hash(token),
        prefix=token[:10],
    )
    return row, token


def api_token_revoke(*, token: ApiToken, user: Any) -> ApiToken:
    """Revoke a token of `user` (admins may revoke anyone's)."""
    if token.user_id != user.pk and not user.is_superuser:
        raise PermissionDenied("Not your token.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def api_token_user(*, token: str) -> Any | None:
    """The active user a bearer token belongs to, or None."""
    if not token:
        return None
    row = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=token_hash(token.strip()), revoked_at__isnull=True)
        .first()
    )
    if row is None or not row.user.is_active:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user
