"""URL map: one include per app; sign-in pages come from django.contrib.auth."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("", include("r1studio.core.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # /runs/<id>/metrics.json, /runs/<id>/stream and /metrics/compare (before the runs app).
    path("", include("r1studio.metrics.urls")),
    path("runs/", include("r1studio.runs.urls")),
    path("traces/", include("r1studio.traces.urls")),
    path("", include("r1studio.curation.urls")),
    path("benchmarks/", include("r1studio.evals.urls")),
    path("workers/", include("r1studio.workers.urls")),
    path("", include("r1studio.recipes.urls")),  # /recipes/..., /lineage/...
    path("api/", include("r1studio.api.urls")),
    path("admin/", admin.site.urls),
]
