"""The toy assets: layout, tokenizer, reloadable models, held-out split, recipe wiring."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline import toy


def test_it_writes_the_documented_layout(toy_dir: Path) -> None:
    for model in ("base", "student-base"):
        assert (toy_dir / "models" / model / "config.json").exists()
        assert (toy_dir / "models" / model / "tokenizer.json").exists()
    for kind in ("grpo", "sft", "generate", "evaluate"):
        assert (toy_dir / "configs" / f"{kind}.yaml").exists()
    recipe = sorted(p.stem for p in (toy_dir / "recipe").glob("*.yaml"))
    assert recipe == [
        "01-r1-zero",
        "02-cold-start-data",
        "03-cold-start-sft",
        "04-reasoning-rl",
        "05-rejection-sampling",
        "06-sft",
        "07-distillation-data",
        "08-student-sft",
        "09-evaluate",
    ]


def test_the_heldout_problems_are_never_in_the_training_data(toy_dir: Path) -> None:
    def problems(name: str) -> set[str]:
        lines = (toy_dir / "data" / name).read_text().splitlines()
        return {json.loads(line)["problem"] for line in lines}

    heldout = problems("heldout.jsonl")
    assert len(heldout) == toy.SIZES["test"].n_heldout
    assert not heldout & problems("train.jsonl")
    sft = {
        json.loads(line)["messages"][0]["content"]
        for line in (toy_dir / "data" / "sft.jsonl").read_text().splitlines()
    }
    assert not heldout & sft


def test_the_models_reload_through_from_pretrained_with_the_saved_tokenizer(toy_dir) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = toy_dir / "models" / "base"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.model_type == "qwen3"
    assert model.config.head_dim * model.config.num_attention_heads == model.config.hidden_size
    text = "<think>7+5=12;3+4+1=8</think><answer>82</answer>"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    # The R1 tags are single, ordinary tokens: TRL's skip_special_tokens decoding keeps them.
    assert ids[0] == tokenizer.convert_tokens_to_ids("<think>")
    assert tokenizer.decode(ids + [tokenizer.eos_token_id], skip_special_tokens=True) == text
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 1+2?"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<|user|>What is 1+2?<|end|><|assistant|>"


def test_the_think_trace_is_column_addition_with_carries() -> None:
    assert toy.think_trace(37, 45) == "7+5=12;3+4+1=8"
    assert toy.solution(37, 45) == "<think>7+5=12;3+4+1=8</think><answer>82</answer>"
    assert toy.solution(97, 85, "direct") == "<answer>182</answer>"
    assert toy.solution(10, 11, "bare") == "21"


def test_the_base_answers_directly_but_can_reason_when_made_to(toy_dir, heldout) -> None:
    from transformers import AutoModelForCausalLM

    from pipeline import rewards
    from pipeline.config import PromptSection
    from pipeline.stages.common import load_tokenizer
    from pipeline.stages.evaluate import evaluate_model

    folder = toy_dir / "models" / "base"
    plain = heldout(folder, toy_dir / "data" / "heldout.jsonl")
    assert plain["think_first"] < 0.1  # R1-Zero has something to discover

    rows = [json.loads(line) for line in (toy_dir / "data" / "heldout.jsonl").open()]
    model = AutoModelForCausalLM.from_pretrained(folder)
    forced, _ = evaluate_model(
        model,
        load_tokenizer(str(folder)),
        rows,
        PromptSection(prefill_think=True),
        rewards.get("accuracy"),
        max_new_tokens=32,
    )
    assert forced["think_first"] == 1.0
    assert forced["pass@1"] > plain["pass@1"] + 0.15
