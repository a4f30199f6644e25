"""Writes on runs: create, edit, launch, cancel, resume, retry and clone.

Every function takes keyword arguments and the acting user, checks the user's right to do it
(`PermissionDenied` otherwise), and changes rows with conditional updates so that a double click
or a race with the supervisor cannot move a run backwards. A config is parsed once per action
(`config_parse`: types, cross-field rules, allowed paths, the dataset versions it names)
before it is stored or queued; an invalid one raises `RunConfigError` with the pipeline's
`[{"loc", "msg"}]` errors and changes nothing. Services take a config already parsed (the
form's) and never parse it again. The checks that need the files (model folders, data rows,
the tokenizer) run only on an explicit Check (`machine=True`) and on the worker before the
stage starts, never while a Launch waits.
Launching enqueues the supervisor task only after the transaction commits.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from pydantic import BaseModel

from pipeline.access import Roots, allowed_roots
from pipeline.checks import config_errors
from pipeline.config import ConfigError, config_to_dict, parse_config
from r1studio.core.roles import RESEARCHER, require_role
from r1studio.runs.hooks import runs_ended
from r1studio.runs.ingest import events_publish, run_state_payload
from r1studio.runs.inputs import (
    InputError,
    config_input_errors,
    config_inputs_resolve,
    config_references,
)
from r1studio.runs.models import ENDED_STATUSES, Run, RunExecutor, RunStatus
from r1studio.runs.provenance import launch_record
from r1studio.runs.selectors import run_can_change, run_last_checkpoint
from r1studio.runs.tasks import supervise_run

StageConfig = (
    BaseModel  # one of pipeline.config's GRPOStage, SFTStage, GenerateStage, EvaluateStage
)

# Training goes to GPU workers; sampling and evaluation are the light stages.
QUEUE_FOR_KIND = {"grpo": "gpu", "sft": "gpu", "generate": "cpu", "evaluate": "cpu"}
# Runs on a Ray cluster are watched by short tasks on a queue of their own
# (r1studio/runs/ray_tasks.py), sent by name: that module imports this one.
RAY_QUEUE = "ray"
RAY_WATCH_TASK = "runs.ray_watch"
RESUMABLE_STATUSES = (RunStatus.FAILED, RunStatus.LOST, RunStatus.CANCELLED)
NEEDS_CHECKPOINT = ("grpo", "sft")


class RunConfigError(ValidationError):
    """An invalid stage config; `config_errors` is `[{"loc": "dotted.path", "msg": str}]`."""

    def __init__(self, errors: list[dict[str, str]]):
        self.config_errors = errors
        by_field: dict[str, list[str]] = {}
        for error in errors:
            by_field.setdefault(error.get("loc") or "config", []).append(error["msg"])
        super().__init__(by_field)


class RunStateError(ValidationError):
    """The run is not in a state that allows the action (e.g. launching a finished run)."""


def _require_researcher(user: Any) -> None:
    require_role(user, RESEARCHER, "Runs")


def _require_change(run: Run, user: Any) -> None:
    _require_researcher(user)
    if not run_can_change(run=run, user=user):
        raise PermissionDenied("Only the run's owner or an admin can change it.")


def _require_worker_run(run: Run) -> None:
    if run.executor == RunExecutor.EXTERNAL:
        raise RunStateError(
            "An external run is run by its own script: start the script again to go on."
        )


def config_parse(config: Any, *, machine: bool = False) -> StageConfig:
    """Parse a config dict once and check it: types, cross-field rules and allowed paths; with
    `machine`, also what needs the files here. Returns the parsed config or raises."""
    if isinstance(config, BaseModel):
        parsed = config
    elif not isinstance(config, dict):
        raise RunConfigError([{"loc": "", "msg": "a config is a mapping of fields"}])
    else:
        try:
            parsed = parse_config(config)
        except ConfigError as exc:
            raise RunConfigError(exc.errors) from None
    errors = config_errors(parsed, config_roots(), machine=False)
    # References (`dataset:NAME@N`) are checked by the app that owns them (runs/inputs.py).
    as_dict = config_to_dict(parsed)
    errors += config_input_errors(as_dict)
    if machine and not errors:
        checked = parsed
        if config_references(as_dict):
            # The files behind the references, checked as the stage will read them.
            try:
                checked = parse_config(config_inputs_resolve(as_dict))
            except InputError as exc:
                raise RunConfigError([{"loc": "data.source", "msg": str(exc)}]) from None
        errors = config_errors(checked, config_roots(), machine=True)
    if errors:
        raise RunConfigError(errors)
    return parsed


def config_check(config: Any) -> dict:
    """Check a config fully, the files included (the form's Check); returns it or raises."""
    config_parse(config, machine=True)
    return config


def config_roots() -> Roots:
    """The folders runs may read (`pipeline.access.Roots`): the data directory, the benchmarks
    folder and R1STUDIO_ALLOWED_ROOTS; the supervisor hands the same to the pipeline."""
    return allowed_roots(data_dir=settings.R1STUDIO_DATA_DIR, extra=settings.R1STUDIO_ALLOWED_ROOTS)


def run_create(
    *,
    user: Any,
    name: str,
    config: dict | StageConfig,
    parent: Run | None = None,
    validate: bool = True,
    preset: str = "",
    tags: str = "",
    executor: str | None = None,
    resources: dict | None = None,
) -> Run:
    """A new draft run owned by `user`; the config (a dict, or one `config_parse` returned) is
    checked unless `validate` is False (a clone: checked when launched).

    `preset` is the key of the preset the config started from: later presets of the recipe
    find this run by it, whatever the run is called. `executor`/`resources`: where its launch
    will run it (`_executor_fields`), a local worker by default.
    """
    placement = _executor_fields(executor, resources)
    _require_researcher(user)
    if validate or isinstance(config, BaseModel):
        config = config_to_dict(config_parse(config))
    kind = config.get("kind") if isinstance(config, dict) else None
    if kind not in QUEUE_FOR_KIND:
        raise RunConfigError(
            [{"loc": "kind", "msg": f"must be one of {', '.join(QUEUE_FOR_KIND)}"}]
        )
    name = (name or "").strip() or f"{kind} run"
    return Run.objects.create(
        name=name[:200],
        owner=user,
        kind=kind,
        config=config,
        parent=parent,
        preset=(preset or "")[:64],
        tags=tags_normalize(tags),
        **placement,
    )


def tags_normalize(text: str) -> str:
    """`"rl, Baseline,,rl"` → `",rl,Baseline,"`: trimmed, deduplicated, in the order given."""
    seen: list[str] = []
    for raw in (text or "").split(","):
        tag = " ".join(raw.split())[:40]
        if tag and tag not in seen:
            seen.append(tag)
    joined = ",".join(seen)[:498]
    return f",{joined}," if joined else ""


def run_set_tags(*, run: Run, user: Any, tags: str) -> Run:
    """Replace the run's tags (a comma-separated list); by its owner or an admin, any status."""
    _require_change(run, user)
    run.tags = tags_normalize(tags)
    Run.objects.filter(pk=run.pk).update(tags=run.tags)
    return run


_SUFFIX = re.compile(r"\s*\((?:retry|copy)(?: \d+)?\)$")


def _derived_name(name: str, word: str) -> str:
    """The name of a retry or copy: one suffix, numbered after the ones already taken.

    "R1-Zero GRPO (retry)" retried again is "R1-Zero GRPO (retry 2)", not "(retry) (retry)".
    """
    base = name
    while _SUFFIX.search(base):
        base = _SUFFIX.sub("", base)
    base = base[:180]
    taken = set(
        Run.objects.filter(name__startswith=f"{base} ({word}").values_list("name", flat=True)
    )
    candidate, n = f"{base} ({word})", 1
    while candidate in taken:
        n += 1
        candidate = f"{base} ({word} {n})"
    return candidate


def run_update_config(
    *, run: Run, user: Any, config: dict | StageConfig, name: str | None = None
) -> Run:
    """Replace a draft's config (and name); only drafts, only by their owner or an admin."""
    _require_change(run, user)
    if run.status != RunStatus.DRAFT:
        raise RunStateError("Only a draft's config can be edited; clone the run to change it.")
    config = config_to_dict(config_parse(config))
    fields = {"config": config, "kind": config["kind"]}
    if name is not None and name.strip():
        fields["name"] = name.strip()[:200]
    if not Run.objects.filter(pk=run.pk, status=RunStatus.DRAFT).update(**fields):
        raise RunStateError("The run was launched meanwhile; clone it to change its config.")
    run.refresh_from_db()
    return run


def run_dir_for(run: Run) -> Path:
    """`<data dir>/runs/<row id>-<uid>`: the row id for people, the uid so that no other run
    (from this database or an earlier one over the same data dir) can ever get the folder."""
    return Path(settings.R1STUDIO_DATA_DIR) / "runs" / f"{run.pk}-{run.uid.hex}"


def _enqueue(run: Run) -> None:
    queue = QUEUE_FOR_KIND[run.kind]
    run_id = run.pk
    if run.executor == RunExecutor.RAY:
        send = supervise_run.app.send_task
        transaction.on_commit(lambda: send(RAY_WATCH_TASK, args=[run_id], queue=RAY_QUEUE))
        return
    transaction.on_commit(lambda: supervise_run.apply_async(args=[run_id], queue=queue))


def _executor_fields(executor: str | None, resources: dict | None) -> dict[str, Any]:
    """The Run fields of a launch's executor choice: `worker` (default) or `ray`, with the
    GPUs per node and nodes a Ray job asks for (`{"gpus": 2, "nodes": 1}`)."""
    if not executor or executor == RunExecutor.WORKER:
        return {"executor": RunExecutor.WORKER}
    if executor != RunExecutor.RAY:
        raise RunStateError(
            f"A run is launched on a local worker or a Ray cluster, not {executor!r}."
        )
    if not settings.RAY_ADDRESS:
        raise RunStateError("No Ray cluster is configured (RAY_ADDRESS); launch on a worker.")
    asked: dict[str, int] = {}
    for name in ("gpus", "nodes"):
        value = (resources or {}).get(name)
        if value in (None, ""):
            continue
        if isinstance(value, bool) or not str(value).isdigit() or int(value) > 1024:
            raise RunStateError(f"{name}: expected a whole number from 0 to 1024, got {value!r}")
        asked[name] = int(value)
    if asked.get("nodes", 1) > 1:
        raise RunStateError(
            "nodes: a Ray job runs the stage on one node (up to its GPUs); several nodes are "
            "not supported yet"
        )
    return {"executor": RunExecutor.RAY, "job_state": {"resources": asked}, "job_id": ""}


@transaction.atomic
def run_launch(
    *,
    run: Run,
    user: Any,
    parsed: StageConfig | None = None,
    executor: str | None = None,
    resources: dict | None = None,
) -> Run:
    """Queue a draft for a worker, or for a Ray cluster (`executor="ray"`, with `resources`
    `{"gpus": n}`). Invalid config: RunConfigError, nothing queued.

    `parsed`: the draft's config as `config_parse` returned it moments ago (create and launch
    in one click), so that it is not parsed again."""
    _require_change(run, user)
    if run.status != RunStatus.DRAFT:
        raise RunStateError(f"Only a draft can be launched; this run is {run.status}.")
    if resources is None and (executor or run.executor) == run.executor:
        resources = (run.job_state or {}).get("resources")  # chosen when the draft was made
    placement = _executor_fields(executor or run.executor, resources)
    config = config_to_dict(config_parse(parsed if parsed is not None else run.config))
    run_dir = run.run_dir or str(run_dir_for(run))
    updated = Run.objects.filter(pk=run.pk, status=RunStatus.DRAFT).update(
        status=RunStatus.QUEUED,
        config=config,
        **launch_record(config),  # config hash, input hashes, parent checkpoint, seed
        kind=config["kind"],
        run_dir=run_dir,
        queued_at=timezone.now(),
        cancel_requested=False,
        **placement,
    )
    if not updated:
        raise RunStateError("The run was launched meanwhile.")
    run.refresh_from_db()
    _enqueue(run)
    return run


@transaction.atomic
def run_create_and_launch(
    *,
    user: Any,
    name: str,
    config: dict | StageConfig,
    preset: str = "",
    executor: str | None = None,
    resources: dict | None = None,
) -> Run:
    """Create a run and queue it at once (the form's Launch button); all or nothing."""
    parsed = config_parse(config)
    run = run_create(user=user, name=name, config=parsed, preset=preset)
    return run_launch(run=run, user=user, parsed=parsed, executor=executor, resources=resources)


def run_cancel(*, run: Run, user: Any) -> Run:
    """Cancel: a queued run ends at once; a running one is stopped by its supervisor
    (SIGTERM to the process group, SIGKILL after R1STUDIO_CANCEL_GRACE_SECONDS), or on a Ray
    cluster by its watcher's next look (`stop_job`; the same grace)."""
    _require_change(run, user)
    cancelled_now = Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
        status=RunStatus.CANCELLED, finished_at=timezone.now(), cancel_requested=True
    )
    if not cancelled_now and not Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        cancel_requested=True
    ):
        run.refresh_from_db()
        raise RunStateError(
            f"Only a queued or running run can be cancelled; this one is {run.status}."
        )
    run.refresh_from_db()
    if cancelled_now:  # no supervisor will say it: tell the open run pages and recipes
        events_publish(run.pk, run_state_payload(run))
        runs_ended([run.pk])
    return run


@transaction.atomic
def run_resume(*, run: Run, user: Any) -> Run:
    """Queue a failed, lost or cancelled run again in the same run dir, from its last checkpoint
    (the supervisor passes `--resume`; metric points already stored are not stored again)."""
    _require_change(run, user)
    _require_worker_run(run)
    if run.status not in RESUMABLE_STATUSES:
        raise RunStateError(
            f"Only a failed, lost or cancelled run can be resumed (this is {run.status})."
        )
    checkpoint = run_last_checkpoint(run=run)
    if checkpoint is None and run.kind in NEEDS_CHECKPOINT:
        raise RunStateError("This run saved no checkpoint to resume from; retry it instead.")
    updated = Run.objects.filter(pk=run.pk, status__in=RESUMABLE_STATUSES).update(
        status=RunStatus.QUEUED,
        resume_from=checkpoint or "",
        queued_at=timezone.now(),
        finished_at=None,
        cancel_requested=False,
        error="",
        traceback="",
        eta_seconds=None,
    )
    if not updated:
        raise RunStateError("The run changed meanwhile.")
    run.refresh_from_db()
    _enqueue(run)
    return run


@transaction.atomic
def run_retry(*, run: Run, user: Any) -> Run:
    """A new run with the same config and a fresh run dir, queued at once (`parent` = `run`)."""
    _require_change(run, user)
    _require_worker_run(run)
    if run.status not in ENDED_STATUSES:
        raise RunStateError("Only an ended run can be retried.")
    retry = run_create(
        user=user,
        name=_derived_name(run.name, "retry"),
        config=run.config,
        parent=run,
        preset=run.preset,
        tags=run.tags,
    )
    resources = (run.job_state or {}).get("resources")
    return run_launch(run=retry, user=user, executor=run.executor, resources=resources)


def run_clone(*, run: Run, user: Any, name: str | None = None) -> Run:
    """A new draft with the run's config, to edit and launch (clone-and-edit)."""
    clone_name = name or _derived_name(run.name, "copy")
    return run_create(
        user=user,
        name=clone_name,
        config=run.config,
        parent=run,
        validate=False,
        preset=run.preset,
        tags=run.tags,
    )


def runs_requeue() -> int:
    """Send every queued run to its queue again; returns how many.

    For a broker that started empty (the embedded Redis of `make run` keeps nothing across
    restarts), queued runs' messages are gone. A duplicate message is harmless: the supervisor
    claims a run atomically, so only one of them ever runs it.
    """
    queued = list(Run.objects.filter(status=RunStatus.QUEUED).order_by("queued_at", "pk"))
    for run in queued:
        _enqueue(run)
    return len(queued)
