"""Request bodies of the JSON API: JSON only, within the size limit, errors as JSON.

django-ninja reads any body as JSON whatever its content type, turns every parser exception
into "400 Cannot parse request body" and leaves a body over DATA_UPLOAD_MAX_MEMORY_SIZE to
Django's HTML 400 page. Here a body that is not JSON gets 415, an oversized one 413, both as
`{"detail": ...}` like every other API error.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.parser import Parser


def is_json(content_type: str) -> bool:
    """`application/json` or a `+json` type (the parameters after `;` do not matter)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


class JsonOnlyParser(Parser):
    """Parses a body only when its content type says JSON; anything else is a 415."""

    def parse_body(self, request: HttpRequest) -> Any:
        if not is_json(request.META.get("CONTENT_TYPE", "")):
            raise HttpError(415, "Send the body as JSON (Content-Type: application/json).")
        return super().parse_body(request)


def add_body_error_handlers(api: NinjaAPI) -> None:
    """Answer body errors in JSON with their own status (415, 413) instead of 400 or HTML."""

    def http_error(request: HttpRequest, exc: HttpError) -> Any:
        # django-ninja wraps every parser exception in a 400; the parser's own HttpError (the
        # 415 above) keeps its status.
        cause = exc.__cause__
        if isinstance(cause, HttpError):
            exc = cause
        return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)

    def too_big(request: HttpRequest, exc: RequestDataTooBig) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        detail = f"The request body is over {limit} bytes."
        return api.create_response(request, {"detail": detail}, status=413)

    api.add_exception_handler(HttpError, http_error)
    api.add_exception_handler(RequestDataTooBig, too_big)


def no_nul(value: Any) -> Any:
    """Refuse NUL characters anywhere in a value (a pydantic validator): PostgreSQL cannot
    store them in text or JSON."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("NUL characters (\\x00) are not allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            no_nul(key)
            no_nul(item)
    elif isinstance(value, list | tuple):
        for item in value:
            no_nul(item)
    return value
