"""Reads for the recipe page beyond the recipe's own rows: the headline chart (pass@1 of each
stage's checkpoint along the recipe), the evaluation result each evaluate stage links to, and
the dataset versions a recipe names as fixed inputs.

pass@1 comes from `r1studio.evals.selectors.checkpoints_pass_at_1`, which credits an evaluate
stage's result to the stage that trained the model it evaluated (and RL's periodic eval to the
RL run itself), so the chart's x axis is the stages that make a checkpoint, in recipe order,
plus any evaluate stage whose model the recipe did not make (the base model, say).
"""

from __future__ import annotations

from typing import Any

from r1studio.curation.models import DatasetVersion
from r1studio.evals.models import EvalResult
from r1studio.evals.selectors import checkpoints_pass_at_1
from r1studio.recipes.diagram import recipe_diagram
from r1studio.recipes.graph import stage_inputs
from r1studio.recipes.models import RecipeStage
from r1studio.recipes.scheduler import stage_dict

TRAINS = ("grpo", "sft")


def recipe_pass_at_1(*, stages: list[RecipeStage]) -> dict[str, Any]:
    """`{"x": [stage label], "keys": [stage key], "lines": [{"label", "values", "se"}],
    "rows": [{"stage", "run", "scores": [score or None]}], "benchmarks": [name]}`: one line per
    benchmark, a value (0-1) or None per stage; `lines` is empty until a result exists.

    The stages' runs are the recipe's own, so whoever may see the recipe may see them."""
    with_runs = [s for s in stages if s.run_id is not None]
    scores = checkpoints_pass_at_1(runs=[s.run for s in with_runs]) if with_runs else {}
    shown = [
        s for s in stages if s.kind in TRAINS or (s.run_id is not None and scores.get(s.run_id))
    ]
    benchmarks = sorted({name for s in shown for name in scores.get(s.run_id, {})})
    lines = []
    for name in benchmarks:
        cells = [scores.get(s.run_id, {}).get(name) for s in shown]
        lines.append(
            {
                "label": name,
                "values": [c["pass_at_1"] if c else None for c in cells],
                "se": [c["se"] if c else None for c in cells],
            }
        )
    rows = [
        {
            "stage": stage,
            "scores": [scores.get(stage.run_id, {}).get(name) for name in benchmarks],
        }
        for stage in shown
    ]
    labels = [s.label for s in shown]
    return {
        # A category axis merges equal labels: two stages named alike are told apart by key.
        "x": [f"{s.label} ({s.key})" if labels.count(s.label) > 1 else s.label for s in shown],
        "keys": [s.key for s in shown],
        "lines": lines,
        "rows": rows,
        "benchmarks": benchmarks,
    }


def recipe_eval_results(*, stages: list[RecipeStage]) -> dict[int, int]:
    """`{run id: eval result id}` of each evaluate stage's run (its latest result)."""
    run_ids = [s.run_id for s in stages if s.kind == "evaluate" and s.run_id is not None]
    found: dict[int, int] = {}
    for run_id, pk in (
        EvalResult.objects.filter(run_id__in=run_ids).order_by("id").values_list("run_id", "pk")
    ):
        found[run_id] = pk
    return found


def recipe_fixed_versions(*, stages: list[RecipeStage]) -> dict[str, tuple[int, int]]:
    """`{"dataset:NAME@N": (dataset id, number)}` of the fixed versions the stages read (those
    that exist; datasets are shared by researchers)."""
    wanted: dict[str, tuple[str, int]] = {}
    for stage in stages:
        for item in stage_inputs(stage_dict(stage)):
            ref = item.get("ref")
            if not isinstance(ref, str) or not ref.startswith("dataset:") or "@" not in ref:
                continue
            name, _, number = ref.removeprefix("dataset:").rpartition("@")
            if number.isdigit():
                wanted[ref] = (name, int(number))
    if not wanted:
        return {}
    versions = DatasetVersion.objects.filter(
        dataset__name__in={name for name, _ in wanted.values()}
    ).values_list("dataset__name", "number", "dataset_id")
    index = {(name, number): dataset_id for name, number, dataset_id in versions}
    return {ref: (index[key], key[1]) for ref, key in wanted.items() if key in index}


LEGEND = ("pending", "ready", "running", "waiting", "finished", "failed", "cancelled")


def recipe_page(*, stages: list[RecipeStage]) -> dict[str, Any]:
    """What the recipe page draws beyond the stage table: `diagram` (the graph), `legend`
    (its status colours), `chart` (pass@1 along the recipe) and `chart_data` (its JSON)."""
    chart = recipe_pass_at_1(stages=stages)
    return {
        "diagram": recipe_diagram(
            stages=stages,
            results=recipe_eval_results(stages=stages),
            versions=recipe_fixed_versions(stages=stages),
        ),
        "legend": LEGEND,
        "chart": chart,
        "chart_data": {"x": chart["x"], "lines": chart["lines"]},
    }
