"""The recipe scheduler: start each stage as soon as its inputs exist, follow its run, stop on
a failure, pause at a gate.

`recipe_advance(recipe_id=...)` is the one step, idempotent and safe to call any time from
anywhere (a thin Celery task calls it when one of the recipe's runs ends, when a dataset version
it waits for is written, and for every active recipe when a worker starts):

1. sync each stage from its run: a finished training run gives its `final` checkpoint, a
   finished `generate` run the dataset version registered from it (written by a curation job
   just after the run: until then the stage stays running and the caller is told to look again),
   a failed or cancelled run fails the stage, a `lost` one (its worker died) is resumed from its
   last checkpoint — up to MAX_AUTO_RESUMES times — so a restart mid-recipe carries on;
   a waiting gate finishes once its annotation queue has been promoted;
2. mark `blocked` the stages downstream of a failed one, and start every pending stage whose
   inputs are all there (unless a stage failed: a failed recipe starts nothing new until a
   retry): a run is created from the stage's config with each input written into its field
   and launched through `runs.services` (on the queue runs picks for its kind); a gate makes an
   annotation queue of its input version and waits, or, switched off, passes the version on;
3. derive the recipe's status from its stages.

The database is the truth: the recipe row is locked for the step, a stage is claimed by a
conditional update before its run is made, and nothing is kept in memory between steps.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from r1studio.curation.annotation.queues import queue_create
from r1studio.curation.models import DatasetJob, DatasetVersion, JobStatus
from r1studio.recipes.graph import config_set, gate_settings, stage_inputs
from r1studio.recipes.models import (
    DONE_STAGE,
    Recipe,
    RecipeStage,
    RecipeStatus,
    StageStatus,
)
from r1studio.runs.models import Run, RunStatus
from r1studio.runs.presets import STEP_TO_PRESET
from r1studio.runs.services import (
    RunConfigError,
    RunStateError,
    config_parse,
    run_create,
    run_launch,
    run_resume,
    run_retry,
)

logger = logging.getLogger(__name__)

MAX_AUTO_RESUMES = 3
# A generate run's version is written by a job right after the run; past this, give up on it.
REGISTRATION_WAIT = timedelta(minutes=30)
ACTIVE_RUN = (RunStatus.DRAFT, RunStatus.QUEUED, RunStatus.RUNNING)
FAILED_STAGE = (StageStatus.FAILED, StageStatus.CANCELLED)
UPSTREAM_STOPPED = (StageStatus.FAILED, StageStatus.CANCELLED, StageStatus.BLOCKED)


def _end(stage: RecipeStage, status: str, error: str = "") -> None:
    stage.status = status
    stage.error = error[:5000]
    stage.finished_at = stage.finished_at or timezone.now()


def _sync_finished(stage: RecipeStage, run: Run) -> bool:
    """A finished run's output; returns True when the stage must be looked at again later."""
    if stage.kind in ("grpo", "sft"):
        if (Path(run.run_dir) / "final").is_dir():
            _end(stage, StageStatus.FINISHED)
        else:
            _end(stage, StageStatus.FAILED, f"run #{run.pk} finished without a final model")
        return False
    if stage.kind != "generate":
        _end(stage, StageStatus.FINISHED)
        return False
    version = DatasetVersion.objects.filter(source_run=run).order_by("-created_at", "-pk").first()
    if version is not None:
        stage.output_version = version
        _end(stage, StageStatus.FINISHED)
        return False
    job = DatasetJob.objects.filter(kind=DatasetJob.Kind.RUN, params__run=run.pk)
    job = job.order_by("-created_at", "-pk").first()
    if job is None:
        _end(stage, StageStatus.FAILED, f"run #{run.pk} wrote no dataset (it kept no rows?)")
    elif job.status == JobStatus.FAILED:
        _end(stage, StageStatus.FAILED, f"its dataset was not registered: {job.error}")
    elif run.finished_at and timezone.now() - run.finished_at > REGISTRATION_WAIT:
        _end(stage, StageStatus.FAILED, "its dataset version was still not written")
    else:
        return True  # the registration job is queued or running
    return False


def _sync_lost(stage: RecipeStage, run: Run, recipe: Recipe) -> None:
    """A lost run (its worker died): resume it, or retry it when it saved no checkpoint."""
    if recipe.status == RecipeStatus.CANCELLED:
        _end(stage, StageStatus.CANCELLED)
        return
    if stage.attempts > MAX_AUTO_RESUMES:
        _end(
            stage, StageStatus.FAILED, f"run #{run.pk} was lost {stage.attempts} times: {run.error}"
        )
        return
    try:
        try:
            stage.run = run_resume(run=run, user=recipe.owner)
        except RunStateError:
            stage.run = run_retry(run=run, user=recipe.owner)
    except (RunStateError, RunConfigError, PermissionDenied) as exc:
        _end(stage, StageStatus.FAILED, f"run #{run.pk} was lost and could not go on: {exc}")
        return
    stage.attempts += 1
    logger.info("recipe %s: stage %s's run #%s was lost, going on", recipe.pk, stage.key, run.pk)


def _sync_stage(stage: RecipeStage, recipe: Recipe) -> bool:
    """The stage's status from its run or its gate's queue; True: look again later."""
    if stage.status == StageStatus.WAITING and stage.gate_queue_id:
        promoted = DatasetVersion.objects.filter(
            provenance_type="annotation", provenance__queue=stage.gate_queue_id
        ).order_by("-created_at", "-pk")
        version = promoted.first()
        if version is not None:
            stage.output_version = version
            _end(stage, StageStatus.FINISHED)
        return False
    if stage.run is None:
        return False
    run = stage.run
    resumed = run.status in (*ACTIVE_RUN, RunStatus.FINISHED)
    if stage.status in FAILED_STAGE and recipe.status != RecipeStatus.CANCELLED and resumed:
        stage.status = StageStatus.RUNNING  # resumed by hand from its run's page
        stage.error = ""
        stage.finished_at = None
    if stage.status not in (StageStatus.READY, StageStatus.RUNNING):
        return False
    if run.status in ACTIVE_RUN:
        stage.status = StageStatus.RUNNING
    elif run.status == RunStatus.FINISHED:
        return _sync_finished(stage, run)
    elif run.status == RunStatus.FAILED:
        _end(stage, StageStatus.FAILED, run.error or f"run #{run.pk} failed")
    elif run.status == RunStatus.CANCELLED:
        _end(stage, StageStatus.CANCELLED, f"run #{run.pk} was cancelled")
    elif run.status == RunStatus.LOST:
        _sync_lost(stage, run, recipe)
    return False


def _input_value(item: dict[str, Any], by_key: dict[str, RecipeStage]) -> str:
    if item.get("ref"):
        return str(item["ref"])
    upstream = by_key[item["stage"]]
    if item.get("output") == "checkpoint":
        return str(Path(upstream.run.run_dir) / "final")
    return upstream.output_version.ref


def _start_gate(stage: RecipeStage, recipe: Recipe, source: DatasetVersion) -> None:
    if not stage.gate_enabled:
        stage.output_version = source
        stage.started_at = stage.started_at or timezone.now()
        _end(stage, StageStatus.SKIPPED)
        return
    if stage.gate_queue is None or stage.gate_queue.source_version_id != source.pk:
        settings = gate_settings(stage.config)
        try:
            stage.gate_queue = queue_create(
                user=recipe.owner,
                name=f"{recipe.name} · {stage.label}"[:200],
                version=source,
                guidelines=settings["guidelines"],
                overlap=settings["overlap"],
                limit=settings["limit"],
            )
        except (ValidationError, PermissionDenied) as exc:
            why = " ".join(getattr(exc, "messages", None) or [str(exc)])
            _end(stage, StageStatus.FAILED, f"no annotation queue: {why}")
            return
    stage.status = StageStatus.WAITING
    stage.started_at = stage.started_at or timezone.now()


def _start_run(stage: RecipeStage, recipe: Recipe, by_key: dict[str, RecipeStage]) -> None:
    config = dict(stage.config)
    for item in stage_inputs({"config": config, "inputs": stage.inputs}):
        config = config_set(config, item["field"], _input_value(item, by_key))
    config["kind"] = stage.kind
    preset = STEP_TO_PRESET.get(stage.key)
    try:
        parsed = config_parse(config)
        run = run_create(
            user=recipe.owner,
            name=f"{recipe.name} · {stage.label}",
            config=parsed,
            parent=stage.run,  # the failed attempt, when this is a retry
            preset=preset.key if preset else "",
            tags=f"recipe {recipe.pk}",
        )
        stage.run = run_launch(run=run, user=recipe.owner, parsed=parsed)
    except (RunConfigError, RunStateError, PermissionDenied) as exc:
        _end(stage, StageStatus.FAILED, " ".join(getattr(exc, "messages", [str(exc)])))
        return
    stage.status = StageStatus.RUNNING
    stage.attempts += 1
    stage.started_at = stage.started_at or timezone.now()
    stage.finished_at = None


def _start(stage: RecipeStage, recipe: Recipe, by_key: dict[str, RecipeStage]) -> None:
    # Claimed first: a second scheduler step on the same stage finds it taken.
    claimed = RecipeStage.objects.filter(
        pk=stage.pk, status__in=(StageStatus.PENDING, StageStatus.BLOCKED)
    ).update(status=StageStatus.READY)
    if not claimed:
        return
    stage.status = StageStatus.READY
    stage.error = ""
    if stage.kind == "gate":
        source = by_key[stage_inputs(stage_dict(stage))[0]["stage"]].output_version
        _start_gate(stage, recipe, source)
    else:
        _start_run(stage, recipe, by_key)


def stage_dict(stage: RecipeStage) -> dict[str, Any]:
    """A stored stage as a definition's stage (r1studio.recipes.graph)."""
    data = {
        "key": stage.key,
        "name": stage.name,
        "kind": stage.kind,
        "config": stage.config,
        "inputs": stage.inputs,
    }
    if stage.kind == "gate":
        data["gate_enabled"] = stage.gate_enabled
    return data


def _upstream(stage: RecipeStage, by_key: dict[str, RecipeStage]) -> list[RecipeStage]:
    return [
        by_key[item["stage"]]
        for item in stage_inputs(stage_dict(stage))
        if item.get("stage") in by_key
    ]


def _schedule(stages: list[RecipeStage], recipe: Recipe) -> None:
    """Block what a failure stops; start what can start. Repeated until nothing changes, so a
    gate switched off passes its version on within the same step."""
    by_key = {stage.key: stage for stage in stages}
    for _ in range(len(stages) + 1):
        changed = False
        failed = any(stage.status in FAILED_STAGE for stage in stages)
        for stage in stages:
            if stage.status not in (StageStatus.PENDING, StageStatus.BLOCKED):
                continue
            upstream = _upstream(stage, by_key)
            if any(up.status in UPSTREAM_STOPPED for up in upstream):
                if stage.status != StageStatus.BLOCKED:
                    stage.status = StageStatus.BLOCKED
                    stage.save(update_fields=["status"])
                    changed = True
                continue
            if stage.status == StageStatus.BLOCKED:
                stage.status = StageStatus.PENDING
                stage.save(update_fields=["status"])
                changed = True
            if failed or recipe.status == RecipeStatus.CANCELLED:
                continue
            if all(up.status in DONE_STAGE for up in upstream):
                _start(stage, recipe, by_key)
                stage.save()
                changed = True
        if not changed:
            return


def _recipe_status(recipe: Recipe, stages: list[RecipeStage]) -> None:
    if recipe.status == RecipeStatus.CANCELLED:
        return
    statuses = {stage.status for stage in stages}
    failed = next((s for s in stages if s.status in FAILED_STAGE), None)
    if failed is not None:
        status, error = RecipeStatus.FAILED, f"stage {failed.key} {failed.status}: {failed.error}"
    elif statuses <= set(DONE_STAGE):
        status, error = RecipeStatus.FINISHED, ""
    elif statuses & {StageStatus.RUNNING, StageStatus.READY}:
        status, error = RecipeStatus.RUNNING, ""
    elif StageStatus.WAITING in statuses:
        status, error = RecipeStatus.WAITING, ""
    else:
        status, error = RecipeStatus.RUNNING, ""
    ended = status in (RecipeStatus.FINISHED, RecipeStatus.FAILED)
    if (status, error[:5000]) != (recipe.status, recipe.error) or ended != bool(recipe.finished_at):
        recipe.status, recipe.error = status, error[:5000]
        recipe.finished_at = (recipe.finished_at or timezone.now()) if ended else None
        recipe.save(update_fields=["status", "error", "finished_at"])


def _state(stage: RecipeStage) -> tuple:
    return (stage.status, stage.run_id, stage.output_version_id, stage.error, stage.attempts)


def recipe_advance(*, recipe_id: int) -> bool:
    """One scheduler step (see the module docstring); True when it must run again shortly
    (a dataset version it waits for is being written)."""
    with transaction.atomic():
        recipe = (
            Recipe.objects.select_for_update().select_related("owner").filter(pk=recipe_id).first()
        )
        if recipe is None or recipe.status == RecipeStatus.DRAFT:
            return False
        stages = list(
            recipe.stages.select_related("run", "gate_queue", "output_version").order_by(
                "order", "pk"
            )
        )
        again = False
        for stage in stages:
            before = _state(stage)
            again |= _sync_stage(stage, recipe)
            if _state(stage) != before:
                stage.save()
        if recipe.status != RecipeStatus.FINISHED:
            _schedule(stages, recipe)
            _recipe_status(recipe, stages)
        return again
