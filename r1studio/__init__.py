"""R1 Studio: the Django project (settings, URLs, ASGI/WSGI entry points, Celery app)."""

from __future__ import annotations

from r1studio.celery import app as celery_app

__all__ = ["celery_app"]
