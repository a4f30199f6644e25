"""Dashboard and the health check."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from r1studio.core.selectors import system_health


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """Landing page: the studio's health, the demo assets and where to start."""
    toy_dir = settings.R1STUDIO_DATA_DIR / "toy"
    context = {
        "health": system_health(),
        "toy_ready": toy_dir.is_dir(),
        "toy_dir": toy_dir,
        "data_dir": settings.R1STUDIO_DATA_DIR,
    }
    return render(request, "core/dashboard.html", context)


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and the launcher: 200 when the database and Redis answer."""
    health = system_health()
    return JsonResponse(health, status=200 if health["status"] == "ok" else 503)
