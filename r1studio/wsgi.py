"""WSGI entry point; the studio runs under ASGI (uvicorn), this exists for tools that want WSGI."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "r1studio.settings")

application = get_wsgi_application()
