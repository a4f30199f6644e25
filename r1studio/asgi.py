"""ASGI entry point, served by uvicorn (`uvicorn r1studio.asgi:application`).

Static files are served by Django's own `ASGIStaticFilesHandler`, which looks files up through
the staticfiles finders: no `collectstatic` step, no second server and no extra dependency.
That is enough for a workbench whose static files are a few stylesheets and scripts; on top of
it `r1studio.core.static` adds versioned URLs with year-long caching and gzip.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from r1studio.core.static import CompressedStaticFilesHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "r1studio.settings")

application = CompressedStaticFilesHandler(get_asgi_application())
