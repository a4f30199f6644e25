"""What every stage shares: loading the model, trainer arguments, sampling, checkpoints.

Device choices are made here, at build time: on a machine without CUDA the trainers get
``use_cpu=True`` and, unless the config says otherwise, no bf16 and no gradient checkpointing
(both on by default in TRL, and 25-45% slower on CPU).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger("pipeline")

# Rewards that read the reference answer column: a dataset without it cannot feed them.
ANSWER_REWARDS = ("accuracy", "cosine_length")


class StageError(RuntimeError):
    """A stage cannot go on; the message says why in the user's terms (field names included)."""


class StageCancelled(RuntimeError):
    """The stage stopped on request (SIGTERM) after saving what it had."""


def quiet_libraries() -> None:
    """No progress bars or info chatter from the libraries in the run's logs."""
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in v6.*")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_warning()


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_dtype(dtype: str) -> Any:
    import torch

    if dtype == "auto":
        if cuda_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, dtype)


def load_tokenizer(path: str, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(section: Any) -> tuple[Any, Any]:
    """The causal LM and tokenizer of a ``ModelSection``."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {
        "dtype": resolve_dtype(section.dtype),
        "trust_remote_code": section.trust_remote_code,
    }
    if section.attn_implementation != "auto":
        kwargs["attn_implementation"] = section.attn_implementation
    model = AutoModelForCausalLM.from_pretrained(section.path, **kwargs)
    tokenizer = load_tokenizer(section.path, section.trust_remote_code)
    if cuda_available():
        model = model.to("cuda")
    return model, tokenizer


def trainer_arguments(trainer: Any, output: Any, seed: int, run_dir: Path) -> dict[str, Any]:
    """Keyword arguments shared by GRPOConfig and SFTConfig, with device-aware defaults."""
    cuda = cuda_available()
    common = trainer.model_dump(exclude={"bf16", "gradient_checkpointing"})
    return {
        **common,
        "output_dir": str(run_dir / "checkpoints"),
        "bf16": trainer.bf16 if trainer.bf16 is not None else cuda and _bf16_ok(),
        # transformers 5 renamed it; passing the new name avoids a deprecation warning per run
        "activation_checkpointing": (
            trainer.gradient_checkpointing if trainer.gradient_checkpointing is not None else cuda
        ),
        "use_cpu": not cuda,
        "report_to": [],
        "save_strategy": "steps",
        "save_steps": output.save_steps,
        "save_total_limit": output.save_total_limit,
        "seed": seed,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def _bf16_ok() -> bool:
    import torch

    return torch.cuda.is_bf16_supported()


def last_checkpoint(run_dir: Path) -> str | None:
    """The newest ``checkpoint-<step>`` folder of a run, or None."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return None
    steps = []
    for child in folder.iterdir():
        if child.is_dir() and child.name.startswith("checkpoint-"):
            try:
                steps.append((int(child.name.split("-", 1)[1]), child))
            except ValueError:
                continue
    return str(max(steps)[1]) if steps else None


def resume_checkpoint(run_dir: Path, resume: bool, reporter: Any) -> str | None:
    if not resume:
        return None
    checkpoint = last_checkpoint(run_dir)
    if checkpoint:
        reporter.log("info", f"resuming from {checkpoint}")
    else:
        reporter.log("warning", "resume asked but no checkpoint found: starting from the beginning")
    return checkpoint


def train(trainer: Any, callback: Any, run_dir: Path, resume: bool, reporter: Any) -> None:
    """Train (from the last checkpoint on resume); StageCancelled when ``callback`` (the
    ``ReporterCallback``) saw a stop request."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the events carry the logs; keep stdout readable
    checkpoint = resume_checkpoint(run_dir, resume, reporter)
    if checkpoint and _trained_out(trainer, checkpoint, reporter):
        return
    trainer.train(resume_from_checkpoint=checkpoint)
    if callback.stopped:
        raise StageCancelled(f"stopped at step {trainer.state.global_step}; checkpoint saved")


def _trained_out(trainer: Any, checkpoint: str, reporter: Any) -> bool:
    """Whether ``checkpoint`` is at the run's last step already (saved before its attempt was
    stopped); then its weights and state are loaded and nothing is trained. transformers'
    Trainer, resumed there, would train one step past ``max_steps`` before it checked."""
    from transformers import TrainerState

    path = Path(checkpoint) / "trainer_state.json"
    max_steps = trainer.args.max_steps
    if max_steps <= 0 or not path.is_file():
        return False
    state = TrainerState.load_from_json(str(path))
    if state.global_step < max_steps:
        return False
    trainer._load_from_checkpoint(checkpoint)  # the weights (as train() would load them)
    trainer.state = state
    reporter.log("info", f"{Path(checkpoint).name} is at step {state.global_step} of {max_steps}: "
                 "nothing left to train")  # fmt: skip
    reporter.progress(state.global_step, max_steps)
    return True


def save_final(trainer: Any, tokenizer: Any, run_dir: Path, reporter: Any) -> Path:
    """Write the final model and tokenizer to ``<run_dir>/final``."""
    final = run_dir / "final"
    trainer.save_model(str(final))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(final))
        reporter.log("info", f"final model saved to {final}")
    return final


# ---------------------------------------------------------------------------------------------
# Sampling (transformers generate in batches, or vLLM)


def sample_transformers(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    k: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    batch_size: int,
    seed: int = 0,
    on_batch: Callable[[int, list[list[str]]], None] | None = None,
) -> list[list[str]]:
    """``k`` completions for each prompt (greedy when temperature is 0, then k is 1).

    ``on_batch(start, completions)`` is called after each batch of prompts (for progress and
    for the stop check: it may raise ``StageCancelled``).
    """
    import torch

    greedy = temperature == 0
    k = 1 if greedy else k
    # A private RNG: evaluating during RL must not reseed the trainer's sampling.
    devices = [model.device.index or 0] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return _sample_batches(
            model, tokenizer, prompts, k, greedy, temperature, top_p, max_new_tokens,
            batch_size, on_batch,
        )  # fmt: skip


def _sample_batches(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    k: int,
    greedy: bool,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    batch_size: int,
    on_batch: Callable[[int, list[list[str]]], None] | None,
) -> list[list[str]]:
    import torch

    was_training = model.training
    model.eval()
    per_batch = max(1, batch_size // k)
    results: list[list[str]] = []
    gen_kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if greedy:
        gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        gen_kwargs.update(
            do_sample=True, temperature=temperature, top_p=top_p, top_k=None, num_return_sequences=k
        )
    try:
        for start in range(0, len(prompts), per_batch):
            chunk = prompts[start : start + per_batch]
            enc = tokenizer(chunk, return_tensors="pt", padding=True, padding_side="left")
            enc = enc.to(model.device)
            with torch.no_grad():
                out = model.generate(**enc, **gen_kwargs)
            texts = tokenizer.batch_decode(
                out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True
            )
            batch = [texts[i * k : (i + 1) * k] for i in range(len(chunk))]
            results.extend(batch)
            if on_batch:
                on_batch(start, batch)
    finally:
        if was_training:
            model.train()
    return results


def sample_completions(
    sampling: Any,
    prompts: list[str],
    *,
    sampler: VllmSampler | None = None,
    model: Any = None,
    tokenizer: Any = None,
    seed: int = 0,
    on_batch: Callable[[int, list[list[str]]], None] | None = None,
) -> list[list[str]]:
    """``k`` completions per prompt with a ``SamplingSection``'s settings: through the vLLM
    ``sampler`` when given (all at once, no ``on_batch``), else transformers in batches."""
    if sampler is not None:
        return sampler.sample(
            prompts, sampling.k, sampling.temperature, sampling.top_p, sampling.max_new_tokens
        )
    return sample_transformers(
        model, tokenizer, prompts, sampling.k, sampling.temperature, sampling.top_p,
        sampling.max_new_tokens, sampling.batch_size, seed, on_batch,
    )  # fmt: skip


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VllmSampler:
    """vLLM generation for GPU nodes, with the transformers path's contract: rendered prompt
    texts in, ``k`` completion texts per prompt out. The engine is built once and reused."""

    def __init__(self, model_section: Any, seed: int = 0, gpu_memory_utilization: float = 0.9):
        from vllm import LLM

        self.seed = seed
        self.llm = LLM(
            model=model_section.path,
            dtype=model_section.dtype,  # vLLM takes the same names, "auto" included
            seed=seed,
            trust_remote_code=model_section.trust_remote_code,
            gpu_memory_utilization=gpu_memory_utilization,
        )

    def sample(
        self, prompts: list[str], k: int, temperature: float, top_p: float, max_new_tokens: int
    ) -> list[list[str]]:
        from vllm import SamplingParams

        greedy = temperature == 0
        params = SamplingParams(
            n=1 if greedy else k,
            temperature=temperature,
            top_p=1.0 if greedy else top_p,
            max_tokens=max_new_tokens,
            seed=self.seed,
            skip_special_tokens=True,  # as TRL decodes: ordinary-token tags stay
        )
        outputs = self.llm.generate(prompts, params)
        return [[choice.text for choice in out.outputs] for out in outputs]


def flat_samples(
    problems: list[dict], prompts: list[str], completions: list[list[str]]
) -> tuple[list[str], list[str], dict[str, list]]:
    """One entry per sampled completion: its prompt, its text, and its problem's columns as the
    keyword arguments a reward reads (``answer=[...]``, ...)."""
    flat_prompts, flat_completions, columns = [], [], {}
    for row, prompt, outs in zip(problems, prompts, completions, strict=True):
        for text in outs:
            flat_prompts.append(prompt)
            flat_completions.append(text)
            for key, value in row.items():
                columns.setdefault(key, []).append(value)
    return flat_prompts, flat_completions, columns


def completion_token_lengths(tokenizer: Any, texts: list[str]) -> list[int]:
    if not texts:
        return []
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
