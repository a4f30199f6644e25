"""ASGI entry point, served by uvicorn (`uvicorn r1studio.asgi:application`).

Static files are served by Django's own `ASGIStaticFilesHandler`, which looks files up through
the staticfiles finders: no `collectstatic` step, no second server and no extra dependency.
That is enough for a workbench whose static files are a stylesheet and two vendored scripts
(responses carry Last-Modified, so browsers revalidate with a cheap 304).
"""

from __future__ import annotations

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "r1studio.settings")

application = ASGIStaticFilesHandler(get_asgi_application())
