"""Recipe presets: the DeepSeek-R1 recipe, its R1-Zero and distillation parts, and the toy demo.

Each preset is a function returning a definition (r1studio.recipes.graph). The paper-scale ones
carry the paper's choices (rewards, filters, the SFT of the *base* model on the rejection-sampled
set, evaluation of every checkpoint) and leave the model and data to fill in: a launch names each
empty field. The toy one is the toy assets' recipe (`<data dir>/toy/recipe/NN-<stage>.yaml`, from
`pipeline.toy.recipe_configs`) with a human gate after the cold-start data, switched off so that
the demo runs unattended: the candidates go straight to the cold-start SFT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import safeyaml
from pipeline.rewards import R1_ZERO_REWARDS, REASONING_REWARDS
from pipeline.template import R1_SYSTEM_PROMPT
from r1studio.runs.selectors import toy_dir

GATE_GUIDELINES = (
    "Accept a candidate when its reasoning is correct, readable and in one language, and its "
    "answer matches the reference. Fix small slips with an edit; reject the rest."
)


class PresetError(ValueError):
    """A preset that cannot be built here (the toy assets are missing)."""


def _in(field: str, stage: str) -> dict[str, str]:
    return {"field": field, "stage": stage}


def _grpo(rewards: list[dict], **extra: Any) -> dict:
    return {
        "kind": "grpo",
        "model": {"path": ""},
        "data": {"source": "", "system_prompt": R1_SYSTEM_PROMPT},
        "rewards": rewards,
        **extra,
    }


def _generate(**filters: Any) -> dict:
    return {
        "kind": "generate",
        "model": {"path": ""},
        "data": {"source": "", "system_prompt": R1_SYSTEM_PROMPT},
        "filters": {"keep_correct": True, **filters},
    }


def _sft(**trainer: Any) -> dict:
    return {"kind": "sft", "model": {"path": ""}, "data": {"source": ""}, "trainer": trainer}


def _evaluate() -> dict:
    return {
        "kind": "evaluate",
        "model": {"path": ""},
        "benchmarks": [{"name": "math500"}, {"name": "aime24"}],
        "sampling": {"k": 16, "temperature": 0.6, "top_p": 0.95},
    }


def _stage(key: str, name: str, config: dict, inputs: list[dict] | None = None) -> dict:
    return {
        "key": key,
        "name": name,
        "kind": config["kind"],
        "config": config,
        "inputs": inputs or [],
    }


def _gate(key: str, name: str, source: str, *, enabled: bool = True) -> dict:
    return {
        "key": key,
        "name": name,
        "kind": "gate",
        "gate_enabled": enabled,
        "config": {"guidelines": GATE_GUIDELINES, "limit": 1000, "overlap": 1},
        "inputs": [_in("data.source", source)],
    }


def _evaluations(checkpoints: list[tuple[str, str]], first: int) -> list[dict]:
    return [
        _stage(f"{first + i:02d}-eval-{key.split('-', 1)[-1]}", f"Evaluate {name}", _evaluate(),
               [_in("model.path", key)])
        for i, (key, name) in enumerate(checkpoints)
    ]  # fmt: skip


def deepseek_r1() -> dict:
    """R1-Zero → cold-start data → gate → cold-start SFT → reasoning RL → rejection sampling →
    SFT of the base model → all-scenario RL → distillation → evaluation of every checkpoint."""
    judge = {"name": "judge", "weight": 0.5}
    stages = [
        _stage("01-r1-zero", "R1-Zero GRPO", _grpo(R1_ZERO_REWARDS)),
        _stage("02-cold-start-data", "Cold-start candidates", _generate(max_per_prompt=1),
               [_in("model.path", "01-r1-zero")]),
        _gate("03-cold-start-gate", "Cold-start review (human gate)", "02-cold-start-data"),
        _stage("04-cold-start-sft", "Cold-start SFT (from the base)", _sft(),
               [_in("data.source", "03-cold-start-gate")]),
        _stage("05-reasoning-rl", "Reasoning RL (language consistency)", _grpo(REASONING_REWARDS),
               [_in("model.path", "04-cold-start-sft")]),
        _stage("06-rejection-sampling", "Rejection sampling + non-reasoning data",
               _generate(drop_mixed_language=True), [_in("model.path", "05-reasoning-rl")]),
        _stage("07-sft", "SFT of the base model on the mixed set", _sft(num_train_epochs=2),
               [_in("data.source", "06-rejection-sampling")]),
        _stage("08-all-scenario-rl", "All-scenario RL (rule + judge rewards)",
               _grpo([*R1_ZERO_REWARDS, judge]), [_in("model.path", "07-sft")]),
        _stage("09-distillation-data", "Distillation data (teacher samples)", _generate(),
               [_in("model.path", "08-all-scenario-rl")]),
        _stage("10-student-sft", "Distillation: student SFT", _sft(),
               [_in("data.source", "09-distillation-data")]),
    ]  # fmt: skip
    checkpoints = [
        ("01-r1-zero", "R1-Zero"), ("04-cold-start-sft", "cold-start SFT"),
        ("05-reasoning-rl", "reasoning RL"), ("07-sft", "SFT"),
        ("08-all-scenario-rl", "all-scenario RL"), ("10-student-sft", "student"),
    ]  # fmt: skip
    return {
        "name": "DeepSeek-R1",
        "description": "The whole recipe. Fill in the base model, the student model and the "
        "prompt sets; the SFT stages start from the base model.",
        "stages": [*stages, *_evaluations(checkpoints, first=11)],
    }


def r1_zero() -> dict:
    """RL straight from the base model, then its evaluation."""
    return {
        "name": "R1-Zero",
        "description": "GRPO from the base model with accuracy and format rewards, no SFT.",
        "stages": [
            _stage("01-r1-zero", "R1-Zero GRPO", _grpo(R1_ZERO_REWARDS)),
            *_evaluations([("01-r1-zero", "R1-Zero")], first=2),
        ],
    }


def distillation() -> dict:
    """A teacher writes reasoning samples, a small student is fine-tuned on them."""
    return {
        "name": "Distillation",
        "description": "Fill in the teacher and the student model and the prompts.",
        "stages": [
            _stage("01-distillation-data", "Distillation data (teacher samples)", _generate()),
            _stage("02-student-sft", "Student SFT", _sft(),
                   [_in("data.source", "01-distillation-data")]),
            *_evaluations([("02-student-sft", "student")], first=3),
        ],
    }  # fmt: skip


TOY_GATE = "02-cold-start-gate"
TOY_NAMES = {
    "01-r1-zero": "R1-Zero GRPO",
    "02-cold-start-data": "Cold-start candidates",
    "03-cold-start-sft": "Cold-start SFT",
    "04-reasoning-rl": "Reasoning RL",
    "05-rejection-sampling": "Rejection sampling",
    "06-sft": "SFT of the base model",
    "07-distillation-data": "Distillation data",
    "08-student-sft": "Student SFT",
    "09-evaluate": "Evaluation",
}


def toy(root: Path | None = None) -> dict:
    """The toy assets' recipe (see the module docstring); PresetError without the assets."""
    folder = (root or toy_dir()) / "recipe"
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    if not files:
        raise PresetError(
            f"the toy assets are not built ({folder} is missing): `make run` builds them on "
            "first start, or run `python -m pipeline toy <data dir>/toy`"
        )
    stages = []
    for path in files:
        config = safeyaml.load(path.read_text())
        stages.append(_stage(path.stem, TOY_NAMES.get(path.stem, path.stem), config))
        if path.stem == "02-cold-start-data":
            stages.append(
                _gate(TOY_GATE, "Cold-start review (human gate, off)", path.stem, enabled=False)
            )
        elif path.stem == "03-cold-start-sft":
            stages[-1]["inputs"] = [_in("data.source", TOY_GATE)]
    return {
        "name": "Toy R1 recipe",
        "description": "The whole R1 recipe on tiny local models and two-digit additions: a few "
        "minutes on a CPU. Switch the gate on to review the cold-start candidates by hand.",
        "stages": stages,
    }


@dataclass(frozen=True)
class RecipePreset:
    key: str
    name: str
    help: str
    build: Callable[[], dict]


RECIPE_PRESETS = [
    RecipePreset("toy", "Toy demo recipe", "The R1 recipe on tiny local models, minutes on a CPU.",
                 toy),
    RecipePreset("deepseek-r1", "DeepSeek-R1", "The whole recipe, paper settings.", deepseek_r1),
    RecipePreset("r1-zero", "R1-Zero only", "GRPO from the base model, then evaluation.", r1_zero),
    RecipePreset("distillation", "Distillation only", "Teacher samples, student SFT, evaluation.",
                 distillation),
]  # fmt: skip
RECIPE_PRESETS_BY_KEY = {preset.key: preset for preset in RECIPE_PRESETS}


def preset_definition(key: str) -> dict:
    """The definition of preset `key`; PresetError for an unknown key or missing toy assets."""
    preset = RECIPE_PRESETS_BY_KEY.get(key)
    if preset is None:
        raise PresetError(f"no recipe preset {key!r}: one of {', '.join(RECIPE_PRESETS_BY_KEY)}")
    return {**preset.build(), "preset": key}


def toy_available() -> bool:
    return (toy_dir() / "recipe").is_dir()
