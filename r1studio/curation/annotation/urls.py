"""Annotation URLs, included from r1studio/curation/urls.py (names under `curation:`)."""

from __future__ import annotations

from django.urls import path

from r1studio.curation.annotation import label_views

urlpatterns = [
    # The annotation view (label_views.py): lease the next item, drafts, submit, skip.
    path("annotate/queues/<int:queue_id>/", label_views.label, name="label"),
    path(
        "annotate/queues/<int:queue_id>/labels/<int:label_id>/draft/",
        label_views.label_draft,
        name="label_draft",
    ),
    path(
        "annotate/queues/<int:queue_id>/labels/<int:label_id>/submit/",
        label_views.label_submit,
        name="label_submit",
    ),
    path(
        "annotate/queues/<int:queue_id>/labels/<int:label_id>/skip/",
        label_views.label_skip,
        name="label_skip",
    ),
]
