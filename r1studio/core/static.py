"""Static files that load fast with no collectstatic step: versioned URLs, long caching, gzip.

- `VersionedStaticFilesStorage` (settings.STORAGES["staticfiles"]) makes `{% static %}` add
  `?v=<first 12 hex digits of the file's SHA-256>`, so a changed file gets a new URL.
- `CompressedStaticFilesHandler` (r1studio/asgi.py) serves a request whose `v` is the file's
  current version with `Cache-Control: public, max-age=31536000, immutable` (browsers then never
  ask again) and anything else with `no-cache` (revalidated: 304 when unchanged). Text files
  (scripts, styles, SVG) go out gzip-compressed to clients that accept it, compressed once per
  file version and kept in memory (the vendored Plotly bundle: 1.2 MB, 0.4 MB compressed).

Versions and compressed bodies are keyed by the file's path, size and modification time, so an
edited file is picked up without a restart.
"""

from __future__ import annotations

import gzip
import hashlib
import posixpath
import threading
from pathlib import Path
from typing import Any

from django.contrib.staticfiles import finders
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.contrib.staticfiles.storage import StaticFilesStorage
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import http_date

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
COMPRESSIBLE = (".js", ".css", ".svg", ".json", ".map", ".txt")
MIN_COMPRESS_BYTES = 1024

_lock = threading.Lock()
_versions: dict[str, tuple[tuple[int, int], str]] = {}
_gzipped: dict[str, tuple[tuple[int, int], bytes]] = {}


def _stamp(path: str) -> tuple[int, int]:
    stat = Path(path).stat()
    return stat.st_mtime_ns, stat.st_size


def file_version(path: str) -> str:
    """The first 12 hex digits of the SHA-256 of the file at `path` (cached per file state)."""
    stamp = _stamp(path)
    with _lock:
        hit = _versions.get(path)
    if hit and hit[0] == stamp:
        return hit[1]
    version = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    with _lock:
        _versions[path] = (stamp, version)
    return version


def gzipped(path: str) -> bytes:
    """The file at `path`, gzip-compressed (level 9, no timestamp: the same bytes every time)."""
    stamp = _stamp(path)
    with _lock:
        hit = _gzipped.get(path)
    if hit and hit[0] == stamp:
        return hit[1]
    body = gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0)
    with _lock:
        _gzipped[path] = (stamp, body)
    return body


def static_path(name: str) -> str | None:
    """The file a static name resolves to through the finders, as Django's static view does."""
    normalized = posixpath.normpath(name).lstrip("/")
    found = finders.find(normalized)
    return str(found) if found else None


def accepts_gzip(request: HttpRequest) -> bool:
    for part in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().replace(" ", "")
            return q not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


class VersionedStaticFilesStorage(StaticFilesStorage):
    """`{% static "js/charts.js" %}` → `/static/js/charts.js?v=1a2b3c4d5e6f`."""

    def url(self, name: str | None) -> str:
        url = super().url(name)
        path = static_path(name) if name else None
        return f"{url}?v={file_version(path)}" if path else url


class CompressedStaticFilesHandler(ASGIStaticFilesHandler):
    """Django's ASGI static files handler, plus caching headers and gzip (module docstring)."""

    def serve(self, request: HttpRequest) -> Any:
        response = super().serve(request)  # 404s, If-Modified-Since and the content type
        path = static_path(self.file_path(request.path))
        if path is None:
            return response
        version = file_version(path)
        compressible = path.endswith(COMPRESSIBLE)
        big = Path(path).stat().st_size >= MIN_COMPRESS_BYTES
        if compressible and big and response.status_code == 200 and accepts_gzip(request):
            response = self._gzip_response(request, response, gzipped(path), version)
        if compressible:
            response["Vary"] = "Accept-Encoding"
        fresh = request.GET.get("v") == version
        response["Cache-Control"] = IMMUTABLE if fresh else REVALIDATE
        return response

    @staticmethod
    def _gzip_response(request: HttpRequest, plain: Any, body: bytes, version: str) -> HttpResponse:
        etag = f'"{version}-gzip"'
        content_type = plain["Content-Type"]
        last_modified = plain.get("Last-Modified")
        plain.close()
        if etag in request.headers.get("If-None-Match", ""):
            response: HttpResponse = HttpResponseNotModified()
        else:
            response = HttpResponse(body, content_type=content_type)
            response["Content-Encoding"] = "gzip"
            response["Content-Length"] = str(len(body))
        response["ETag"] = etag
        response["Last-Modified"] = last_modified or http_date()
        return response
