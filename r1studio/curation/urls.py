from __future__ import annotations

from django.urls import path

from r1studio.curation import views

app_name = "curation"
urlpatterns = [
    path("datasets/", views.dataset_list, name="datasets"),
    path("annotate/", views.annotate, name="annotate"),
]
