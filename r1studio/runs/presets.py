"""Starting configs for each stage of the R1 recipe, and the toy demo ones.

With the toy assets in `<R1STUDIO_DATA_DIR>/toy/` (built by `make run` or
`python -m pipeline toy`), the presets are the toy recipe (`toy/recipe/NN-<stage>.yaml`) and the
standalone toy configs (`toy/configs/<kind>.yaml`): launchable at once on a CPU. Without them
they are the stage defaults with the paper's reward choices, to fill in (model, data).

Recipe configs name an earlier stage's output as `${runs}/<NN-stage>/final` (or `/dataset`).
`preset_config` replaces that with the output folder of one concrete run: the newest finished run
the user can see that was started from that earlier preset (`Run.preset`, kept through renames,
retries and clones; never guessed from a run's name). The form then says which run each input
comes from (`selectors.config_inputs`), so launching the recipe's stages in order just works and
shows its chain; with no such run the placeholder stays and the form says which preset to run
first, and the model and dataset pickers offer the earlier runs' outputs.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import safeyaml
from pipeline.rewards import R1_ZERO_REWARDS, REASONING_REWARDS
from r1studio.runs.models import RunStatus
from r1studio.runs.selectors import run_list, toy_dir

RUNS_REF = re.compile(r"\$\{runs\}/(?P<step>[^/]+)/(?P<rest>.*)")


@dataclass(frozen=True)
class Preset:
    """One starting config: `key` in URLs, `name` becomes the run's name."""

    key: str
    name: str
    kind: str
    help: str
    group: str
    recipe_file: str = ""  # toy/recipe/<file>.yaml when the toy assets exist
    toy_file: str = ""  # toy/configs/<file>.yaml
    fallback: dict[str, Any] = field(default_factory=dict)


R1_SYSTEM = "r1"  # marker: replaced by pipeline.template.R1_SYSTEM_PROMPT

PRESETS = [
    Preset(
        "r1-zero",
        "R1-Zero GRPO",
        "grpo",
        "RL straight from the base model: accuracy and "
        "format rewards, no SFT first. Watch the completions grow and the reward climb.",
        "R1 recipe",
        "01-r1-zero",
        fallback={"rewards": R1_ZERO_REWARDS, "data": {"system_prompt": R1_SYSTEM}},
    ),
    Preset(
        "cold-start-data",
        "Cold-start data",
        "generate",
        "Sample R1-Zero's best reasoning, "
        "keep the correct and readable samples: the seed of the cold-start dataset.",
        "R1 recipe",
        "02-cold-start-data",
        fallback={"filters": {"keep_correct": True, "max_per_prompt": 1}},
    ),
    Preset(
        "cold-start-sft",
        "Cold-start SFT",
        "sft",
        "Fine-tune the base model on a few thousand "
        "curated long chains of thought before reasoning RL.",
        "R1 recipe",
        "03-cold-start-sft",
    ),
    Preset(
        "reasoning-rl",
        "Reasoning RL (language consistency)",
        "grpo",
        "GRPO on reasoning prompts with the accuracy reward plus R1's language-consistency reward.",
        "R1 recipe",
        "04-reasoning-rl",
        fallback={"rewards": REASONING_REWARDS},
    ),
    Preset(
        "rejection-sampling",
        "Rejection sampling",
        "generate",
        "Sample k completions per "
        "prompt from the RL checkpoint, keep the correct, single-language, non-repetitive ones.",
        "R1 recipe",
        "05-rejection-sampling",
        fallback={"filters": {"keep_correct": True, "drop_mixed_language": True}},
    ),
    Preset(
        "sft",
        "SFT (reasoning + non-reasoning)",
        "sft",
        "Two epochs of SFT of the base model "
        "on the rejection-sampled set (the paper: ~600k reasoning + ~200k other samples).",
        "R1 recipe",
        "06-sft",
        fallback={"trainer": {"num_train_epochs": 2}},
    ),
    Preset(
        "secondary-rl",
        "Secondary RL with a judge",
        "grpo",
        "All-scenario RL: rule rewards for "
        "reasoning prompts plus a generative judge reward for helpfulness. The toy one runs in "
        "about a minute, judged by the tiny toy student model.",
        "R1 recipe",
        "04-reasoning-rl",
        fallback={"rewards": [*R1_ZERO_REWARDS, {"name": "judge", "weight": 0.5}]},
    ),
    Preset(
        "distillation-data",
        "Distillation data",
        "generate",
        "The teacher (the SFT or RL model) writes reasoning samples for a small student.",
        "R1 recipe",
        "07-distillation-data",
    ),
    Preset(
        "student-sft",
        "Distillation: student SFT",
        "sft",
        "Plain SFT of a small model on the "
        "teacher's samples (the paper distils into Qwen and Llama models this way).",
        "R1 recipe",
        "08-student-sft",
    ),
    Preset(
        "evaluation",
        "Evaluation",
        "evaluate",
        "pass@1 averaged over k samples and cons@k "
        "(majority vote) on benchmarks, T=0.6, top-p 0.95.",
        "R1 recipe",
        "09-evaluate",
        fallback={"benchmarks": [{"name": "math500"}, {"name": "aime24"}]},
    ),
]
PRESETS += [
    Preset(
        f"toy-{kind}", f"Toy {label}", kind, f"The toy {label} demo: tiny local model, "
        "arithmetic problems, runs in minutes on a CPU.", "Toy demo", toy_file=kind,
    )
    for kind, label in (
        ("grpo", "GRPO"), ("sft", "SFT"), ("generate", "generate"), ("evaluate", "evaluate")
    )
]  # fmt: skip
PRESETS_BY_KEY = {preset.key: preset for preset in PRESETS}

# The toy judge is the tiny student model asked for a few tokens: a local judge called once per
# completion dominates a step on a CPU (the toy base with the default 256-token verdicts made
# this stage take ~50 min), so the toy stage is short and its judge small; it runs in about a
# minute. A toy model cannot write a real verdict, so its scores are mostly None ("cannot
# judge") and the rule rewards carry the training: the preset shows the judge's plumbing.
TOY_JUDGE_STAGE = {
    "model": {"path": "${runs}/06-sft/final"},
    "trainer": {
        "max_steps": 20, "per_device_train_batch_size": 32, "warmup_steps": 2, "logging_steps": 2,
    },
    "output": {"save_steps": 10},
    "log_samples_every": 5,
    "eval": {"every_steps": 10},
}  # fmt: skip
TOY_JUDGE_PARAMS = {
    "template": "Question: {prompt}\nReply: {completion}\nScore (0-10):",
    "max_new_tokens": 8,
}
STEP_TO_PRESET = {p.recipe_file: p for p in PRESETS if p.recipe_file and p.key != "secondary-rl"}


def _read_yaml(path: Path) -> dict | None:
    try:
        data = safeyaml.load(path.read_text())
    except (OSError, safeyaml.YamlError):
        return None
    return data if isinstance(data, dict) else None


def _toy_config(preset: Preset) -> dict | None:
    root = toy_dir()
    if preset.toy_file:
        return _read_yaml(root / "configs" / f"{preset.toy_file}.yaml")
    if preset.recipe_file:
        return _read_yaml(root / "recipe" / f"{preset.recipe_file}.yaml")
    return None


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve_runs(value: Any, user: Any) -> Any:
    """`${runs}/<NN-stage>/<rest>` → that file of the newest finished run of the stage's preset."""
    if isinstance(value, dict):
        return {k: _resolve_runs(v, user) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_runs(v, user) for v in value]
    if not isinstance(value, str):
        return value
    match = RUNS_REF.fullmatch(value)
    if not match or match["step"] not in STEP_TO_PRESET:
        return value
    preset = STEP_TO_PRESET[match["step"]]
    runs = run_list(user=user, status=RunStatus.FINISHED).filter(preset=preset.key)
    for run in runs.order_by("-finished_at", "-id")[:20]:
        candidate = Path(run.run_dir) / match["rest"]
        if run.run_dir and candidate.exists():
            return str(candidate)
    return value


def preset_config(preset: Preset, *, user: Any) -> dict:
    """The preset's config: the toy one when the toy assets exist, else stage defaults."""
    from pipeline.config import STAGE_MODELS, config_to_dict
    from pipeline.template import R1_SYSTEM_PROMPT

    toy = _toy_config(preset)
    if toy is not None:
        config = toy
        if preset.key == "secondary-rl":  # the toy recipe has no judge stage: add one
            config = _merge(config, TOY_JUDGE_STAGE)
            judge = {**TOY_JUDGE_PARAMS, "model": str(toy_dir() / "models" / "student-base")}
            config["rewards"] = [
                *R1_ZERO_REWARDS,
                {"name": "judge", "weight": 0.5, "params": judge},
            ]
        return _resolve_runs(config, user)
    config = config_to_dict(STAGE_MODELS[preset.kind]())
    config = _merge(config, preset.fallback)
    data = config.get("data")
    if isinstance(data, dict) and data.get("system_prompt") == R1_SYSTEM:
        data["system_prompt"] = R1_SYSTEM_PROMPT
    return config


def presets_available() -> list[dict[str, Any]]:
    """Presets for the new-run page, with whether the toy assets back them."""
    root = toy_dir()
    rows = []
    for preset in PRESETS:
        toy = bool(preset.toy_file or preset.recipe_file) and _toy_config(preset) is not None
        if preset.group == "Toy demo" and not toy:
            continue
        rows.append({"preset": preset, "toy": toy, "toy_dir": root})
    return rows
