"""Run pages and actions under /runs/."""

from __future__ import annotations

from django.urls import path

from r1studio.runs import views

app_name = "runs"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("new", views.run_new, name="new"),
    path("compare", views.run_compare, name="compare"),
    path("<int:pk>/", views.run_detail, name="detail"),
    path("<int:pk>/edit", views.run_edit, name="edit"),
    path("<int:pk>/launch", views.run_launch, name="launch"),
    path("<int:pk>/cancel", views.run_cancel, name="cancel"),
    path("<int:pk>/resume", views.run_resume, name="resume"),
    path("<int:pk>/retry", views.run_retry, name="retry"),
    path("<int:pk>/clone", views.run_clone, name="clone"),
    path("<int:pk>/tags", views.run_tags, name="tags"),
    path("<int:pk>/logs", views.run_logs, name="logs"),
    path("<int:pk>/bundle.zip", views.run_bundle, name="bundle"),
]
