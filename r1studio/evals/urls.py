"""Benchmark pages."""

from __future__ import annotations

from django.urls import path

from r1studio.evals import views

app_name = "evals"
urlpatterns = [
    path("", views.benchmark_list, name="benchmarks"),
    path("leaderboard/", views.leaderboard, name="leaderboard"),
    path("compare/", views.compare, name="compare"),
    path("<int:result_id>/", views.result_detail, name="result"),
]
