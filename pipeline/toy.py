"""Tiny local models, a tokenizer and arithmetic tasks, built with no download.

``python -m pipeline toy DIR [--size demo|test]`` writes::

    DIR/models/base           a Qwen3-architecture LM pretrained on mixed answer styles
    DIR/models/student-base   a smaller, untrained Qwen3 LM (the distillation student)
    DIR/data/train.jsonl      two-digit additions {"problem", "answer"} (held-out ones removed)
    DIR/data/heldout.jsonl    problems never trained on, by any stage
    DIR/configs/{grpo,sft,generate,evaluate}.yaml   one stage each, runnable on its own
    DIR/recipe/NN-<stage>.yaml                      the whole R1 recipe, in order

The base model is what makes R1-Zero worth watching: it was taught three answer styles
(~30% ``<think>7+5=12;3+4+1=8</think><answer>82</answer>``, ~42% a direct ``<answer>82</answer>``,
~28% a bare ``82``), so it *can* reason step by step but by default answers directly and is
mostly wrong. GRPO with an accuracy reward has something to discover: thinking first pays.

Recipe configs name earlier stages' outputs as ``${runs}/<NN-stage>/...``; the CLI replaces
``${runs}`` with ``--runs-root`` (or ``$R1STUDIO_RUNS_ROOT``), and each stage's run dir is
``<runs root>/<config file stem>`` (``01-r1-zero``, ``02-cold-start-data``, ...).
"""

from __future__ import annotations

import json
import math
import random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import RUNS_VAR
from pipeline.rewards import R1_ZERO_REWARDS, REASONING_REWARDS
from pipeline.template import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN

SPECIAL_TOKENS = ["<pad>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{%- for m in messages -%}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)
STYLE_WEIGHTS = {"think": 0.30, "direct": 0.42, "bare": 0.28}
# The held-out set's one name, in RL's periodic eval and in the evaluate stage alike.
HELDOUT_NAME = "toy-heldout"


@dataclass(frozen=True)
class ToySize:
    """Everything that differs between the seconds-long test toy and the minutes-long demo."""

    hidden: int
    layers: int
    heads: int
    pretrain_steps: int
    student_hidden: int
    student_layers: int
    n_heldout: int
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    pretrain_batch: int = 64
    pretrain_lr: float = 3e-3


SIZES: dict[str, ToySize] = {
    "test": ToySize(
        hidden=64,
        layers=2,
        heads=4,
        pretrain_steps=300,
        student_hidden=32,
        student_layers=1,
        n_heldout=64,
        stages={
            # 64 completions a step: at 32 the held-out gain swung between +1.6 and +4.7 points
            # with the seed; at 64 it is +6 to +17 over seeds 0-2.
            "grpo": {"max_steps": 30, "batch": 64, "lr": 5e-5},
            "cold_start_limit": 128,
            "cold_start_sft": {"max_steps": 20, "batch": 32, "lr": 1e-3},
            "reasoning_grpo": {
                "max_steps": 10,
                "batch": 32,
                "lr": 3e-5,
                "temperature": 1.0,
                "warmup": 2,
            },
            "generate_limit": 128,
            "generate_k": 4,
            "sft": {"max_steps": 20, "batch": 32, "lr": 1e-3},
            "student_sft": {"max_steps": 20, "batch": 32, "lr": 3e-3},
            "eval_limit": 64,
        },
    ),
    "demo": ToySize(
        hidden=128,
        layers=4,
        heads=4,
        pretrain_steps=300,
        student_hidden=64,
        student_layers=2,
        n_heldout=300,
        stages={
            # 64 completions a step and lr 3e-5: R1-Zero reaches 92-95% held-out over seeds 0-2;
            # at 32 and 5e-5 it swung between 47% and 84% with the seed (and the machine).
            "grpo": {"max_steps": 100, "batch": 64, "lr": 3e-5},
            "cold_start_limit": 1000,
            "cold_start_sft": {"max_steps": 100, "batch": 64, "lr": 1e-3},
            "reasoning_grpo": {
                "max_steps": 100,
                "batch": 64,
                "lr": 3e-5,
                "temperature": 1.0,
                "warmup": 10,
            },
            "generate_limit": 2000,
            "generate_k": 4,
            "sft": {"max_steps": 200, "batch": 64, "lr": 2e-3},
            "student_sft": {"max_steps": 400, "batch": 64, "lr": 3e-3},
            "eval_limit": 300,
        },
    ),
}


# ---------------------------------------------------------------------------------------------
# Tokenizer and models


def build_tokenizer() -> Any:
    """A character-level tokenizer with chat roles as special tokens and R1 tags as plain tokens.

    The four tags are *ordinary* added tokens on purpose: TRL decodes completions with
    ``skip_special_tokens=True``, which would erase special tags and zero the format reward.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [c for c in string.printable if c not in "\t\r\x0b\x0c"]
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + chars)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()  # characters join back without spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="<|end|>",
        unk_token="<unk>",
        additional_special_tokens=["<|system|>", "<|user|>", "<|assistant|>"],
    )
    tokenizer.add_tokens(
        [
            AddedToken(tag, special=False, normalized=False)
            for tag in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
        ]
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    return tokenizer


def build_model(tokenizer: Any, hidden: int, layers: int, heads: int, seed: int = 0) -> Any:
    """A freshly initialised Qwen3 causal LM sized for the toy vocabulary.

    Qwen3 keeps the saved tokenizer on reload (a Qwen2 folder would force ``Qwen2Tokenizer``);
    its ``head_dim`` defaults to 128, so it is set to ``hidden / heads``.
    """
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=hidden // heads,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = Qwen3ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = None
    return model


# ---------------------------------------------------------------------------------------------
# Tasks


def problem_text(a: int, b: int) -> str:
    return f"What is {a}+{b}?"


def think_trace(a: int, b: int) -> str:
    """Column addition written out: units with carry, then tens with carry."""
    units = a % 10 + b % 10
    carry = units // 10
    tens = a // 10 + b // 10 + carry
    return f"{a % 10}+{b % 10}={units};{a // 10}+{b // 10}+{carry}={tens}"


def solution(a: int, b: int, style: str = "think") -> str:
    """A completion in one of the three styles the base model is taught."""
    answer = str(a + b)
    if style == "think":
        return f"{THINK_OPEN}{think_trace(a, b)}{THINK_CLOSE}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"
    if style == "direct":
        return f"{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"
    return answer


def make_problems(n_heldout: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """All two-digit additions, split into train and a held-out set nothing trains on."""
    pairs = [(a, b) for a in range(10, 100) for b in range(10, 100)]
    random.Random(seed).shuffle(pairs)

    def rows(chunk: list[tuple[int, int]]) -> list[dict]:
        return [{"problem": problem_text(a, b), "answer": str(a + b)} for a, b in chunk]

    return rows(pairs[n_heldout:]), rows(pairs[:n_heldout])


def _operands(problem: str) -> tuple[int, int]:
    a, b = problem.removeprefix("What is ").removesuffix("?").split("+")
    return int(a), int(b)


# ---------------------------------------------------------------------------------------------
# Pretraining (a plain torch loop: a few hundred steps, no Trainer overhead)


def pretrain(
    model: Any,
    tokenizer: Any,
    problems: list[dict],
    steps: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[float]:
    """Teach the model the mixed answer styles, loss on the completion only; returns losses."""
    import torch

    rng = random.Random(seed)
    torch.manual_seed(seed)
    styles, weights = zip(*STYLE_WEIGHTS.items(), strict=True)
    prompt_ids = {}
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    model.train()
    losses = []
    for step in range(steps):
        batch = rng.sample(problems, batch_size)
        seqs, masks = [], []
        for row in batch:
            if row["problem"] not in prompt_ids:
                text = tokenizer.apply_chat_template(
                    [{"role": "user", "content": row["problem"]}],
                    tokenize=False,
                    add_generation_prompt=True,
                )
                prompt_ids[row["problem"]] = tokenizer(text, add_special_tokens=False)["input_ids"]
            style = rng.choices(styles, weights)[0]
            completion = solution(*_operands(row["problem"]), style) + tokenizer.eos_token
            c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
            p_ids = prompt_ids[row["problem"]]
            seqs.append(p_ids + c_ids)
            masks.append([0] * len(p_ids) + [1] * len(c_ids))
        width = max(len(s) for s in seqs)
        ids = torch.full((batch_size, width), tokenizer.pad_token_id)
        labels = torch.full((batch_size, width), -100)
        attention = torch.zeros((batch_size, width), dtype=torch.long)
        for i, (seq, mask) in enumerate(zip(seqs, masks, strict=True)):
            ids[i, : len(seq)] = torch.tensor(seq)
            attention[i, : len(seq)] = 1
            labels[i, : len(seq)] = torch.tensor(
                [t if m else -100 for t, m in zip(seq, mask, strict=True)]
            )
        loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        if step % 50 == 0 or step == steps - 1:
            log(f"pretrain step {step + 1}/{steps} loss {loss.item():.3f}")
    model.eval()
    return losses


# ---------------------------------------------------------------------------------------------
# Configs


def _model(path: str) -> dict:
    return {"path": path}


def _data(source: str, **extra: Any) -> dict:
    return {"source": source, **extra}


def _grpo(model: str, data: str, settings: dict, eval_data: str, rewards: list[dict]) -> dict:
    """A GRPO config; the temperature, lr and format weight are what made R1-Zero learn here."""
    steps = settings["max_steps"]
    return {
        "kind": "grpo",
        "model": _model(model),
        "data": _data(data),
        "trainer": {
            "learning_rate": settings["lr"],
            # R1-Zero learnt best here at a constant rate; reasoning RL wants a short warmup.
            "lr_scheduler_type": "constant_with_warmup" if settings.get("warmup") else "constant",
            "warmup_steps": settings.get("warmup", 0),
            "per_device_train_batch_size": settings["batch"],
            "num_generations": 8,
            "max_completion_length": 32,
            "temperature": settings.get("temperature", 0.7),
            "max_steps": steps,
            "logging_steps": max(1, steps // 20),
        },
        "rewards": rewards,
        "output": {"save_steps": max(1, steps // 2), "save_total_limit": 2},
        "log_samples_every": max(1, steps // 10),
        "log_samples_count": 16,
        "eval": {
            "benchmark": eval_data,
            "name": HELDOUT_NAME,
            "every_steps": max(1, steps // 2),
            "limit": 64,
        },
        "seed": 0,
    }


def _sft(model: str, data: str, settings: dict) -> dict:
    steps = settings["max_steps"]
    return {
        "kind": "sft",
        "model": _model(model),
        "data": _data(data),
        "trainer": {
            "learning_rate": settings["lr"],
            "lr_scheduler_type": "cosine",
            "warmup_steps": max(1, steps // 20),
            "per_device_train_batch_size": settings["batch"],
            "max_steps": steps,
            "logging_steps": max(1, steps // 20),
            "max_length": 128,
        },
        "output": {"save_steps": max(1, steps // 2), "save_total_limit": 2},
        "seed": 0,
    }


def _generate(model: str, data: str, limit: int, k: int, heldout: str, **filters: Any) -> dict:
    return {
        "kind": "generate",
        "model": _model(model),
        "data": _data(data, limit=limit),
        "sampling": {"k": k, "temperature": 0.7, "max_new_tokens": 32, "batch_size": 512},
        "verifiers": [{"name": "accuracy"}, {"name": "format"}],
        "filters": {"keep_correct": True, "dedup": "exact", "decontaminate": [heldout], **filters},
        "seed": 0,
    }


def _evaluate(model: str, heldout: str, limit: int) -> dict:
    return {
        "kind": "evaluate",
        "model": _model(model),
        "benchmarks": [{"name": HELDOUT_NAME, "path": heldout}],
        "sampling": {"k": 4, "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 32},
        "limit": limit,
        "seed": 0,
    }


def recipe_configs(root: Path, size: ToySize) -> dict[str, dict]:
    """The R1 recipe as ``{"NN-stage": config}``; later stages read ``${runs}/<earlier>/...``."""
    base = str(root / "models" / "base")
    student = str(root / "models" / "student-base")
    train = str(root / "data" / "train.jsonl")
    heldout = str(root / "data" / "heldout.jsonl")
    s = size.stages
    runs = RUNS_VAR
    return {
        "01-r1-zero": _grpo(base, train, s["grpo"], heldout, R1_ZERO_REWARDS),
        "02-cold-start-data": _generate(
            f"{runs}/01-r1-zero/final", train, s["cold_start_limit"], 4, heldout, max_per_prompt=1
        ),
        "03-cold-start-sft": _sft(base, f"{runs}/02-cold-start-data/dataset", s["cold_start_sft"]),
        "04-reasoning-rl": _grpo(
            f"{runs}/03-cold-start-sft/final",
            train,
            s["reasoning_grpo"],
            heldout,
            REASONING_REWARDS,
        ),
        "05-rejection-sampling": _generate(
            f"{runs}/04-reasoning-rl/final", train, s["generate_limit"], s["generate_k"], heldout
        ),
        "06-sft": _sft(base, f"{runs}/05-rejection-sampling/dataset", s["sft"]),
        "07-distillation-data": _generate(
            f"{runs}/06-sft/final", train, s["generate_limit"], s["generate_k"], heldout
        ),
        "08-student-sft": _sft(student, f"{runs}/07-distillation-data/dataset", s["student_sft"]),
        "09-evaluate": _evaluate(f"{runs}/06-sft/final", heldout, s["eval_limit"]),
    }


def standalone_configs(root: Path, size: ToySize) -> dict[str, dict]:
    """One config per stage kind that runs on its own from the toy assets."""
    base = str(root / "models" / "base")
    train = str(root / "data" / "train.jsonl")
    heldout = str(root / "data" / "heldout.jsonl")
    s = size.stages
    return {
        "grpo": _grpo(base, train, s["grpo"], heldout, R1_ZERO_REWARDS),
        "sft": _sft(base, str(root / "data" / "sft.jsonl"), s["cold_start_sft"]),
        "generate": _generate(base, train, s["cold_start_limit"], 4, heldout),
        "evaluate": _evaluate(base, heldout, s["eval_limit"]),
    }


def _write_yaml(path: Path, data: dict, header: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path.write_text((f"# {header}\n" if header else "") + text)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


# ---------------------------------------------------------------------------------------------
# Build


def build_toy(
    root: str | Path, size: str = "demo", log: Callable[[str], None] = print
) -> dict[str, Path]:
    """Write the toy models, data, standalone configs and recipe under ``root``."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    spec = SIZES[size]
    root = Path(root).resolve()
    started = time.monotonic()

    # data
    train, heldout = make_problems(spec.n_heldout)
    _write_jsonl(root / "data" / "train.jsonl", train)
    _write_jsonl(root / "data" / "heldout.jsonl", heldout)
    sft_rows = [
        {
            "messages": [
                {"role": "user", "content": row["problem"]},
                {"role": "assistant", "content": solution(*_operands(row["problem"]))},
            ]
        }
        for row in train[:512]
    ]
    _write_jsonl(root / "data" / "sft.jsonl", sft_rows)

    # models
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tokenizer = build_tokenizer()
    base = build_model(tokenizer, spec.hidden, spec.layers, spec.heads, seed=0)
    pretrain(
        base, tokenizer, train, spec.pretrain_steps, spec.pretrain_batch, spec.pretrain_lr, log=log
    )
    student = build_model(tokenizer, spec.student_hidden, spec.student_layers, spec.heads, seed=1)
    for name, model in (("base", base), ("student-base", student)):
        folder = root / "models" / name
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    # configs
    for kind, config in standalone_configs(root, spec).items():
        _write_yaml(root / "configs" / f"{kind}.yaml", config, f"toy {kind} stage ({size} size)")
    for name, config in recipe_configs(root, spec).items():
        _write_yaml(
            root / "recipe" / f"{name}.yaml",
            config,
            f"R1 recipe step {name} ({size} size); {RUNS_VAR} = the recipe's runs root",
        )
    log(f"toy assets ({size}) written to {root} in {time.monotonic() - started:.1f}s")
    return {
        "root": root,
        "base": root / "models" / "base",
        "student": root / "models" / "student-base",
        "train": root / "data" / "train.jsonl",
        "heldout": root / "data" / "heldout.jsonl",
    }
