"""A recipe definition as data, and its validation before anything is stored or launched.

A definition is what the API takes and what presets build::

    {"name": "R1-Zero", "stages": [
        {"key": "01-r1-zero", "kind": "grpo", "config": {...}},
        {"key": "02-cold-start-data", "kind": "generate", "config": {...},
         "inputs": [{"field": "model.path", "stage": "01-r1-zero"}]},
        {"key": "02-cold-start-gate", "kind": "gate", "gate_enabled": false,
         "inputs": [{"field": "data.source", "stage": "02-cold-start-data"}]},
        ...]}

A config may also name an earlier stage's output the way the CLI recipe files do,
`${runs}/<stage key>/final` (its checkpoint) or `${runs}/<stage key>/dataset` (its dataset): each
such value becomes an input of that field (an explicit input of the same field wins).

`definition_errors` returns `[{"stage", "field", "loc", "msg"}]`: no cycle, every input made by a
stage of the recipe, kinds that fit (an `sft` stage trains on a dataset, a `grpo` stage starts
from a checkpoint or a base model, `generate` and `evaluate` read a model, a gate reads a
dataset), and each stage's own config checks (`runs.services.config_parse`).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from pipeline.config import MAX_DEPTH, RUNS_VAR
from r1studio.curation.annotation.queues import MAX_ITEMS, MAX_OVERLAP
from r1studio.runs.services import RunConfigError, config_parse

STAGE_KINDS = ("grpo", "sft", "generate", "evaluate", "gate")
MAKES = {"grpo": "checkpoint", "sft": "checkpoint", "generate": "dataset", "gate": "dataset"}
KEY = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
PLACEHOLDER = re.compile(re.escape(RUNS_VAR) + r"/(?P<stage>[^/]+)/(?P<rest>final|dataset)/?")
# Dataset references are resolved by runs only in its input fields (runs/inputs.py).
DATASET_FIELDS = re.compile(
    r"data\.source|eval\.benchmark|benchmarks\.\d+\.path|filters\.decontaminate\.\d+"
)
MAX_STAGES = 50
GATE_DEFAULTS = {"guidelines": "", "limit": 1000, "overlap": 1}


class RecipeError(ValueError):
    """An invalid definition; `errors` is `[{"stage", "field", "loc", "msg"}]`."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['loc']}: {e['msg']}" for e in errors))


FILLABLE = ("model.path", "data.source")


def _error(stage: str, field: str, msg: str, *, fillable: bool = False) -> dict[str, Any]:
    """One error; `fillable`: an empty model or data field, which a draft may keep."""
    loc = ".".join(part for part in ("stages", stage, field) if part)
    error: dict[str, Any] = {"stage": stage, "field": field, "loc": loc, "msg": msg}
    if fillable:
        error["fillable"] = True
    return error


def _strings(value: Any, loc: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """(dotted loc, string) of every string in a config (no deeper than configs go)."""
    if depth > MAX_DEPTH:
        return []
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return [(loc, value)] if isinstance(value, str) else []
    out = []
    for key, item in items:
        out += _strings(item, f"{loc}.{key}" if loc else str(key), depth + 1)
    return out


def output_for_field(field: str) -> str:
    """What an input of `field` must be: a dataset for the data fields, else a checkpoint."""
    return "dataset" if DATASET_FIELDS.fullmatch(field) else "checkpoint"


def stage_inputs(stage: dict[str, Any]) -> list[dict[str, Any]]:
    """The stage's inputs: the explicit ones, plus one per `${runs}/<stage>/...` config value."""
    inputs = [dict(item) for item in stage.get("inputs") or [] if isinstance(item, dict)]
    named = {item.get("field") for item in inputs}
    for loc, value in _strings(stage.get("config") or {}):
        match = PLACEHOLDER.fullmatch(value)
        if match and loc not in named:
            output = "checkpoint" if match["rest"] == "final" else "dataset"
            inputs.append({"field": loc, "stage": match["stage"], "output": output})
            named.add(loc)
    for item in inputs:
        if item.get("stage") and not item.get("output"):
            item["output"] = output_for_field(str(item.get("field") or ""))
    return inputs


def config_get(config: dict, field: str) -> Any:
    value: Any = config
    for part in field.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def config_set(config: dict, field: str, value: Any) -> dict:
    """A copy of `config` with `value` at the dotted `field` (dicts made on the way)."""
    out = copy.deepcopy(config)
    parts = field.split(".")
    here: Any = out
    for part, following in zip(parts, parts[1:], strict=False):
        if isinstance(here, list) and part.isdigit() and int(part) < len(here):
            here = here[int(part)]
            continue
        if not isinstance(here, dict):
            raise ValueError(f"{field}: {part} is not a section of the config")
        if not isinstance(here.get(part), dict | list):
            here[part] = [] if following.isdigit() else {}
        here = here[part]
    last = parts[-1]
    if isinstance(here, list) and last.isdigit() and int(last) < len(here):
        here[int(last)] = value
    elif isinstance(here, dict):
        here[last] = value
    else:
        raise ValueError(f"{field}: not a field of the config")
    return out


def _placeholder(item: dict[str, Any]) -> str:
    if item.get("ref"):
        return str(item["ref"])
    rest = "final" if item.get("output") == "checkpoint" else "dataset"
    return f"{RUNS_VAR}/{item.get('stage')}/{rest}"


def _cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """One cycle of the graph (stage keys, first repeated last), or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(key: str) -> list[str] | None:
        state[key] = 1
        path.append(key)
        for upstream in edges.get(key, []):
            if state.get(upstream) == 1:
                return [*path[path.index(upstream) :], upstream]
            if upstream in edges and not state.get(upstream):
                found = visit(upstream)
                if found:
                    return found
        path.pop()
        state[key] = 2
        return None

    for key in edges:
        if not state.get(key):
            found = visit(key)
            if found:
                return found
    return None


def _input_errors(key: str, kind: str, item: dict, kinds: dict[str, str]) -> list[dict]:
    field = str(item.get("field") or "")
    if not field or not re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*", field):
        return [_error(key, field or "inputs", "an input names the config field it fills")]
    if item.get("ref"):
        ref = item["ref"]
        if not isinstance(ref, str) or not ref.startswith("dataset:"):
            return [_error(key, field, "a fixed input is a dataset version: dataset:NAME@N")]
        if not DATASET_FIELDS.fullmatch(field):
            return [_error(key, field, "a dataset version can only feed a data field")]
        return []
    source = item.get("stage")
    if not isinstance(source, str) or not source:
        return [_error(key, field, "an input names a stage (or a fixed dataset version: ref)")]
    if source == key:
        return [_error(key, field, "a stage cannot read its own output")]
    if source not in kinds:
        return [_error(key, field, f"no stage {source!r} in this recipe makes it")]
    wanted = item.get("output") or output_for_field(field)
    if wanted not in ("checkpoint", "dataset"):
        return [_error(key, field, "output is checkpoint or dataset")]
    makes = MAKES.get(kinds[source])
    if makes is None:
        return [_error(key, field, f"stage {source!r} ({kinds[source]}) makes no model or data")]
    if makes != wanted:
        return [
            _error(
                key, field, f"stage {source!r} ({kinds[source]}) makes a {makes}, not a {wanted}"
            )
        ]
    if wanted != output_for_field(field):
        return [_error(key, field, f"this field takes a {output_for_field(field)}, not a {wanted}")]
    if kind == "gate" and field != "data.source":
        return [_error(key, field, "a gate reads one dataset, as data.source")]
    return []


def _needs(key: str, kind: str, config: dict, fed: set[str]) -> list[dict]:
    """What each kind cannot do without, when neither an input nor the config gives it."""

    def given(field: str) -> bool:
        value = config_get(config, field)
        return field in fed or (isinstance(value, str) and bool(value.strip()))

    if kind == "gate":
        return (
            [] if "data.source" in fed else [_error(key, "data.source", "a gate reads a dataset")]
        )
    errors = []
    if kind == "sft" and not given("data.source"):
        errors.append(
            _error(key, "data.source", "an sft stage needs a dataset to train on", fillable=True)
        )
    if kind == "grpo" and not given("model.path"):
        errors.append(
            _error(
                key, "model.path", "a grpo stage starts from a checkpoint or a model", fillable=True
            )
        )
    if kind in ("generate", "evaluate") and not given("model.path"):
        errors.append(_error(key, "model.path", f"a {kind} stage reads a model", fillable=True))
    return errors


def _config_errors(key: str, kind: str, config: dict, inputs: list[dict]) -> list[dict]:
    """The stage's own checks, each input field holding a stand-in for what will feed it."""
    for item in inputs:
        try:
            config = config_set(config, str(item["field"]), _placeholder(item))
        except ValueError as exc:
            return [_error(key, str(item["field"]), str(exc))]
    if config.get("kind", kind) != kind:
        return [_error(key, "kind", f"the config is a {config.get('kind')} config, not {kind}")]
    try:
        config_parse({**config, "kind": kind})
    except RunConfigError as exc:
        return [
            _error(
                key,
                e.get("loc") or "config",
                e["msg"],
                fillable=e.get("loc") in FILLABLE and e["msg"].startswith("required"),
            )
            for e in exc.config_errors
        ]
    return []


def definition_errors(definition: Any) -> list[dict[str, str]]:
    """Everything wrong with a definition (see the module docstring); `[]` when launchable."""
    if not isinstance(definition, dict):
        return [_error("", "", "a recipe is a mapping with a name and stages")]
    stages = definition.get("stages")
    if not isinstance(stages, list) or not stages:
        return [_error("", "stages", "a recipe has at least one stage")]
    if len(stages) > MAX_STAGES:
        return [_error("", "stages", f"at most {MAX_STAGES} stages")]
    errors: list[dict[str, str]] = []
    kinds: dict[str, str] = {}
    for index, stage in enumerate(stages):
        key = stage.get("key") if isinstance(stage, dict) else None
        if not isinstance(key, str) or not KEY.fullmatch(key):
            errors.append(
                _error(str(index), "key", "a key of lowercase letters, digits, . _ - (<= 64)")
            )
        elif key in kinds:
            errors.append(_error(key, "key", "two stages have this key"))
        elif stage.get("kind") not in STAGE_KINDS:
            errors.append(_error(key, "kind", f"one of {', '.join(STAGE_KINDS)}"))
        else:
            kinds[key] = stage["kind"]
    if errors:
        return errors
    edges: dict[str, list[str]] = {}
    for stage in stages:
        key, kind = stage["key"], stage["kind"]
        config = stage.get("config") or {}
        if not isinstance(config, dict):
            errors.append(_error(key, "config", "a config is a mapping of fields"))
            continue
        if not isinstance(stage.get("inputs", []), list):
            errors.append(_error(key, "inputs", "a list of inputs"))
            continue
        inputs = stage_inputs(stage)
        edges[key] = [item["stage"] for item in inputs if item.get("stage") in kinds]
        input_errors = [e for item in inputs for e in _input_errors(key, kind, item, kinds)]
        errors += input_errors
        needs = _needs(key, kind, config, {str(item.get("field")) for item in inputs})
        errors += needs
        if kind != "gate" and not input_errors:
            said = {e["field"] for e in needs}  # "required" again would say it twice
            errors += [
                e for e in _config_errors(key, kind, config, inputs) if e["field"] not in said
            ]
        if kind == "gate":
            errors += _gate_errors(key, config)
    cycle = _cycle(edges)
    if cycle:
        errors.insert(0, _error(cycle[0], "inputs", f"a cycle: {' <- '.join(cycle)}"))
    return errors


def definition_check(definition: Any) -> dict:
    """The definition, or RecipeError with every problem."""
    errors = definition_errors(definition)
    if errors:
        raise RecipeError(errors)
    return definition


def _gate_errors(key: str, config: dict) -> list[dict]:
    errors = []
    unknown = sorted(set(config) - {*GATE_DEFAULTS, "kind"})
    if unknown:
        errors.append(_error(key, unknown[0], "not a gate setting (guidelines, limit, overlap)"))
    settings = gate_settings(config)
    if not isinstance(settings["guidelines"], str):
        errors.append(_error(key, "guidelines", "Markdown text"))
    for field, top in (("limit", MAX_ITEMS), ("overlap", MAX_OVERLAP)):
        value = settings[field]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            errors.append(_error(key, field, f"a whole number from 1 to {top}"))
    return errors


def gate_settings(config: dict | None) -> dict[str, Any]:
    """A gate's settings with defaults: `guidelines` (Markdown), `limit`, `overlap`."""
    settings = {**GATE_DEFAULTS, **{k: v for k, v in (config or {}).items() if k != "kind"}}
    return {key: settings[key] for key in GATE_DEFAULTS}
