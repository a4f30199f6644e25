"""The import pages: upload a file into a dataset, map its columns, follow the job.

The file is stored by `upload_save` when it is posted; the mapping form carries only the
staged upload's path (a hidden field) to `import_start`, which queues the job. The job page
reads the job's row, polled over HTMX while it is queued or running.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from r1studio.core.roles import RESEARCHER, role_required
from r1studio.curation.imports import (
    STAGED_DIR,
    ImportProblem,
    import_preview,
    import_start,
    upload_save,
)
from r1studio.curation.mapping import TARGETS
from r1studio.curation.models import Dataset, DatasetJob
from r1studio.curation.views import _get_dataset_for_user, _is_htmx

ACCEPT = ".jsonl,.json,.parquet,.csv"


def _mapping_context(
    dataset: Dataset, upload: str, chosen: dict[str, str] | None = None, keep_other: bool = True
) -> dict[str, Any]:
    """The mapping form: the preview's rows and columns, a menu per target column."""
    preview = import_preview(upload=upload)
    names = [c["name"] for c in preview["columns"]]
    chosen = preview["suggested"] if chosen is None else chosen
    targets = [{"name": t, "chosen": chosen.get(t, "")} for t in TARGETS]
    rows = [[row.get(name) for name in names] for row in preview["rows"]]
    return {
        "dataset": dataset,
        "upload": upload,
        "file_name": upload.rpartition("/")[2],
        "preview": preview,
        "names": names,
        "rows": rows,
        "targets": targets,
        "keep_other": keep_other,
    }


@require_http_methods(["GET", "POST"])
@role_required(RESEARCHER)
def import_upload(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """GET: the upload form. POST: store the file and show its preview and mapping form."""
    dataset = _get_dataset_for_user(request, dataset_id)
    context: dict[str, Any] = {"dataset": dataset, "accept": ACCEPT}
    if request.method == "GET":
        return render(request, "curation/import.html", context)
    uploaded = request.FILES.get("file")
    if uploaded is None:
        context["problem"] = "Choose a JSONL, Parquet or CSV file to upload."
        return render(request, "curation/import.html", context, status=400)
    try:
        upload = upload_save(user=request.user, uploaded_file=uploaded)
        context = _mapping_context(dataset, upload)
    except ImportProblem as problem:
        context["problem"] = str(problem)
        return render(request, "curation/import.html", context, status=400)
    return render(request, "curation/import_mapping.html", context)


@require_POST
@role_required(RESEARCHER)
def import_begin(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """Queue the import of a staged upload with the chosen mapping; then the job's page."""
    dataset = _get_dataset_for_user(request, dataset_id)
    upload = request.POST.get("upload", "")
    if not upload.startswith(f"{STAGED_DIR}/") or ".." in upload:
        context = {"dataset": dataset, "accept": ACCEPT, "problem": "Upload the file again."}
        return render(request, "curation/import.html", context, status=400)
    mapping = {t: request.POST.get(f"map_{t}", "") for t in TARGETS}
    keep_other = request.POST.get("keep_other") == "on"
    try:
        job = import_start(
            user=request.user,
            dataset=dataset,
            upload=upload,
            mapping=mapping,
            keep_other=keep_other,
        )
    except ImportProblem as problem:
        # import_start removed the upload: the file must be sent again.
        context = {"dataset": dataset, "accept": ACCEPT, "problem": str(problem)}
        return render(request, "curation/import.html", context, status=400)
    return redirect("curation:job", dataset_id=dataset.pk, job_id=job.pk)


@require_GET
@role_required(RESEARCHER)
def job_detail(request: HttpRequest, dataset_id: int, job_id: int) -> HttpResponse:
    """One job of a dataset: its progress and ETA (polled over HTMX), its error, its version."""
    dataset = _get_dataset_for_user(request, dataset_id)
    job: DatasetJob | None = (
        dataset.jobs.select_related("source", "result", "created_by").filter(pk=job_id).first()
    )
    if job is None:
        raise Http404("No such job.")
    poll_url = reverse("curation:job", args=[dataset.pk, job.pk])
    context = {"dataset": dataset, "job": job, "jobs": [job], "poll_url": poll_url}
    if _is_htmx(request):
        return render(request, "curation/_jobs.html", context)
    return render(request, "curation/job.html", context)
