"""The Workers page: every worker's last heartbeat, refreshed in place by HTMX."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from r1studio.core.roles import RESEARCHER, role_required
from r1studio.workers.selectors import worker_list


@require_GET
@role_required(RESEARCHER)
def worker_list_view(request: HttpRequest) -> HttpResponse:
    """Workers, online first; an HTMX poll gets just the table."""
    rows = worker_list()
    context = {
        "rows": rows,
        "online": sum(row.online for row in rows),
        "offline_after": settings.R1STUDIO_WORKER_OFFLINE_AFTER,
    }
    template = (
        "workers/list.html#table" if request.headers.get("HX-Request") else "workers/list.html"
    )
    return render(request, template, context)
