from __future__ import annotations

from django.urls import include, path

from r1studio.curation import curate_views, import_views, views

app_name = "curation"
urlpatterns = [
    path("datasets/", views.dataset_list, name="datasets"),
    path("datasets/new/", views.dataset_new, name="dataset_new"),
    path("datasets/from-traces/", views.traces_to_dataset, name="from_traces"),
    path("datasets/<int:dataset_id>/", views.dataset_detail, name="dataset"),
    path("datasets/<int:dataset_id>/diff/", views.dataset_diff, name="diff"),
    path("datasets/<int:dataset_id>/import/", import_views.import_upload, name="import"),
    path(
        "datasets/<int:dataset_id>/import/start/",
        import_views.import_begin,
        name="import_start",
    ),
    path("datasets/<int:dataset_id>/jobs/<int:job_id>/", import_views.job_detail, name="job"),
    path("datasets/<int:dataset_id>/v<int:number>/", views.version_detail, name="version"),
    path(
        "datasets/<int:dataset_id>/v<int:number>/jobs/",
        views.version_jobs_part,
        name="version_jobs",
    ),
    path(
        "datasets/<int:dataset_id>/v<int:number>/curate/",
        curate_views.version_curate,
        name="curate",
    ),
    path(
        "datasets/<int:dataset_id>/v<int:number>/delete/",
        views.version_remove,
        name="version_delete",
    ),
    path(
        "datasets/<int:dataset_id>/v<int:number>/rows/",
        views.version_rows_page,
        name="rows",
    ),
    path(
        "datasets/<int:dataset_id>/v<int:number>/rows/<int:index>/",
        views.version_row_detail,
        name="row",
    ),
    path("annotate/", views.annotate, name="annotate"),
    path("", include("r1studio.curation.annotation.urls")),
]
