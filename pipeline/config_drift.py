"""Version drift: trainer arguments that TRL (or transformers) renamed or removed.

Configs get copied from older recipes (open-r1's YAMLs, blog posts, last year's runs) whose
`max_seq_length`, `warmup_ratio` or `vllm_device` the installed TRL no longer takes. The schema
refuses any unknown trainer field; for the ones in `DRIFT` the error names the replacement
instead of just "unknown field". An entry speaks only when the installed TRL's config class
really lacks the old name (`dataclasses.fields(GRPOConfig)`), so an older TRL that still has it
gets the plain message. TRL is imported only then: on the error path, once per process.

Sources: TRL's release notes and deprecation PRs (max_seq_length deprecated in 0.16 and removed
in 0.20; wandb_log_unique_prompts → log_unique_prompts in 0.26/0.27; vLLM's guided decoding
became structured outputs; vllm_device went with the colocate/server modes of 0.18;
GRPOConfig's max_prompt_length was removed), transformers' (evaluation_strategy →
eval_strategy in 4.41, removed in 4.46; warmup_ratio folded into warmup_steps in 5.x).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class Drift:
    old: str
    new: str | None  # None: removed, nothing takes its place
    where: str  # the release that changed it
    hint: str = ""  # what to write instead, in this studio
    verb: str = "renamed"  # or "replaced by": the new field means something a little different


_COMMON = (
    Drift("evaluation_strategy", "eval_strategy", "transformers 4.46",
          "the studio schedules evaluation itself: eval.every_steps for GRPO"),
    Drift("warmup_ratio", "warmup_steps", "transformers 5",
          "a value below 1 is a share of the run: warmup_steps: 0.1 warms up over 10%",
          "replaced by"),
    Drift("no_cuda", "use_cpu", "transformers 4.35", "the studio picks the device itself"),
    Drift("per_gpu_train_batch_size", "per_device_train_batch_size", "transformers 5"),
    Drift("logging_dir", None, "transformers 5", "a run's logs go to its run folder"),
    Drift("overwrite_output_dir", None, "transformers 5", "every run writes its own folder"),
)  # fmt: skip
DRIFT: dict[str, tuple[Drift, ...]] = {
    "sft": (
        Drift("max_seq_length", "max_length", "TRL 0.20 (deprecated since 0.16)"),
        Drift("num_of_sequences", None, "TRL's packing rework",
              "packing: true packs examples into max_length sequences"),
        Drift("chars_per_token", None, "TRL's packing rework",
              "packing: true packs examples into max_length sequences"),
        *_COMMON,
    ),
    "grpo": (
        Drift("max_prompt_length", None, "TRL (GRPOConfig)",
              "filter or shorten long prompts in the dataset"),
        Drift("vllm_device", "vllm_mode", "TRL 0.18",
              "vllm_mode: colocate shares the training GPU, server uses `trl vllm-serve`",
              "replaced by"),
        Drift("vllm_guided_decoding_regex", "vllm_structured_outputs_regex",
              "TRL with vLLM's structured outputs (vLLM 0.11)"),
        Drift("wandb_log_unique_prompts", "log_unique_prompts", "TRL 0.27"),
        Drift("vllm_max_model_len", "vllm_max_model_length", "TRL"),
        *_COMMON,
    ),
}  # fmt: skip


@functools.lru_cache(maxsize=4)
def installed_fields(kind: str) -> frozenset[str] | None:
    """The installed TRL's argument names for a stage kind's config class (None: no TRL)."""
    try:
        if kind == "grpo":
            from trl import GRPOConfig as config_class
        else:
            from trl import SFTConfig as config_class
    except Exception:
        return None
    return frozenset(f.name for f in dataclasses.fields(config_class))


def trl_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("trl")
    except metadata.PackageNotFoundError:
        return "not installed"


def drift_message(kind: str, name: str, studio_fields: set[str]) -> str | None:
    """Why trainer field `name` is refused and what replaces it, or None when it is not a
    known rename/removal the installed TRL made (then it is just an unknown field)."""
    entry = next((d for d in DRIFT.get(kind, ()) if d.old == name), None)
    if entry is None:
        return None
    fields = installed_fields(kind)
    if fields is not None and entry.old in fields:
        return None  # this TRL still takes it: not drift
    hint = f" ({entry.hint})" if entry.hint else ""
    installed = f"the installed TRL {trl_version()} has no {entry.old!r}"
    if entry.new is None:
        return f"{entry.old!r} was removed in {entry.where}: {installed}; remove it{hint}"
    if entry.new in studio_fields:
        return (
            f"{entry.old!r} was {entry.verb} {entry.new!r} in {entry.where}: {installed}; "
            f"use trainer.{entry.new} instead{hint}"
        )
    return (
        f"{entry.old!r} was {entry.verb} {entry.new!r} in {entry.where}: {installed}; this studio's "
        f"config does not take {entry.new!r} either, so remove it{hint}"
    )


def drift_errors(errors: list[dict[str, str]], kind: str, studio_fields: set[str]) -> None:
    """Rewrite, in place, the "unknown field" errors of renamed or removed trainer arguments."""
    for error in errors:
        parts = error.get("loc", "").split(".")
        if len(parts) == 2 and parts[0] == "trainer":
            message = drift_message(kind, parts[1], studio_fields)
            if message:
                error["msg"] = message
