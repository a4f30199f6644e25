"""Annotation URLs, included from r1studio/curation/urls.py (names under `curation:`)."""

from __future__ import annotations

from django.urls import path

from r1studio.curation.annotation import label_views, views

urlpatterns = [
    # Researchers (views.py): queues, a new queue, the dashboard, review, promotion.
    path("annotate/queues/", views.queue_list, name="queues"),
    path("annotate/queues/new/", views.queue_new, name="queue_new"),
    path("annotate/queues/<int:queue_id>/dashboard/", views.queue_dashboard, name="queue"),
    path(
        "annotate/queues/<int:queue_id>/guidelines/",
        views.queue_guidelines,
        name="queue_guidelines",
    ),
    path("annotate/queues/<int:queue_id>/settings/", views.queue_settings, name="queue_settings"),
    path("annotate/queues/<int:queue_id>/gold/", views.queue_gold, name="queue_gold"),
    path("annotate/queues/<int:queue_id>/promote/", views.queue_promote_view, name="queue_promote"),
    path("annotate/queues/<int:queue_id>/review/", views.review_list, name="review"),
    path(
        "annotate/queues/<int:queue_id>/review/agreeing/",
        views.review_agreeing,
        name="review_agreeing",
    ),
    path(
        "annotate/queues/<int:queue_id>/review/<int:item_id>/",
        views.review_item,
        name="review_item",
    ),
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
