"""Request guards that answer before any view: bad input is a 4xx, never a 500 further down.

- NUL characters (``%00``) in the path, the query string or a form field: 400. PostgreSQL
  cannot store or even compare them in text (``/runs/?status=%00`` was a 500 there).
- An API request whose body is over ``DATA_UPLOAD_MAX_MEMORY_SIZE``: 413, before it is read
  (a multipart upload may add a file of up to ``R1STUDIO_MAX_IMPORT_BYTES``).

Under ``/api/`` the answer is JSON (``{"detail": ...}``), like every API error; elsewhere a
plain-text 400 (and Django's own page for a form body over the limit). Form fields are read
only where ``CsrfViewMiddleware`` reads them anyway (POST to a view that is not CSRF-exempt), so
views that read the raw body themselves (the API) still can.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError

API_PREFIX = "/api/"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
NUL = "\x00"


def _has_nul(query: Any) -> bool:
    return any(NUL in key or any(NUL in v for v in values) for key, values in query.lists())


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _refuse(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": detail}, status=status)
    if status == 400:
        return HttpResponseBadRequest(detail, content_type="text/plain; charset=utf-8")
    return HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")


def _content_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


class RequestGuardMiddleware:
    """NUL characters → 400; API bodies over the size limit → 413 (JSON under /api/)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if NUL in request.path_info or _has_nul(request.GET):
            return _refuse(request, 400, "NUL characters (%00) are not allowed in the URL.")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        length = _content_length(request)
        if _is_api(request) and request.content_type == "multipart/form-data":
            # A dataset upload: Django writes its file to disk in chunks, and only the other
            # fields count against DATA_UPLOAD_MAX_MEMORY_SIZE; the file has its own limit.
            files = settings.R1STUDIO_MAX_IMPORT_BYTES
            if limit is not None and length > limit + files:
                return _refuse(
                    request,
                    413,
                    f"The request body is {length} bytes; an uploaded file may have at most "
                    f"{files} (R1STUDIO_MAX_IMPORT_BYTES).",
                )
        elif _is_api(request) and limit is not None and length > limit:
            return _refuse(
                request, 413, f"The request body is {length} bytes; at most {limit} are accepted."
            )
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if request.method != "POST" or getattr(view, "csrf_exempt", False):
            return None
        if request.content_type not in FORM_TYPES:
            return None
        try:
            post = request.POST
        except RequestDataTooBig:
            if not _is_api(request):
                raise  # Django's own 400 page
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return _refuse(request, 413, f"The request body is over {limit} bytes.")
        except (SuspiciousOperation, MultiPartParserError) as exc:
            if not _is_api(request):
                raise
            return _refuse(request, 400, f"Unreadable form body: {exc}")
        if _has_nul(post):
            return _refuse(request, 400, "NUL characters are not allowed in form fields.")
        return None
