"""The curate page: a version's rows through the common operations into a new version.

The form (`CurateForm`) turns ticked boxes into `pipeline.curation` operations, in the order
R1's pipeline applies them (verify, length, duplicates, decontamination, sample, split);
`curation_start` checks them and queues the job, whose page follows it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from pipeline.data import PRESET_FILES
from r1studio.core.roles import RESEARCHER, role_required
from r1studio.curation.curate import curation_start
from r1studio.curation.services import DatasetError
from r1studio.curation.views import _get_version_for_user


class CurateForm(forms.Form):
    """The common curation operations; a box ticks an operation in, its fields tune it."""

    verify = forms.BooleanField(
        required=False, label="Verifier: keep rows whose answer equals the reference"
    )
    reference = forms.CharField(initial="reference", max_length=100, label="Reference column")
    length = forms.BooleanField(required=False, label="Length limits")
    min_tokens = forms.IntegerField(initial=0, min_value=0, label="Fewest tokens")
    max_tokens = forms.IntegerField(initial=16384, min_value=0, label="Most tokens (0: none)")
    exact_dedup = forms.BooleanField(required=False, label="Drop exact duplicates")
    near_dedup = forms.BooleanField(required=False, label="Drop near duplicates (MinHash)")
    threshold = forms.FloatField(
        initial=0.8, min_value=0.01, max_value=1, label="Near-duplicate similarity"
    )
    decontaminate = forms.BooleanField(required=False, label="Decontaminate against benchmarks")
    benchmarks = forms.MultipleChoiceField(
        choices=[(name, name) for name in PRESET_FILES],
        initial=list(PRESET_FILES),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    sample_n = forms.IntegerField(
        initial=0, min_value=0, label="Sample this many rows (0: keep all)"
    )
    validation_n = forms.IntegerField(
        initial=0, min_value=0, label="Rows split off for validation (0: no split)"
    )
    seed = forms.IntegerField(initial=0, min_value=0, label="Seed (sample and split)")

    def operations(self) -> list[dict[str, Any]]:
        data = self.cleaned_data
        ops: list[dict[str, Any]] = []
        if data["verify"]:
            ops.append({"op": "verify", "reference": data["reference"]})
        if data["length"]:
            ops.append(
                {"op": "length", "min_tokens": data["min_tokens"], "max_tokens": data["max_tokens"]}
            )
        if data["exact_dedup"]:
            ops.append({"op": "exact_dedup"})
        if data["near_dedup"]:
            ops.append({"op": "near_dedup", "threshold": data["threshold"]})
        if data["decontaminate"]:
            ops.append({"op": "decontaminate", "benchmarks": data["benchmarks"]})
        if data["sample_n"]:
            ops.append({"op": "sample", "n": data["sample_n"], "seed": data["seed"]})
        if data["validation_n"]:
            ops.append({"op": "split", "n": data["validation_n"], "seed": data["seed"]})
        return ops


@require_http_methods(["GET", "POST"])
@role_required(RESEARCHER)
def version_curate(request: HttpRequest, dataset_id: int, number: int) -> HttpResponse:
    """GET: the curate form. POST: queue the curation, then the job's page."""
    version = _get_version_for_user(request, dataset_id, number)
    form = CurateForm(request.POST or None)
    problem = ""
    if request.method == "POST" and form.is_valid():
        operations = form.operations()
        if not operations:
            problem = "Tick at least one operation."
        else:
            try:
                job = curation_start(user=request.user, version=version, operations=operations)
            except DatasetError as error:
                problem = error.messages[0]
            else:
                return redirect("curation:job", dataset_id=dataset_id, job_id=job.pk)
    context = {"dataset": version.dataset, "version": version, "form": form, "problem": problem}
    status = 400 if request.method == "POST" else 200
    return render(request, "curation/curate.html", context, status=status)
