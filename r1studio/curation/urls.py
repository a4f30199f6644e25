from __future__ import annotations

from django.urls import include, path

from r1studio.curation import views

app_name = "curation"
urlpatterns = [
    path("datasets/", views.dataset_list, name="datasets"),
    path("annotate/", views.annotate, name="annotate"),
    path("", include("r1studio.curation.annotation.urls")),
]
