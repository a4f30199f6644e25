"""ASGI entry point, served by uvicorn (`uvicorn r1studio.asgi:application`).

Static files are served by Django's own `ASGIStaticFilesHandler`, which looks files up through
the staticfiles finders: no `collectstatic` step, no second server and no extra dependency.
That is enough for a workbench whose static files are a few stylesheets and scripts; on top of
it `r1studio.core.static` adds versioned URLs with year-long caching and gzip.

Static responses skip the middleware, so the handler adds `X-Content-Type-Options: nosniff`
itself: a browser then never runs a file as a script unless it is served as one.

On PostgreSQL the web server keeps its connections in a pool (R1STUDIO_DB_POOL, on by default
here and only here: the Celery workers fork, which a pool's threads do not survive).
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

from r1studio.core.static import CompressedStaticFilesHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "r1studio.settings")
# The web server pools its PostgreSQL connections (settings.R1STUDIO_DB_POOL); the workers do not.
os.environ.setdefault("R1STUDIO_DB_POOL", "1")


class StaticFilesHandler(CompressedStaticFilesHandler):
    """Django's ASGI static files handler, with the nosniff header on every answer."""

    async def get_response_async(self, request: Any) -> Any:
        response = await super().get_response_async(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


application = StaticFilesHandler(get_asgi_application())
