"""Dashboard, the health check and the sign-in lockout page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from r1studio.core.roles import RESEARCHER, user_has_role
from r1studio.core.selectors import system_health


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """Landing page: the studio's health, the demo assets and where to start.

    The servers (database, Redis, workers, paths on disk) are shown to researchers and admins
    only: annotators get their queue and nothing about the machines behind it.
    """
    context: dict[str, Any] = {"show_system": user_has_role(request.user, RESEARCHER)}
    if context["show_system"]:
        toy_dir = settings.R1STUDIO_DATA_DIR / "toy"
        context.update(health=system_health(), toy_ready=toy_dir.is_dir(), toy_dir=toy_dir)
    return render(request, "core/dashboard.html", context)


def login_locked_out(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """The sign-in page saying the username is locked out (django-axes' AXES_LOCKOUT_CALLABLE).

    429, with the cool-off in minutes; the form stays usable for another account.
    """
    username = request.POST.get("username", "") if request.method == "POST" else ""
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next", "") or request.GET.get("next", ""),
        "locked_out_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
    }
    return render(request, "registration/login.html", context, status=429)


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and the launcher: 200 when the database and Redis answer."""
    health = system_health()
    return JsonResponse(health, status=200 if health["status"] == "ok" else 503)
