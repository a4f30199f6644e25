"""Dataset and annotation pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from r1studio.core.roles import ANNOTATOR, RESEARCHER, role_required


@require_GET
@role_required(RESEARCHER)
def dataset_list(request: HttpRequest) -> HttpResponse:
    """Datasets and their versions."""
    return render(request, "curation/datasets.html", {"datasets": []})


@require_GET
@role_required(ANNOTATOR)
def annotate(request: HttpRequest) -> HttpResponse:
    """The annotation queue: traces waiting for a label."""
    return render(request, "curation/annotate.html", {"items": []})
