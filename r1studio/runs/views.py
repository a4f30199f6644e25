"""Run pages: the list, the new-run and edit forms, the run page and its actions.

HTMX polls named partials of the same templates (`runs/list.html#table`,
`runs/detail.html#live`) while runs are active; the charts update live over SSE instead
(metrics app). Every action is a POST to a service; the service checks the user's rights.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from r1studio.core.roles import RESEARCHER, role_required
from r1studio.runs import presets, selectors, services
from r1studio.runs.alerts import runs_alerts
from r1studio.runs.bundle import run_bundle_zip
from r1studio.runs.forms import ConfigForm, config_from_yaml, config_to_yaml
from r1studio.runs.models import Run, RunExecutor, RunKind, RunStatus

LIST_LIMIT = 100


def _get_run_for_user(request: HttpRequest, pk: int) -> Run:
    return selectors.run_get_for_user(user=request.user, pk=pk)


def _known_kind(kind: str | None) -> str:
    """`kind` when it names a stage, else "grpo" (the form's default)."""
    return kind if kind in RunKind.values else "grpo"


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _alerts(run: Run) -> list[Any]:
    return runs_alerts(runs=[run]).get(run.pk, [])


def _alerts_of_runs(runs: list[Run]) -> dict[int, list[Any]]:
    return runs_alerts(runs=[run for run in runs if run.status != RunStatus.DRAFT])


@require_GET
@role_required(RESEARCHER)
def run_list(request: HttpRequest) -> HttpResponse:
    """Every run the user can see, newest first, with its latest reward and pass@1; search by
    name, filter by status, stage and tag; tick runs to compare. The table refreshes while
    runs are active. A bounded number of queries, whatever the number of rows."""
    filters = {
        "status": request.GET.get("status", "").strip(),
        "kind": request.GET.get("kind", "").strip(),
        "search": request.GET.get("q", "").strip(),
        "tag": request.GET.get("tag", "").strip(),
    }
    runs = list(selectors.run_list_with_results(user=request.user, **filters)[:LIST_LIMIT])
    alerts = _alerts_of_runs(runs)
    context = {
        "rows": [{"run": run, "alerts": alerts.get(run.pk, [])} for run in runs],
        "polling": any(run.is_active for run in runs),
        **filters,
        "q": filters["search"],
        "filtered": any(filters.values()),
        "statuses": RunStatus.choices,
        "kinds": RunKind.choices,
        "tags": [] if _is_htmx(request) else selectors.run_tags_in_use(user=request.user),
    }
    template = "runs/list.html#table" if _is_htmx(request) else "runs/list.html"
    return render(request, template, context)


@require_GET
@role_required(RESEARCHER)
def run_compare(request: HttpRequest) -> HttpResponse:
    """The list's "Compare" button: the ticked runs (`?ids=1&ids=2`) on the compare page."""
    ids = [value for value in request.GET.getlist("ids") if value.isdigit()]
    if not ids:
        messages.info(request, "Tick two or more runs in the list to compare them.")
        return redirect("runs:list")
    return redirect(reverse("metrics:compare") + "?runs=" + ",".join(ids))


@require_POST
@role_required(RESEARCHER)
def run_tags(request: HttpRequest, pk: int) -> HttpResponse:
    """Replace the run's tags (`tags`: comma-separated); its owner or an admin."""
    run = _get_run_for_user(request, pk)
    run = services.run_set_tags(run=run, user=request.user, tags=request.POST.get("tags", ""))
    if run.tag_list:
        messages.success(request, "Tags saved: " + ", ".join(run.tag_list) + ".")
    else:
        messages.success(request, "Tags removed.")
    return redirect("runs:detail", pk=run.pk)


@require_GET
@role_required(RESEARCHER)
def run_logs(request: HttpRequest, pk: int) -> HttpResponse:
    """The logs card alone: what the run page polls while the run is active."""
    run = _get_run_for_user(request, pk)
    return render(request, "runs/detail.html#logs", _logs_context(run))


def _logs_context(run: Run) -> dict[str, Any]:
    return {
        "run": run,
        "stdout": selectors.run_log_tail(run=run, stream="stdout"),
        "stderr": selectors.run_log_tail(run=run, stream="stderr"),
    }


def _input_rows(inputs: list[selectors.RunInput]) -> list[dict[str, Any]]:
    """Inputs for the templates; an unfilled `${runs}/NN-stage` names the preset to run first."""
    rows = []
    for item in inputs:
        needs = presets.STEP_TO_PRESET.get(item.placeholder) if item.placeholder else None
        rows.append({"input": item, "needs": needs})
    return rows


def _form_page(
    request: HttpRequest,
    form: ConfigForm,
    *,
    name: str,
    run: Run | None,
    status: int = 200,
    notice: str = "",
    preset: presets.Preset | None = None,
) -> HttpResponse:
    """The config form. `notice` says what to show atop the form, in view: "errors" (the
    error summary, each error linking to its input), "valid" (a Check that passed) or
    "preset" (the preset just loaded); with errors, the summary wins."""
    if form.errors or form.non_field_errors:
        notice = "errors"
    posted = request.method == "POST"
    tab = request.POST.get("tab") if posted else ""
    if request.POST.get("action") == "apply-yaml" and form.raw_yaml is None:
        tab = "form"  # the YAML went into the form: show it there
    source = request.POST.get("source", "form") if posted else "form"
    if request.POST.get("action") == "apply-yaml":
        source = "yaml" if form.raw_yaml is not None else "form"
    inputs = selectors.config_inputs(config=form.config, user=request.user)
    fields = form.fields_by_name()
    for item in inputs:
        if item.loc in fields:
            fields[item.loc].source = _input_rows([item])[0]
    context = {
        "form": form,
        "name": name,
        "run": run,
        "notice": notice,
        "preset": preset,
        "active_tab": tab if tab in ("form", "yaml") else "form",
        "source": source if source in ("form", "yaml") else "form",
        "inputs": _input_rows(inputs),
        "fold_presets": posted or preset is not None,
        "presets": presets.presets_available(),
        "kinds": RunKind.choices,
        "model_choices": selectors.model_choices(user=request.user),
        "dataset_choices": selectors.dataset_choices(user=request.user),
        "toy_dir": selectors.toy_dir(),
        "reward_help": _reward_help(),
        **_executor_context(request),
    }
    return render(request, "runs/form.html", context, status=status)


def _executor_context(request: HttpRequest) -> dict[str, Any]:
    """The form's "Run on" choice, shown only when a Ray cluster is configured."""
    return {
        "ray_enabled": bool(settings.RAY_ADDRESS),
        "ray_address": settings.RAY_ADDRESS,
        "executor_choice": request.POST.get("executor", "worker"),
        "ray_gpus": request.POST.get("ray_gpus", settings.R1STUDIO_RAY_GPUS),
    }


def _posted_placement(request: HttpRequest) -> dict[str, Any]:
    """`executor` and `resources` for run_launch from the form's "Run on" choice."""
    if request.POST.get("executor") != RunExecutor.RAY:
        return {}
    return {"executor": RunExecutor.RAY, "resources": {"gpus": request.POST.get("ray_gpus")}}


def _reward_help() -> dict[str, str]:
    from pipeline import rewards

    return rewards.describe()


def _posted_action(request: HttpRequest, default: str) -> str:
    action = request.POST.get("action", default)
    return "check" if action == "apply-yaml" else action


def _posted_form(request: HttpRequest, kind: str) -> ConfigForm:
    """The config from the YAML view or the form fields, whichever was edited last."""
    use_yaml = request.POST.get("action") == "apply-yaml" or request.POST.get("source") == "yaml"
    if use_yaml:
        config, errors = config_from_yaml(request.POST.get("config_yaml", ""))
        if config is None:
            form = ConfigForm(kind)
            form.set_errors(errors)
            form.raw_yaml = request.POST.get("config_yaml", "")  # keep what was typed
            return form
        new_kind = config.get("kind")
        if new_kind not in RunKind.values:
            form = ConfigForm(kind, {**config, "kind": kind})
            kinds = ", ".join(RunKind.values)
            form.set_errors([{"loc": "kind", "msg": f"must be one of {kinds}"}])
            return form
        return ConfigForm(new_kind, config)
    return ConfigForm.from_post(kind, request.POST)


@require_http_methods(["GET", "POST"])
@role_required(RESEARCHER)
def run_new(request: HttpRequest) -> HttpResponse:
    """New run: pick a preset or a stage kind, edit the form (or its YAML), launch or save."""
    if request.method == "GET":
        preset = presets.PRESETS_BY_KEY.get(request.GET.get("preset", ""))
        if preset is not None:
            config = presets.preset_config(preset, user=request.user)
            form = ConfigForm(preset.kind, config)
            if request.GET.get("check"):  # the explicit Check of a preset
                form.validate(machine=True)
            return _form_page(
                request, form, name=preset.name, run=None, notice="preset", preset=preset
            )
        return _form_page(
            request, ConfigForm(_known_kind(request.GET.get("kind"))), name="", run=None
        )

    form = _posted_form(request, _known_kind(request.POST.get("kind")))
    name = request.POST.get("name", "").strip()
    preset = presets.PRESETS_BY_KEY.get(request.POST.get("preset", ""))
    action = _posted_action(request, "launch")
    page = {"name": name, "run": None, "preset": preset}
    if not form.validate(machine=action == "check") or action == "check":
        status = 200 if action == "check" else 422
        return _form_page(request, form, status=status, notice="valid", **page)
    key = preset.key if preset else ""
    try:
        if action == "draft":
            run = services.run_create(user=request.user, name=name, config=form.parsed, preset=key)
            messages.success(request, f"Saved draft #{run.pk}.")
        else:
            run = services.run_create_and_launch(
                user=request.user,
                name=name,
                config=form.parsed,
                preset=key,
                **_posted_placement(request),
            )
            messages.success(request, f"Launched run #{run.pk}.")
    except services.RunConfigError as exc:
        form.set_errors(exc.config_errors)
        return _form_page(request, form, status=422, **page)
    except services.RunStateError as exc:  # e.g. the Ray choice without a cluster
        messages.error(request, " ".join(exc.messages))
        return _form_page(request, form, status=422, **page)
    return redirect("runs:detail", pk=run.pk)


@require_http_methods(["GET", "POST"])
@role_required(RESEARCHER)
def run_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit a draft's config (owner or admin); save, or save and launch."""
    run = _get_run_for_user(request, pk)
    if not selectors.run_can_change(run=run, user=request.user):
        raise PermissionDenied("Only the run's owner or an admin can edit it.")
    if run.status != RunStatus.DRAFT:
        messages.error(request, "Only a draft can be edited; clone the run to change its config.")
        return redirect("runs:detail", pk=run.pk)
    if request.method == "GET":  # no checks on a GET: they ran when the draft was saved
        return _form_page(request, ConfigForm(run.kind, run.config), name=run.name, run=run)

    form = _posted_form(request, run.kind)
    name = request.POST.get("name", "").strip() or run.name
    action = _posted_action(request, "draft")
    if not form.validate(machine=action == "check") or action == "check":
        status = 200 if action == "check" else 422
        return _form_page(request, form, name=name, run=run, status=status, notice="valid")
    try:
        run = services.run_update_config(run=run, user=request.user, config=form.parsed, name=name)
        if action == "launch":
            run = services.run_launch(
                run=run, user=request.user, parsed=form.parsed, **_posted_placement(request)
            )
            messages.success(request, f"Launched run #{run.pk}.")
        else:
            messages.success(request, "Draft saved.")
    except services.RunConfigError as exc:
        form.set_errors(exc.config_errors)
        return _form_page(request, form, name=name, run=run, status=422)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("runs:detail", pk=run.pk)


@require_GET
@role_required(RESEARCHER)
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The run page: status, progress and ETA, actions, charts, logs, checkpoints, error."""
    run = _get_run_for_user(request, pk)
    # What the `live` partial shows; the page's poll (HTMX, every 2 s per viewer) gets only it.
    context = {
        "run": run,
        "can_change": selectors.run_can_change(run=run, user=request.user),
        "alerts": _alerts(run),
        "checkpoints": [
            {"step": c.step, "path": c.path, "exists": _exists(c.path)}
            for c in run.checkpoints.all()
        ],
        "last_checkpoint": selectors.run_last_checkpoint(run=run),
        "resumable": run.status in services.RESUMABLE_STATUSES,
        "needs_checkpoint": run.kind in services.NEEDS_CHECKPOINT,
        "outputs": selectors.run_outputs(run=run),
    }
    if _is_htmx(request):
        return render(request, "runs/detail.html#live", context)
    context.update(
        _logs_context(run),
        inputs=_input_rows(selectors.config_inputs(config=run.config, user=request.user)),
        config_yaml=_config_yaml(run),
        queue=services.QUEUE_FOR_KIND.get(run.kind, ""),
    )
    return render(request, "runs/detail.html", context)


@require_GET
@role_required(RESEARCHER)
def run_bundle(request: HttpRequest, pk: int) -> HttpResponse:
    """The run's reproducibility bundle (r1studio.runs.bundle), as a zip download."""
    run = _get_run_for_user(request, pk)
    response = HttpResponse(run_bundle_zip(run=run), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-bundle.zip"'
    return response


def _exists(path: str) -> bool:
    return bool(path) and Path(path).exists()


def _config_yaml(run: Run) -> str:
    """The config as the run page shows it. Dumping YAML costs more than the rest of the view
    and a run's config hardly changes, so the text is kept per config (the page is polled)."""
    return _yaml_of(json.dumps(run.config)) if run.kind else ""


@functools.lru_cache(maxsize=256)
def _yaml_of(config_json: str) -> str:
    return config_to_yaml(json.loads(config_json))


def _action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    run = _get_run_for_user(request, pk)
    target = run
    try:
        # Past tense: the run page keeps its banner while the run moves on (and runs.js drops
        # it once the status changes), so it must not state a status that goes stale.
        if action == "launch":
            target = services.run_launch(run=run, user=request.user)
            messages.success(request, f"Launched run #{run.pk}.")
        elif action == "cancel":
            target = services.run_cancel(run=run, user=request.user)
            messages.success(request, f"Asked run #{run.pk} to stop.")
        elif action == "resume":
            target = services.run_resume(run=run, user=request.user)
            messages.success(request, f"Resumed run #{run.pk} from its last checkpoint.")
        elif action == "retry":
            target = services.run_retry(run=run, user=request.user)
            messages.success(request, f"Launched #{target.pk}, a retry of #{run.pk}.")
        elif action == "clone":
            target = services.run_clone(run=run, user=request.user)
            messages.success(
                request, f"Draft #{target.pk} is a copy of #{run.pk}: edit and launch it."
            )
            return redirect("runs:edit", pk=target.pk)
    except services.RunConfigError as exc:
        lines = [f"{e['loc']}: {e['msg']}" if e.get("loc") else e["msg"] for e in exc.config_errors]
        messages.error(request, "The config is invalid: " + "; ".join(lines))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    url = reverse("runs:detail", kwargs={"pk": target.pk})
    if _is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@require_POST
@role_required(RESEARCHER)
def run_launch(request: HttpRequest, pk: int) -> HttpResponse:
    return _action(request, pk, "launch")


@require_POST
@role_required(RESEARCHER)
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _action(request, pk, "cancel")


@require_POST
@role_required(RESEARCHER)
def run_resume(request: HttpRequest, pk: int) -> HttpResponse:
    return _action(request, pk, "resume")


@require_POST
@role_required(RESEARCHER)
def run_retry(request: HttpRequest, pk: int) -> HttpResponse:
    return _action(request, pk, "retry")


@require_POST
@role_required(RESEARCHER)
def run_clone(request: HttpRequest, pk: int) -> HttpResponse:
    return _action(request, pk, "clone")
