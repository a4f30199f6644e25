"""Config checks beyond the schema: allowed paths, and what needs this machine's files.

``validate_config(data, roots, machine=...)`` parses a config (types and cross-field rules,
``pipeline.config``), then refuses paths outside the allowed roots (always: cheap, and the
studio's guard against reading the server's files), then, with ``machine`` (the default), runs
the checks that need the files: ``python -m pipeline validate`` (and ``run``, before anything
starts) and the studio's explicit Check catch a missing model folder, ``use_vllm``
without vLLM, reference answers that cannot fit in the completion budget, or a chat template
that already opens ``<think>`` while a format reward expects the model to write it.
Strings still holding ``${runs}`` (a recipe validated without a runs root) are not checked.
First of all, ``pipeline.access`` refuses paths outside the allowed roots and judge settings
an admin did not allow: nothing outside them is even looked at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.access import Roots, access_errors, allowed_roots
from pipeline.config import RUNS_VAR, ConfigError, parse_config
from pipeline.data import PRESET_FILES, DataError, dataset_ref_error, peek_rows, source_kind
from pipeline.stages.common import completion_token_lengths, load_tokenizer, vllm_available
from pipeline.template import ANSWER_CLOSE, ANSWER_OPEN, prompt_prefills_think

SAMPLE_ROWS = 200
SFT_OVERLONG_SHARE = 0.05


def _err(loc: str, msg: str) -> dict[str, str]:
    return {"loc": loc, "msg": msg}


def validate_config(
    data: dict, roots: Roots | None = None, *, machine: bool = True
) -> list[dict[str, str]]:
    """Every problem with a config dict; ``[]`` if valid (see the module docstring).

    ``roots`` (``pipeline.access.Roots``) are the folders the run may read; ``None`` reads
    them from the environment (``pipeline.access.allowed_roots``).
    """
    try:
        config = parse_config(data)
    except ConfigError as exc:
        return exc.errors
    return config_errors(config, roots, machine=machine)


def config_errors(
    config: Any, roots: Roots | None = None, *, machine: bool = True
) -> list[dict[str, str]]:
    """The problems of a parsed config: refused paths, then (``machine``) missing files."""
    errors = access_errors(config, roots if roots is not None else allowed_roots())
    if errors or not machine:
        return errors  # a refused path: do not even tell whether it exists
    return environment_errors(config)


def environment_errors(config: Any) -> list[dict[str, str]]:
    """Everything wrong with ``config`` on this machine; ``[]`` when it can run."""
    errors = _model_errors(config.model.path)
    data = getattr(config, "data", None)
    if data is not None:
        errors += _source_errors(data.source, "data.source")
    errors += _vllm_errors(config)
    errors += _benchmark_errors(config)
    if not errors:
        errors += _tokenizer_errors(config)
    return errors


def _unresolved(value: str) -> bool:
    return RUNS_VAR in value


def _model_errors(path: str) -> list[dict]:
    if _unresolved(path):
        return []
    kind = source_kind(path)
    if kind == "local":
        if not (Path(path).expanduser() / "config.json").exists():
            return [_err("model.path", f"{path} is not a model folder (it has no config.json)")]
        return []
    if kind in ("hub",):
        return []
    return [_err("model.path", f"no such model folder: {path} (and not a hub id like org/name)")]


def _source_errors(source: str, loc: str) -> list[dict]:
    if _unresolved(source):
        return []
    if source_kind(source) == "dataset":  # the studio replaces it before the stage starts
        return [_err(loc, dataset_ref_error(source))]
    if source_kind(source) == "missing":
        return [_err(loc, f"no such file or folder: {source} (and not a preset or hub id)")]
    return []


def _vllm_errors(config: Any) -> list[dict]:
    section, loc = None, ""
    if config.kind == "grpo":
        section, loc = config.trainer, "trainer.use_vllm"
    elif config.kind in ("generate", "evaluate"):
        section, loc = config.sampling, "sampling.use_vllm"
    if section is not None and section.use_vllm and not vllm_available():
        return [
            _err(
                loc,
                "vLLM is not installed here (GPU nodes: pip install 'r1studio[gpu]'); "
                "turn use_vllm off to generate with transformers",
            )
        ]
    return []


def _benchmark_errors(config: Any) -> list[dict]:
    errors = []
    if config.kind == "grpo" and config.eval.benchmark:
        bench = config.eval.benchmark
        if bench not in PRESET_FILES:
            errors += _source_errors(bench, "eval.benchmark")
    if config.kind == "generate":
        for i, bench in enumerate(config.filters.decontaminate):
            if bench not in PRESET_FILES:
                errors += _source_errors(bench, f"filters.decontaminate.{i}")
    if config.kind == "evaluate":
        for i, spec in enumerate(config.benchmarks):
            if spec.path:
                errors += _source_errors(spec.path, f"benchmarks.{i}.path")
    return errors


# ---------------------------------------------------------------------------------------------
# Checks that read the tokenizer and a sample of the data


def _load_tokenizer(path: str) -> Any:
    if _unresolved(path) or source_kind(path) != "local":
        return None
    try:
        return load_tokenizer(path)
    except Exception:  # no tokenizer files: the run itself will say so
        return None


def _tokenizer_errors(config: Any) -> list[dict]:
    tokenizer = _load_tokenizer(config.model.path)
    if tokenizer is None:
        return []
    errors = _template_prefill_errors(config, tokenizer)
    try:
        errors += _length_errors(config, tokenizer)
    except DataError as exc:
        errors.append(_err("data.source", str(exc)))
    return errors


def _template_prefill_errors(config: Any, tokenizer: Any) -> list[dict]:
    prompt = getattr(config, "data", None) or getattr(config, "prompt", None)
    specs = getattr(config, "rewards", None) or getattr(config, "verifiers", None) or []
    where = "rewards" if config.kind == "grpo" else "verifiers"
    if prompt is None or prompt.prefill_think or not prompt.use_chat_template:
        return []
    if not getattr(tokenizer, "chat_template", None):
        return []
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "1+1?"}], tokenize=False, add_generation_prompt=True
    )
    if not prompt_prefills_think(rendered):
        return []
    return [
        _err(
            "data.use_chat_template",
            f"the chat template of {config.model.path} already opens <think>, but the "
            f"{spec.name!r} reward ({where}.{i}) expects the model to write it: set its param "
            "think_prefilled: true",
        )
        for i, spec in enumerate(specs)
        if spec.name in ("format", "tag_count") and not spec.params.get("think_prefilled")
    ]


def _answer_lengths(tokenizer: Any, rows: list[dict], column: str) -> list[int]:
    from pipeline.rewards import gold_text

    answers = [str(r[column]) for r in rows if r.get(column) is not None]
    answers = [gold_text(a) or a for a in answers]  # GSM8K: the final number, not the solution
    return completion_token_lengths(tokenizer, [f"{ANSWER_OPEN}{a}{ANSWER_CLOSE}" for a in answers])


def _length_errors(config: Any, tokenizer: Any) -> list[dict]:
    if config.kind in ("grpo", "generate"):
        data = config.data
        if _unresolved(data.source):
            return []
        rows = peek_rows(data.source, SAMPLE_ROWS, data.split)
        budget, loc = (
            (config.trainer.max_completion_length, "trainer.max_completion_length")
            if config.kind == "grpo"
            else (config.sampling.max_new_tokens, "sampling.max_new_tokens")
        )
        lengths = _answer_lengths(tokenizer, rows, data.answer_column)
        if lengths and max(lengths) > budget:
            return [
                _err(
                    loc,
                    f"{budget} tokens cannot hold the reference answers: writing just "
                    f"<answer>…</answer> takes up to {max(lengths)} tokens "
                    f"(in the first {len(rows)} rows), before any reasoning",
                )
            ]
    if config.kind == "sft" and config.trainer.max_length:
        if _unresolved(config.data.source):
            return []
        return _sft_length_errors(config, tokenizer)
    return []


def _sft_length_errors(config: Any, tokenizer: Any) -> list[dict]:
    import datasets

    from pipeline.data import load_sft_examples

    section = config.data.model_copy(update={"limit": SAMPLE_ROWS})
    try:
        examples = load_sft_examples(section, tokenizer)
    except (DataError, datasets.exceptions.DatasetGenerationError):
        return []
    if len(examples) == 0:
        return []
    lengths = completion_token_lengths(
        tokenizer, [p + c for p, c in zip(examples["prompt"], examples["completion"], strict=True)]
    )
    limit = config.trainer.max_length
    over = sum(n > limit for n in lengths)
    if over / len(lengths) > SFT_OVERLONG_SHARE:
        return [
            _err(
                "trainer.max_length",
                f"{over} of the first {len(lengths)} examples are longer than {limit} tokens "
                f"(longest {max(lengths)}): they would be cut before their answers",
            )
        ]
    return []
