"""The sections of the stage configs: model, prompt, data, rewards, trainers, sampling, filters,
benchmarks. ``pipeline.config`` assembles them into one model per stage kind (and re-exports
every name here); ``_f`` gives each field its default, one line of help and the hints the web
form is drawn from (``advanced`` folds rarely changed fields away, ``widget``, ``picker``,
``hidden``), so the form needs no table of field names.

Trainer sections use TRL's field names and defaults (``GRPOConfig``/``SFTConfig``), except
``bf16`` and ``gradient_checkpointing``, which default to ``None`` = decided at build time: on
with CUDA, off on CPU (TRL turns both on everywhere, 25-45% slower on CPU).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

ADVANCED = {"advanced": True}

# Ceilings of what the trainer, the samplers and the database can hold: a value past them is a
# typo (2**63 as a batch size) that would otherwise fail hours later, or never end.
MAX_BATCH = 65_536
MAX_STEPS = 10**9
MAX_TOKENS = 10**6
MAX_ROWS = 10**9
MAX_SEED = 2**32 - 1  # numpy's seeds


def _storable(value: Any) -> Any:
    """Refuse what the database cannot store anywhere in a value, nested params included: NUL
    characters (PostgreSQL text and JSON) and Infinity or NaN (not JSON)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("NUL characters (\\x00) are not allowed")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("Infinity and NaN are not allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key)
            _storable(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _storable(item)
    return value


class _Section(BaseModel):
    # allow_inf_nan: Infinity and NaN (JSON's Infinity, YAML's .inf) are never a setting, and
    # PostgreSQL's JSON refuses them.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _refuse_unstorable(cls, value: Any) -> Any:
        return _storable(value)


def _f(
    default: Any,
    description: str,
    advanced: bool = False,
    *,
    widget: Literal["textarea"] | None = None,
    picker: Literal["models", "datasets", "rewards"] | None = None,
    hidden: bool = False,
    **kwargs: Any,
) -> Any:
    """A field with its default and help, plus the hints the web form reads from
    ``json_schema_extra``: ``advanced`` (folded away), ``widget`` (a text field shown as a
    textarea), ``picker`` (suggestions: known models, datasets or rewards), ``hidden`` (not an
    input at all, e.g. the stage kind a form is for)."""
    hints = {"advanced": advanced, "widget": widget, "picker": picker, "hidden": hidden}
    extra = {key: value for key, value in hints.items() if value} or None
    if isinstance(default, list | dict):
        return Field(
            default_factory=lambda d=default: json.loads(json.dumps(d)),
            description=description,
            json_schema_extra=extra,
            **kwargs,
        )
    return Field(default, description=description, json_schema_extra=extra, **kwargs)


def _a_number(value: Any) -> Any:
    # One clear error for text that is not a number, instead of one per member of the union.
    if isinstance(value, bool):
        raise ValueError("a number is required")
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"a number is required, got {value!r}") from None
    return value


def _whole_if_integral(value: int | float) -> int | float:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# A count of steps (or epochs) that may also be a fraction, as TRL allows: 5 stays 5 (and 5.0
# read back from JSON becomes 5), 0.5 stays 0.5, so a stored config never says `save_steps: 50.0`.
Steps = Annotated[int | float, BeforeValidator(_a_number), AfterValidator(_whole_if_integral)]


class ModelSection(_Section):
    """The model a stage starts from."""

    path: str = _f(
        "",
        "Local model folder or Hugging Face hub id (e.g. Qwen/Qwen2.5-Math-1.5B).",
        picker="models",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = _f(
        "auto", "Weights dtype. auto: bfloat16 on a GPU that supports it, float32 on CPU."
    )
    attn_implementation: Literal["auto", "eager", "sdpa", "flash_attention_2"] = _f(
        "auto", "Attention kernel; auto lets transformers pick (sdpa where available).", True
    )
    trust_remote_code: bool = _f(
        False, "Allow model code shipped with a hub model to run (only for models you trust).", True
    )


class PromptSection(_Section):
    """How a problem becomes the prompt the model sees."""

    system_prompt: str = _f(
        "",
        "System message put before each problem (empty: none). The R1 template is a good start.",
        widget="textarea",
    )
    prompt_template: str = _f(
        "{problem}",
        "The user message; {problem} is replaced by the problem text.",
        widget="textarea",
    )
    use_chat_template: bool = _f(
        True,
        "Wrap the prompt in the tokenizer's chat template. Off: the prompt is the system prompt "
        "and the template text alone (base models without a chat template).",
    )
    prefill_think: bool = _f(
        False,
        "End the prompt with <think> so the model starts inside its reasoning. A format reward "
        "must then be told think_prefilled: true.",
    )


class DataSection(PromptSection):
    """Where the problems (and for SFT the target completions) come from."""

    source: str = _f(
        "",
        "A studio dataset version (dataset:NAME@N, or dataset:NAME for the latest), JSONL or "
        "Parquet file, save_to_disk folder, a generate stage's dataset folder, a benchmark "
        "preset (math500, aime24, amc23, gsm8k, humaneval) or a hub dataset id.",
        picker="datasets",
    )
    split: str = _f("train", "Split to use for hub datasets and save_to_disk dataset dicts.", True)
    problem_column: str = _f("problem", "Column holding the problem text.")
    answer_column: str = _f("answer", "Column holding the reference answer (rewards read it).")
    messages_column: str = _f(
        "messages", "SFT: column of chat messages; the last assistant turn is the target.", True
    )
    completion_column: str = _f(
        "completion", "SFT without messages: column holding the target completion.", True
    )
    limit: int = _f(0, "Use only the first N rows (0: all).", True, ge=0, le=MAX_ROWS)


class RewardSpec(_Section):
    """One reward function from the registry, with its weight and params."""

    name: str = _f(
        "accuracy", "Reward name (python -m pipeline rewards lists them).", picker="rewards"
    )
    # Penalties are rewards that score below 0 (repetition, soft_overlong), so weights stay >= 0.
    weight: float = _f(
        1.0, "Weight of this reward in the total (TRL reward_weights).", ge=0, le=1000
    )
    params: dict[str, Any] = _f({}, "Keyword params of the reward (see its help).")

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from pipeline import rewards

        if name not in rewards.names():
            raise ValueError(f"unknown reward {name!r}; known: {', '.join(rewards.names())}")
        return name


class OutputSection(_Section):
    """Checkpoints and the final model under the run directory."""

    save_steps: Steps = _f(
        500,
        "Save a checkpoint every N steps (a float < 1 is a fraction of the run).",
        gt=0,
        le=MAX_STEPS,
    )
    save_total_limit: int | None = _f(
        2, "Keep at most N checkpoints (empty: keep all).", ge=1, le=MAX_ROWS
    )
    save_final: bool = _f(True, "Write the final model and tokenizer to <run_dir>/final.")


class _TrainerCommon(_Section):
    learning_rate: float = _f(1e-6, "Initial learning rate for AdamW.", gt=0, le=1)
    lr_scheduler_type: Literal[
        "linear", "cosine", "constant", "constant_with_warmup", "cosine_with_min_lr"
    ] = _f("linear", "Learning-rate schedule.")
    warmup_steps: Steps = _f(
        0,
        "Linear warmup: a number of steps, or a fraction of the run when < 1.",
        ge=0,
        le=MAX_STEPS,
    )
    weight_decay: float = _f(0.0, "AdamW weight decay.", True, ge=0, le=1)
    max_grad_norm: float = _f(1.0, "Gradient clipping norm.", True, gt=0, le=1e6)
    per_device_train_batch_size: int = _f(8, "Batch size per device.", ge=1, le=MAX_BATCH)
    gradient_accumulation_steps: int = _f(
        1, "Micro-batches accumulated per optimizer step.", ge=1, le=MAX_BATCH
    )
    num_train_epochs: Steps = _f(
        3, "Epochs over the data (ignored when max_steps > 0).", gt=0, le=1e6
    )
    max_steps: int = _f(
        -1, "Total optimizer steps; overrides num_train_epochs when > 0.", ge=-1, le=MAX_STEPS
    )
    logging_steps: Steps = _f(10, "Log metrics every N steps.", gt=0, le=MAX_STEPS)
    bf16: bool | None = _f(
        None,
        "bfloat16 mixed precision. Empty: on with a CUDA GPU, off on CPU (slower there).",
        True,
    )
    gradient_checkpointing: bool | None = _f(
        None, "Recompute activations to save memory. Empty: on with a GPU, off on CPU.", True
    )


class GRPOTrainerSection(_TrainerCommon):
    """GRPOTrainer arguments (TRL's names and defaults)."""

    num_generations: int = _f(
        8, "Completions sampled per prompt (the GRPO group).", ge=2, le=MAX_BATCH
    )
    max_completion_length: int = _f(512, "Maximum tokens per completion.", ge=1, le=MAX_TOKENS)
    temperature: float = _f(1.0, "Sampling temperature for the rollouts.", gt=0, le=100)
    top_p: float = _f(
        1.0, "Nucleus sampling: keep the smallest token set with this mass.", gt=0, le=1
    )
    top_k: int = _f(0, "Keep only the k likeliest tokens (0: off).", True, ge=0, le=10**7)
    repetition_penalty: float = _f(
        1.0, "Penalty on repeated tokens while sampling.", True, gt=0, le=100
    )
    beta: float = _f(
        0.0, "KL coefficient against the reference model (0: no reference model).", ge=0, le=1000
    )
    epsilon: float = _f(0.2, "Clipping range of the policy ratio.", True, gt=0, le=10)
    epsilon_high: float | None = _f(
        None, "Upper clipping bound (DAPO uses 0.28).", True, gt=0, le=10
    )
    num_iterations: int = _f(
        1, "Optimisation passes over each generated batch (GRPO's mu).", True, ge=1, le=1000
    )
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo"] = _f(
        "dapo", "Loss aggregation (dapo: token-level over the batch, no length bias)."
    )
    scale_rewards: Literal["group", "batch", "none"] = _f(
        "group", "Divide advantages by the reward std of the group, the batch, or not at all."
    )
    mask_truncated_completions: bool = _f(
        False, "Leave completions cut at max_completion_length out of the loss.", True
    )
    generation_batch_size: int | None = _f(
        None,
        "Completions generated per round (empty: batch x accumulation).",
        True,
        ge=1,
        le=MAX_BATCH * 16,
    )
    shuffle_dataset: bool = _f(True, "Shuffle the prompts.", True)
    disable_dropout: bool = _f(
        False, "Turn dropout off in the policy (useful with beta > 0).", True
    )
    use_vllm: bool = _f(False, "Generate rollouts with vLLM (GPU nodes with vllm installed).")
    vllm_mode: Literal["colocate", "server"] = _f(
        "colocate", "colocate: vLLM shares the training GPU; server: a separate `trl vllm-serve`."
    )
    vllm_gpu_memory_utilization: float = _f(
        0.3, "GPU memory share vLLM may take in colocate mode.", True, gt=0, le=1
    )
    vllm_server_base_url: str | None = _f(None, "URL of the vLLM server in server mode.", True)


class SFTTrainerSection(_TrainerCommon):
    """SFTTrainer arguments (TRL's names and defaults)."""

    learning_rate: float = _f(2e-5, "Initial learning rate for AdamW.", gt=0, le=1)
    max_length: int | None = _f(
        1024, "Truncate tokenized prompt+completion to this many tokens.", ge=1, le=MAX_TOKENS
    )
    completion_only_loss: bool = _f(
        True, "Train on the completion only (the prompt tokens carry no loss)."
    )
    packing: bool = _f(False, "Pack several examples into each max_length sequence.", True)
    loss_type: Literal["nll", "dft"] = _f(
        "nll", "nll: cross-entropy; dft: dynamic fine-tuning.", True
    )


class PeriodicEval(_Section):
    """Greedy accuracy on a benchmark every N steps during RL (the paper watches AIME)."""

    benchmark: str = _f(
        "",
        "Benchmark preset or JSONL/Parquet path (empty: no periodic eval).",
        picker="datasets",
    )
    name: str = _f(
        "", "Short name in charts and on Benchmarks (empty: the preset or the file's stem).", True
    )
    every_steps: int = _f(0, "Evaluate every N steps (0: only at the end).", ge=0, le=MAX_STEPS)
    limit: int = _f(50, "Problems evaluated each time.", ge=1, le=MAX_ROWS)
    max_new_tokens: int = _f(
        0, "Token budget (0: the trainer's max_completion_length).", True, ge=0, le=MAX_TOKENS
    )
    problem_column: str = _f("problem", "Problem column of a JSONL/Parquet benchmark.", True)
    answer_column: str = _f("answer", "Answer column of a JSONL/Parquet benchmark.", True)


class SamplingSection(_Section):
    """How completions are sampled."""

    k: int = _f(4, "Samples per problem.", ge=1, le=4096)
    temperature: float = _f(1.0, "Sampling temperature (0: greedy).", ge=0, le=100)
    top_p: float = _f(1.0, "Nucleus sampling mass.", gt=0, le=1)
    max_new_tokens: int = _f(512, "Maximum tokens per completion.", ge=1, le=MAX_TOKENS)
    batch_size: int = _f(
        256, "Sequences generated together (transformers backend).", True, ge=1, le=MAX_BATCH
    )
    use_vllm: bool = _f(False, "Generate with vLLM (GPU nodes with vllm installed).")
    vllm_gpu_memory_utilization: float = _f(
        0.9, "GPU memory share vLLM may take.", True, gt=0, le=1
    )


class EvalSamplingSection(SamplingSection):
    """Evaluation sampling, the R1 protocol by default: temperature 0.6, top-p 0.95 and k
    samples per problem, pass@1 averaged over them (greedy decoding repeats itself and varies
    from run to run on long reasoning; the paper samples 4 to 64 per problem)."""

    k: int = _f(
        16,
        "Samples per problem; pass@1 is their mean. Small benchmarks need many: with AIME's 30 "
        "problems, k=1 leaves a standard error of about 8 points (paper: up to 64).",
        ge=1,
        le=4096,
    )
    temperature: float = _f(
        0.6, "Sampling temperature; R1 protocol 0.6 (0: greedy, then k is 1).", ge=0, le=100
    )
    top_p: float = _f(0.95, "Nucleus sampling mass; R1 protocol 0.95.", gt=0, le=1)
    max_new_tokens: int = _f(
        512,
        "Maximum tokens per completion (the paper allows 32,768: reasoning models need room).",
        ge=1,
        le=MAX_TOKENS,
    )


class FilterSection(_Section):
    """Rejection-sampling filters, applied in this order."""

    keep_correct: bool = _f(True, "Keep only samples every verifier scores at least min_score.")
    min_score: float = _f(1.0, "Score a verifier must reach for keep_correct.", True)
    drop_mixed_language: bool = _f(False, "Drop samples whose reasoning mixes languages.")
    language: str = _f("en", "Target language for drop_mixed_language.", True)
    min_language_consistency: float = _f(
        0.95, "Share of reasoning words in the target language needed to stay.", True, ge=0, le=1
    )
    max_length: int = _f(0, "Drop completions longer than N tokens (0: off).", ge=0, le=MAX_TOKENS)
    max_repetition: float = _f(
        0.0,
        "Drop completions whose share of repeated word 3-grams exceeds this (0: off).",
        ge=0,
        le=1,
    )
    dedup: Literal["none", "exact", "near"] = _f(
        "exact", "Drop duplicate completions of the same prompt: exact text, or near (Jaccard)."
    )
    near_dup_threshold: float = _f(
        0.9,
        "Jaccard similarity of word 3-grams at which two completions count as duplicates.",
        True,
        gt=0,
        le=1,
    )
    max_per_prompt: int = _f(0, "Keep at most N samples per prompt (0: all).", ge=0, le=MAX_ROWS)
    decontaminate: list[str] = _f(
        [], "Benchmarks (presets or files) whose problems must not appear among the prompts."
    )
    decontaminate_ngram: int = _f(8, "Word n-gram size for decontamination.", True, ge=1, le=1000)


class DatasetOutputSection(_Section):
    """The dataset a generate stage writes under <run_dir>/dataset."""

    format: Literal["messages", "prompt_completion"] = _f(
        "messages", "Row shape: chat messages, or prompt/completion text columns."
    )
    include_system_prompt: bool = _f(
        False, "Put the system prompt into the written messages.", True
    )


class BenchmarkSpec(_Section):
    """One benchmark: a preset, or a file with a column mapping."""

    name: str = _f("math500", "Preset (math500, aime24, amc23, gsm8k, humaneval) or a label.")
    path: str = _f("", "JSONL/Parquet file (empty: the preset of that name).")
    problem_column: str = _f("problem", "Problem column of the file.", True)
    answer_column: str = _f("answer", "Answer column of the file.", True)
    grader: str = _f(
        "",
        "Reward used as grader (empty: code for humaneval, accuracy otherwise).",
        True,
        picker="rewards",
    )
