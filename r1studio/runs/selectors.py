"""Reads of runs: who may see which run, logs tails, checkpoints, model and dataset pickers.

Visibility (the one rule every page, the API, traces and the live stream use): admins see every
run; researchers see every launched run of the team and their own drafts; annotators see none.
Changing a run (edit, launch, cancel, resume, retry) is for its owner or an admin
(`run_can_change`); cloning is open to whoever can see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from r1studio.core.roles import ADMIN, RESEARCHER, user_has_role, user_role
from r1studio.runs.inputs import input_choices
from r1studio.runs.models import Checkpoint, Run, RunExecutor, RunStatus

LOG_STREAMS = ("stdout", "stderr")


def runs_visible_to(*, user: Any) -> QuerySet[Run]:
    """The runs `user` may see (see the module docstring)."""
    if user_role(user) == ADMIN:
        return Run.objects.all()
    if not user_has_role(user, RESEARCHER):
        return Run.objects.none()
    return Run.objects.filter(~Q(status=RunStatus.DRAFT) | Q(owner=user))


def run_get_for_user(*, user: Any, pk: int) -> Run:
    """The run `pk` if `user` may see it; Http404 otherwise (hiding that it exists)."""
    run = runs_visible_to(user=user).select_related("owner").filter(pk=pk).first()
    if run is None:
        raise Http404("No such run")
    return run


def run_can_change(*, run: Run, user: Any) -> bool:
    """True when `user` may edit, launch, cancel, resume or retry `run`."""
    if not user_has_role(user, RESEARCHER):
        return False
    return run.owner_id == user.pk or user_role(user) == ADMIN


def run_list(
    *,
    user: Any,
    status: str | None = None,
    kind: str | None = None,
    search: str | None = None,
    tag: str | None = None,
) -> QuerySet[Run]:
    """Visible runs, newest first, optionally filtered by status, kind, name and tag."""
    runs = runs_visible_to(user=user).select_related("owner")
    if status:
        runs = runs.filter(status=status)
    if kind:
        runs = runs.filter(kind=kind)
    if search:
        runs = runs.filter(name__icontains=search.strip())
    if tag:
        runs = runs.filter(tags__contains=f",{tag.strip()},")
    return runs


def run_list_with_results(**filters: Any) -> QuerySet[Run]:
    """`run_list` with each run's latest `reward` (`last_reward`) and latest pass@1
    (`last_pass_at_1`, from its newest evaluation) annotated, in the same single query.

    The metric series and eval results are reached through their reverse relations
    (`metric_series`, `eval_results`), so this app reads them without importing their apps.
    """
    series = Run._meta.get_field("metric_series").related_model
    results = Run._meta.get_field("eval_results").related_model
    reward = series.objects.filter(run=OuterRef("pk"), name="reward").values("last_value")[:1]
    pass_at_1 = (
        results.objects.filter(run=OuterRef("pk"), pass_at_1__isnull=False)
        .order_by("-step", "-id")
        .values("pass_at_1")[:1]
    )
    return run_list(**filters).annotate(
        last_reward=Subquery(reward), last_pass_at_1=Subquery(pass_at_1)
    )


def run_tags_in_use(*, user: Any, limit: int = 200) -> list[str]:
    """The tags of the visible runs, sorted, for the list's tag filter (one query)."""
    found: set[str] = set()
    rows = runs_visible_to(user=user).exclude(tags="").values_list("tags", flat=True)
    for tags in rows.order_by("-created_at")[:limit]:
        found.update(tag for tag in tags.split(",") if tag)
    return sorted(found, key=str.lower)


def run_log_tail(*, run: Run, stream: str, max_bytes: int = 16_384) -> str:
    """The last `max_bytes` of the run's stdout.log or stderr.log ("" when there is none)."""
    if stream not in LOG_STREAMS or not run.run_dir:
        return ""
    path = Path(run.run_dir) / f"{stream}.log"
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size > max_bytes:  # drop the first, cut line
        text = text.split("\n", 1)[-1]
    return text


def checkpoint_dirs(run_dir: str | Path) -> list[tuple[int, Path]]:
    """`(step, path)` of the `checkpoints/checkpoint-<step>` folders on disk, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    found = []
    if folder.is_dir():
        for child in folder.iterdir():
            prefix, _, step = child.name.partition("-")
            if child.is_dir() and prefix == "checkpoint" and step.isdigit():
                found.append((int(step), child))
    return sorted(found)


def run_last_checkpoint(*, run: Run) -> str | None:
    """The newest checkpoint of the run still on disk, or None. A run on a Ray cluster keeps
    its checkpoints on the cluster's storage: there, the last one the stage reported."""
    if run.executor == RunExecutor.RAY:
        last = Checkpoint.objects.filter(run=run).order_by("-step").first()
        return last.path if last else None
    if not run.run_dir:
        return None
    found = checkpoint_dirs(run.run_dir)
    return str(found[-1][1]) if found else None


@dataclass(frozen=True)
class PickerChoice:
    """One model or dataset offered by the config form's pickers."""

    path: str
    label: str
    group: str


def toy_dir() -> Path:
    return Path(settings.R1STUDIO_DATA_DIR) / "toy"


def model_choices(*, user: Any, limit: int = 50) -> list[PickerChoice]:
    """Models to start from: the toy models, then earlier runs' final models and checkpoints."""
    choices = []
    for name in ("base", "student-base"):
        path = toy_dir() / "models" / name
        if path.is_dir():
            choices.append(PickerChoice(str(path), f"toy {name}", "Toy models"))
    runs = run_list(user=user).filter(kind__in=("grpo", "sft")).exclude(run_dir="")[:limit]
    for run in runs:
        final = Path(run.run_dir) / "final"
        if final.is_dir():
            choices.append(PickerChoice(str(final), f"#{run.pk} {run.name}: final", "Runs"))
        for step, path in reversed(checkpoint_dirs(run.run_dir)):
            label = f"#{run.pk} {run.name}: checkpoint {step}"
            choices.append(PickerChoice(str(path), label, "Runs"))
    return choices


def dataset_choices(*, user: Any, limit: int = 50) -> list[PickerChoice]:
    """Datasets: the toy data files, the dataset versions (`dataset:NAME@N`, offered by the app
    that owns them, r1studio.runs.inputs), then the folders earlier generate runs wrote."""
    choices = []
    for name in ("train.jsonl", "heldout.jsonl", "sft.jsonl"):
        path = toy_dir() / "data" / name
        if path.is_file():
            choices.append(PickerChoice(str(path), f"toy {name}", "Toy data"))
    choices += input_choices(user=user, limit=limit)
    runs = run_list(user=user).filter(kind="generate").exclude(run_dir="")[:limit]
    for run in runs:
        dataset = Path(run.run_dir) / "dataset"
        if dataset.is_dir():
            choices.append(PickerChoice(str(dataset), f"#{run.pk} {run.name}: dataset", "Runs"))
    return choices


def run_outputs(*, run: Run) -> list[dict[str, str]]:
    """What the run wrote that a later stage can use: final model, dataset, eval results."""
    if not run.run_dir:
        return []
    outputs = []
    for name, label in (("final", "final model"), ("dataset", "dataset"), ("eval", "eval results")):
        path = Path(run.run_dir) / name
        if path.exists():
            outputs.append({"label": label, "path": str(path)})
    return outputs


RUNS_PLACEHOLDER = "${runs}/"
INPUT_LABELS = {"model.path": "model", "data.source": "data", "eval.benchmark": "eval data"}


@dataclass
class RunInput:
    """One input of a config: the path at `loc` and, when an earlier run wrote it, that run."""

    loc: str
    label: str
    path: str
    run: Run | None = None
    what: str = ""  # "final model", "checkpoint step 40", "dataset", ...
    placeholder: str = ""  # `NN-stage` of an unresolved `${runs}/NN-stage/...`


def _strings(value: Any, loc: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [
            pair
            for key, item in value.items()
            for pair in _strings(item, f"{loc}.{key}" if loc else str(key))
        ]
    if isinstance(value, list):
        return [pair for i, item in enumerate(value) for pair in _strings(item, f"{loc}.{i}")]
    return [(loc, value)] if isinstance(value, str) and value else []


def _input_label(loc: str) -> str:
    if loc in INPUT_LABELS:
        return INPUT_LABELS[loc]
    parts = loc.split(".")
    if parts[0] == "benchmarks":
        return "benchmark"
    if parts[0] in ("rewards", "verifiers") and "params" in parts:
        return "judge model" if parts[-1] == "model" else parts[-1].replace("_", " ")
    if "decontaminate" in parts:
        return "decontamination set"
    return loc


def _what(rest: Path, run: Run) -> str:
    parts = rest.parts
    if not parts:
        return "run folder"
    if parts[0] == "final":
        return f"final model, step {run.step}" if run.step else "final model"
    if parts[0] == "checkpoints" and len(parts) > 1:
        prefix, _, step = parts[1].partition("-")
        if prefix == "checkpoint" and step.isdigit():
            return f"checkpoint step {step}"
    return str(rest)


def config_inputs(*, config: Any, user: Any) -> list[RunInput]:
    """The config's paths that an earlier run wrote (a model, a dataset, a judge), each with
    the run it came from, found by its run folder (one query); plus the `${runs}/NN-stage`
    placeholders no run fills yet. Other paths (the toy data, hub ids) are not listed."""
    found: list[tuple[str, str, list[str]]] = []
    placeholders: list[RunInput] = []
    for loc, value in _strings(config if isinstance(config, dict) else {}):
        if value.startswith(RUNS_PLACEHOLDER):
            step = value[len(RUNS_PLACEHOLDER) :].split("/", 1)[0]
            placeholders.append(RunInput(loc, _input_label(loc), value, placeholder=step))
        elif value.startswith("/"):
            path = Path(value)
            found.append((loc, value, [str(p) for p in (path, *path.parents)][:-1]))
    if not found:
        return placeholders
    folders = {folder for _, _, ancestors in found for folder in ancestors}
    runs = {
        run.run_dir: run
        for run in runs_visible_to(user=user).filter(run_dir__in=folders).exclude(run_dir="")
    }
    inputs = []
    for loc, value, ancestors in found:
        run = next((runs[a] for a in ancestors if a in runs), None)
        if run is not None:
            what = _what(Path(value).relative_to(run.run_dir), run)
            inputs.append(RunInput(loc, _input_label(loc), value, run=run, what=what))
    return inputs + placeholders
