"""Trace pages: browser and its export, detail, a group at one step, a prompt over time."""

from __future__ import annotations

from django.urls import path

from r1studio.traces import views

app_name = "traces"
urlpatterns = [
    path("", views.trace_list, name="list"),
    path("export.<str:fmt>", views.trace_export, name="export"),
    path("<int:trace_id>/", views.trace_detail, name="detail"),
    path(
        "runs/<int:run_id>/steps/<int:step>/prompts/<str:prompt_hash>/",
        views.group_detail,
        name="group",
    ),
    path("runs/<int:run_id>/prompts/<str:prompt_hash>/", views.prompt_history, name="over_time"),
]
