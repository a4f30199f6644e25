"""The JSON API (django-ninja): runs, their metrics and traces. OpenAPI docs at /api/docs.

Authentication: `Authorization: Bearer <token>` (a per-user API token) or the browser session.
Every endpoint needs the researcher role (annotators get 403; only the annotation router's
next item and label save are theirs, on their queues) and sees what the run pages see
(`runs.selectors.runs_visible_to`): another user's draft is a 404, changing another user's run
a 403. Invalid configs get 422 with `{"detail", "errors": [{"loc", "msg"}]}`, actions that do
not fit the run's state 409. Bodies are JSON (else 415) of at most DATA_UPLOAD_MAX_MEMORY_SIZE
bytes (else 413); NUL characters in the URL get 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.urls import reverse
from ninja import NinjaAPI, Query, Status

from r1studio.api.auth import API_AUTH
from r1studio.api.datasets import router as datasets_router
from r1studio.api.ingest import router as ingest_router
from r1studio.api.parsing import JsonOnlyParser, add_body_error_handlers
from r1studio.api.schemas import (
    ErrorOut,
    RunCreatedOut,
    RunCreateIn,
    RunDetailOut,
    RunOut,
    RunTokenOut,
    SeriesOut,
    TraceOut,
    TracePageOut,
)
from r1studio.core.roles import RESEARCHER, role_required, user_has_role
from r1studio.metrics.selectors import run_metric_names as metric_names
from r1studio.metrics.selectors import run_metrics_series
from r1studio.runs import remote, selectors, services
from r1studio.runs.models import Run
from r1studio.traces.filters import TraceFilters
from r1studio.traces.selectors import traces_page


def _docs_for_researchers(view: Callable[..., Any]) -> Callable[..., Any]:
    # The docs and the schema describe the servers' API: a login page for anonymous visitors,
    # 403 for annotators, like every researcher page.
    return login_required(role_required(RESEARCHER)(view))


api = NinjaAPI(
    title="R1 Studio API",
    version="1",
    description=__doc__,
    auth=API_AUTH,
    docs_decorator=_docs_for_researchers,
    urls_namespace="api",
    parser=JsonOnlyParser(),
)
add_body_error_handlers(api)
api.add_router("", datasets_router)  # /datasets, /dataset-jobs (r1studio/api/datasets.py)
api.add_router("", "r1studio.api.annotation.router")  # queues, next item, labels, promote
api.add_router("", "r1studio.api.recipes.router")  # recipes: create, launch, cancel, retry
api.add_router("", "r1studio.api.lineage.router")  # a run or version back to its sources
api.add_router("", ingest_router)  # POST /runs/{id}/events with a run token (api/ingest.py)

ERRORS = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> Any:
    return api.create_response(request, {"detail": str(exc) or "Forbidden"}, status=403)


@api.exception_handler(services.RunConfigError)
def _invalid_config(request: HttpRequest, exc: services.RunConfigError) -> Any:
    body = {"detail": "invalid config", "errors": exc.config_errors}
    return api.create_response(request, body, status=422)


@api.exception_handler(services.RunStateError)
def _wrong_state(request: HttpRequest, exc: services.RunStateError) -> Any:
    return api.create_response(request, {"detail": " ".join(exc.messages)}, status=409)


def _researcher(request: HttpRequest) -> Any:
    if not user_has_role(request.auth, RESEARCHER):
        raise PermissionDenied("The API needs the researcher role.")
    return request.auth


def _run(request: HttpRequest, run_id: int) -> Run:
    return selectors.run_get_for_user(user=_researcher(request), pk=run_id)


def _act(request: HttpRequest, run_id: int, service: Callable[..., Run]) -> dict[str, Any]:
    """Apply a run service (`services.run_launch`, ...) to a run the user can see; its answer."""
    return _out(service(run=_run(request, run_id), user=request.auth), detail=True)


def _out(run: Run, *, detail: bool = False) -> dict[str, Any]:
    data = {
        "id": run.pk,
        "name": run.name,
        "owner": run.owner.get_username(),
        "kind": run.kind,
        "executor": run.executor,
        "status": run.status,
        "step": run.step,
        "total_steps": run.total_steps,
        "progress": run.progress,
        "eta_seconds": run.eta_seconds,
        "error": run.error,
        "worker": run.worker,
        "run_dir": run.run_dir,
        "parent_id": run.parent_id,
        "cancel_requested": run.cancel_requested,
        "created_at": run.created_at,
        "queued_at": run.queued_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "last_event_at": run.last_event_at,
        "url": reverse("runs:detail", args=[run.pk]),
    }
    if detail:
        data.update(
            config=run.config,
            traceback=run.traceback,
            resume_from=run.resume_from,
            checkpoints=[{"step": c.step, "path": c.path} for c in run.checkpoints.all()],
            job_id=run.job_id,
            job_state=_public_job_state(run.job_state),
        )
    return data


def _public_job_state(state: dict) -> dict[str, Any]:
    """What a client may read of a Ray job's state (not the watcher's own bookkeeping)."""
    keys = ("status", "message", "attempt", "resources", "address")
    return {key: state[key] for key in keys if key in state}


@api.post("/runs", response={200: RunCreatedOut, 201: RunCreatedOut, **ERRORS}, tags=["runs"])
def create_run(request: HttpRequest, body: RunCreateIn) -> Any:
    """Create a draft run from a stage config (validated; 422 names the bad fields).

    With `"external": true`, a run that a script outside the studio reports to (the
    `R1StudioCallback` of pipeline/callback.py does this for you): it waits `queued` for its
    first batch of events at `POST /api/runs/{id}/events`, sent with the `token` of this answer.
    With a `client_key` too, a retry returns the run the first call made (200, with a new token)
    instead of making another.
    """
    user = _researcher(request)
    if body.external:
        run, token, made = remote.run_create_external(
            user=user,
            name=body.name,
            kind=body.kind,
            config=body.config,
            client_key=body.client_key,
        )
        return Status(201 if made else 200, {**_out(run, detail=True), "token": token})
    run = services.run_create(
        user=user,
        name=body.name,
        config=body.config,
        executor=body.executor,
        resources={"gpus": body.gpus},
    )
    return Status(201, _out(run, detail=True))


@api.post("/runs/{run_id}/token", response={200: RunTokenOut, **ERRORS}, tags=["runs"])
def new_run_token(request: HttpRequest, run_id: int) -> Any:
    """A new token for an external (or Ray) run's HTTP ingest; its older tokens stop working."""
    return {"token": remote.run_token_rotate(run=_run(request, run_id), user=request.auth)}


@api.get("/runs", response={200: list[RunOut], **ERRORS}, tags=["runs"])
def list_runs(
    request: HttpRequest,
    status: str | None = None,
    kind: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10**9),  # past int64 SQLite refuses the OFFSET
) -> Any:
    """Runs you can see, newest first."""
    runs = selectors.run_list(user=_researcher(request), status=status, kind=kind)
    return [_out(run) for run in runs[offset : offset + limit]]


@api.get("/runs/{run_id}", response={200: RunDetailOut, **ERRORS}, tags=["runs"])
def get_run(request: HttpRequest, run_id: int) -> Any:
    """One run: status, progress, ETA, error and traceback, config, checkpoints."""
    return _out(_run(request, run_id), detail=True)


@api.post("/runs/{run_id}/launch", response={200: RunDetailOut, **ERRORS}, tags=["runs"])
def launch_run(request: HttpRequest, run_id: int) -> Any:
    """Queue a draft for a worker (422 when its config is not valid any more)."""
    return _act(request, run_id, services.run_launch)


@api.post("/runs/{run_id}/cancel", response={200: RunDetailOut, **ERRORS}, tags=["runs"])
def cancel_run(request: HttpRequest, run_id: int) -> Any:
    """Cancel a queued run at once, or ask a running one to stop (SIGTERM, then SIGKILL)."""
    return _act(request, run_id, services.run_cancel)


@api.post("/runs/{run_id}/resume", response={200: RunDetailOut, **ERRORS}, tags=["runs"])
def resume_run(request: HttpRequest, run_id: int) -> Any:
    """Resume a failed, lost or cancelled run from its last checkpoint."""
    return _act(request, run_id, services.run_resume)


@api.post("/runs/{run_id}/retry", response={200: RunDetailOut, **ERRORS}, tags=["runs"])
def retry_run(request: HttpRequest, run_id: int) -> Any:
    """A new run with the same config in a fresh run dir, queued at once."""
    return _act(request, run_id, services.run_retry)


@api.get("/runs/{run_id}/metrics", response={200: SeriesOut, **ERRORS}, tags=["metrics"])
def run_metrics(
    request: HttpRequest,
    run_id: int,
    name: str = "reward",
    max_points: int = Query(500, ge=2, le=20_000),
    smoothing: float = Query(0.0, ge=0.0, lt=1.0),
    after_step: int | None = None,
) -> Any:
    """One metric series, downsampled to `max_points` keeping minima and maxima."""
    run = _run(request, run_id)
    return run_metrics_series(
        run=run, name=name, max_points=max_points, smoothing=smoothing, after_step=after_step
    )


@api.get("/runs/{run_id}/metric-names", response={200: list[str], **ERRORS}, tags=["metrics"])
def run_metric_names(request: HttpRequest, run_id: int) -> Any:
    """The names of the run's metric series."""
    return metric_names(run=_run(request, run_id))


@api.get("/runs/{run_id}/traces", response={200: TracePageOut, **ERRORS}, tags=["traces"])
def run_traces(
    request: HttpRequest,
    run_id: int,
    filters: Query[TraceFilters],
    after: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> Any:
    """One page of the run's traces, newest first (keyset pagination: pass `next` as `after`)."""
    run = _run(request, run_id)
    items, next_cursor = traces_page(
        user=request.auth, run=run, after=after, limit=limit, **filters.selector_kwargs()
    )
    return {"items": [TraceOut.from_orm(t) for t in items], "next": next_cursor}
