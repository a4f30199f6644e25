"""Stage configs: one typed model per stage kind, the single schema behind forms, CLI and runs.

``parse_config(dict)`` checks types, unknown fields and the cross-field rules users trip over
(a generation batch that is not a multiple of ``num_generations``, a prefilled ``<think>`` that a
``format`` reward still expects the model to write, unknown reward names or params).
``pipeline.checks.validate_config(dict)`` adds the allowed-roots rules and, on the machine
that will run it, what needs the files: model and data paths that do not exist,
``use_vllm`` without vLLM installed, reference answers longer than the completion budget, a chat
template that already prefills ``<think>``. Both report ``[{"loc": "dotted.path", "msg": ...}]``.

The sections the stages are made of live in ``pipeline.config_sections``; every name there
is importable from here too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from pipeline.config_drift import drift_errors
from pipeline.config_sections import (  # noqa: F401 (re-exported)
    ADVANCED,
    MAX_ROWS,
    MAX_SEED,
    MAX_STEPS,
    BenchmarkSpec,
    DataSection,
    DatasetOutputSection,
    EvalSamplingSection,
    FilterSection,
    GRPOTrainerSection,
    ModelSection,
    OutputSection,
    PeriodicEval,
    PromptSection,
    RewardSpec,
    SamplingSection,
    SFTTrainerSection,
    _f,
    _Section,
)
from pipeline.data import PRESET_FILES

RUNS_VAR = "${runs}"
MAX_DEPTH = 16  # configs are 3 levels deep; reward params may nest a little more
_UNION_MEMBERS = {"int", "float", "str", "bool"}  # pydantic's loc for a member of a union


class ConfigError(ValueError):
    """An invalid config; ``errors`` is ``[{"loc": "dotted.path", "msg": str}]``."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['loc']}: {e['msg']}" for e in errors))


# ---------------------------------------------------------------------------------------------
# Stage configs


class _Stage(_Section):
    model: ModelSection = Field(default_factory=ModelSection, description="The starting model.")
    seed: int = _f(42, "Random seed (data order, sampling, initialisation).", ge=0, le=MAX_SEED)

    def check(self) -> list[dict[str, str]]:
        """Cross-field rules; ``[]`` when consistent. Filesystem checks live in pipeline.checks."""
        errors = []
        if not self.model.path.strip():
            errors.append(_err("model.path", "required: a local model folder or a hub id"))
        return errors


class GRPOStage(_Stage):
    """Reinforcement learning with GRPO on rule-based (or judge) rewards: R1-Zero, reasoning RL."""

    kind: Literal["grpo"] = _f("grpo", "Stage kind.", hidden=True)
    data: DataSection = Field(default_factory=DataSection, description="Prompts with references.")
    trainer: GRPOTrainerSection = Field(
        default_factory=GRPOTrainerSection, description="GRPOTrainer arguments."
    )
    rewards: list[RewardSpec] = Field(
        default_factory=lambda: [
            RewardSpec(name="accuracy"),
            RewardSpec(name="format", weight=0.2),
        ],
        description="Reward functions summed with their weights.",
        min_length=1,
    )
    output: OutputSection = Field(default_factory=OutputSection, description="Checkpoints.")
    log_samples_every: int = _f(
        10, "Report sampled completions every N steps (0: never).", ge=0, le=MAX_STEPS
    )
    log_samples_count: int = _f(16, "Completions reported each time.", True, ge=1, le=10_000)
    probe_count: int = _f(
        4,
        "Fixed probe prompts (held-out eval problems, else training ones, picked by the seed) "
        "answered greedily before training and at every samples report, so a prompt can be "
        "followed over time (0: none).",
        True,
        ge=0,
    )
    eval: PeriodicEval = Field(default_factory=PeriodicEval, description="Evaluation during RL.")

    def check(self) -> list[dict[str, str]]:
        errors = super().check()
        if not self.data.source.strip():
            errors.append(_err("data.source", "required: the prompts to train on"))
        t = self.trainer
        batch = (
            t.generation_batch_size or t.per_device_train_batch_size * t.gradient_accumulation_steps
        )
        if batch % t.num_generations:
            where = (
                f"generation_batch_size ({batch})"
                if t.generation_batch_size
                else f"per_device_train_batch_size x gradient_accumulation_steps "
                f"({t.per_device_train_batch_size} x {t.gradient_accumulation_steps} = {batch})"
            )
            errors.append(
                _err(
                    "trainer.num_generations",
                    f"the generation batch, {where}, must be a multiple of num_generations "
                    f"({t.num_generations}): each prompt's group of completions must fit in it",
                )
            )
        errors += _reward_errors(self.rewards, "rewards", self.data.prefill_think)
        return errors


class SFTStage(_Stage):
    """Supervised fine-tuning: cold start, the rejection-sampled set, distillation."""

    kind: Literal["sft"] = _f("sft", "Stage kind.", hidden=True)
    data: DataSection = Field(
        default_factory=DataSection, description="Messages, or problems with target completions."
    )
    trainer: SFTTrainerSection = Field(
        default_factory=SFTTrainerSection, description="SFTTrainer arguments."
    )
    output: OutputSection = Field(default_factory=OutputSection, description="Checkpoints.")

    def check(self) -> list[dict[str, str]]:
        errors = super().check()
        if not self.data.source.strip():
            errors.append(_err("data.source", "required: the examples to train on"))
        return errors


class GenerateStage(_Stage):
    """Sample k completions per prompt, grade them, filter, write a dataset (rejection sampling,
    distillation data)."""

    kind: Literal["generate"] = _f("generate", "Stage kind.", hidden=True)
    data: DataSection = Field(default_factory=DataSection, description="The prompts.")
    sampling: SamplingSection = Field(default_factory=SamplingSection, description="Sampling.")
    verifiers: list[RewardSpec] = Field(
        default_factory=lambda: [RewardSpec(name="accuracy")],
        description="Rewards that grade each sample (keep_correct uses them).",
    )
    filters: FilterSection = Field(default_factory=FilterSection, description="What to keep.")
    output: DatasetOutputSection = Field(
        default_factory=DatasetOutputSection, description="The dataset written."
    )

    def check(self) -> list[dict[str, str]]:
        errors = super().check()
        if not self.data.source.strip():
            errors.append(_err("data.source", "required: the prompts to sample from"))
        if self.filters.keep_correct and not self.verifiers:
            errors.append(_err("verifiers", "keep_correct needs at least one verifier"))
        errors += _reward_errors(self.verifiers, "verifiers", self.data.prefill_think)
        return errors


class EvaluateStage(_Stage):
    """Benchmarks: pass@1 averaged over k samples, cons@k by majority vote, per problem."""

    kind: Literal["evaluate"] = _f("evaluate", "Stage kind.", hidden=True)
    prompt: PromptSection = Field(default_factory=PromptSection, description="Prompt building.")
    benchmarks: list[BenchmarkSpec] = Field(
        default_factory=lambda: [BenchmarkSpec()], description="Benchmarks to run.", min_length=1
    )
    sampling: EvalSamplingSection = Field(
        default_factory=EvalSamplingSection, description="Sampling (paper: T=0.6, top-p 0.95)."
    )
    limit: int = _f(
        0, "Evaluate only the first N problems of each benchmark (0: all).", ge=0, le=MAX_ROWS
    )

    def check(self) -> list[dict[str, str]]:
        from pipeline import rewards

        errors = super().check()
        for i, bench in enumerate(self.benchmarks):
            if not bench.path and bench.name not in PRESET_FILES:
                errors.append(
                    _err(
                        f"benchmarks.{i}.path",
                        f"{bench.name!r} is not a preset ({', '.join(PRESET_FILES)}): "
                        "give the file path",
                    )
                )
            if bench.grader and bench.grader not in rewards.names():
                errors.append(_err(f"benchmarks.{i}.grader", f"unknown reward {bench.grader!r}"))
        return errors


StageConfig = Annotated[
    GRPOStage | SFTStage | GenerateStage | EvaluateStage, Field(discriminator="kind")
]
STAGE_MODELS: dict[str, type[_Stage]] = {
    "grpo": GRPOStage,
    "sft": SFTStage,
    "generate": GenerateStage,
    "evaluate": EvaluateStage,
}


def _err(loc: str, msg: str) -> dict[str, str]:
    return {"loc": loc, "msg": msg}


def _reward_errors(specs: list[RewardSpec], where: str, prefill_think: bool) -> list[dict]:
    from pipeline import rewards

    errors = []
    for i, spec in enumerate(specs):
        accepted = rewards.params_of(spec.name)
        for param in sorted(set(spec.params) - set(accepted)):
            errors.append(
                _err(
                    f"{where}.{i}.params",
                    f"reward {spec.name!r} has no param {param!r}; it takes: "
                    f"{', '.join(accepted) or 'none'}",
                )
            )
        if (
            prefill_think
            and spec.name in ("format", "tag_count")
            and not spec.params.get("think_prefilled")
        ):
            errors.append(
                _err(
                    "data.prefill_think",
                    f"the prompt prefills <think> but the {spec.name!r} reward ({where}.{i}) "
                    "expects the model to write it, so it would score every completion low: set "
                    "its param think_prefilled: true, or turn prefill_think off",
                )
            )
    return errors


# ---------------------------------------------------------------------------------------------
# Parsing and validation


def parse_config(data: dict) -> GRPOStage | SFTStage | GenerateStage | EvaluateStage:
    """Build the stage config from a dict; raises ConfigError naming every bad field."""
    if not isinstance(data, dict):
        raise ConfigError([_err("", "a config is a mapping of fields")])
    too_deep = _nested_deeper_than(data, MAX_DEPTH)
    if too_deep is not None:
        raise ConfigError([_err(too_deep, f"nested deeper than {MAX_DEPTH} levels")])
    kind = data.get("kind")
    if kind not in STAGE_MODELS:
        raise ConfigError(
            [_err("kind", f"must be one of {', '.join(STAGE_MODELS)} (got {kind!r})")]
        )
    try:
        config = STAGE_MODELS[kind].model_validate(data)
    except ValidationError as exc:
        errors = []
        for error in map(_pydantic_error, exc.errors()):
            if error not in errors:  # a union (int | float) says it once per member
                errors.append(error)
        # a TRL argument renamed or removed since the config was written: name the replacement
        trainer = STAGE_MODELS[kind].model_fields.get("trainer")
        if trainer is not None:
            drift_errors(errors, kind, set(trainer.annotation.model_fields))
        raise ConfigError(errors) from None
    errors = config.check()
    if errors:
        raise ConfigError(errors)
    return config


def _nested_deeper_than(data: Any, limit: int) -> str | None:
    """The dotted path of the first value nested deeper than ``limit``, or ``None``.

    Checked without recursion, before anything recursive (validation, JSON) walks the config.
    """
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > limit:
            return ".".join(path[: limit + 1])
        if isinstance(value, dict):
            stack += [(v, (*path, str(k))) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(v, (*path, str(i))) for i, v in enumerate(value)]
    return None


def _pydantic_error(error: dict) -> dict[str, str]:
    parts = [str(part) for part in error["loc"]]
    while len(parts) > 1 and parts[-1] in _UNION_MEMBERS:
        parts.pop()  # `save_steps.float` is the float member of the field save_steps
    loc = ".".join(parts)
    if error["type"] == "extra_forbidden":
        return _err(loc, "unknown field (not part of this stage's config)")
    msg = error["msg"].removeprefix("Value error, ")
    return _err(loc, msg)


def load_config(path: str | os.PathLike, runs_root: str | os.PathLike | None = None) -> Any:
    """Read a YAML or JSON config file, substitute ``${runs}`` and parse it."""
    return parse_config(read_config_file(path, runs_root))


def read_config_file(path: str | os.PathLike, runs_root: str | os.PathLike | None = None) -> dict:
    """The raw dict of a YAML/JSON config, with ``${runs}`` replaced when ``runs_root`` is set."""
    from pipeline import safeyaml

    text = Path(path).read_text()
    try:
        data = json.loads(text) if str(path).endswith(".json") else safeyaml.load(text)
    except safeyaml.YamlError as exc:
        raise ConfigError([_err("", f"{path}: {exc}")]) from None
    if not isinstance(data, dict):
        raise ConfigError([_err("", f"{path} does not hold a mapping of fields")])
    return substitute_runs(data, runs_root) if runs_root is not None else data


def substitute_runs(data: Any, runs_root: str | os.PathLike) -> Any:
    """Replace ``${runs}`` in every string of a config with the recipe's runs root."""
    if isinstance(data, str):
        return data.replace(RUNS_VAR, str(runs_root))
    if isinstance(data, list):
        return [substitute_runs(v, runs_root) for v in data]
    if isinstance(data, dict):
        return {k: substitute_runs(v, runs_root) for k, v in data.items()}
    return data


def config_to_dict(config: BaseModel) -> dict:
    """The config as plain JSON-able data (what config.json holds)."""
    return config.model_dump(mode="json")
