"""A plain TRL GRPO script, open-r1 style, that reports to R1 Studio with R1StudioCallback.

It trains the toy model (`python -m pipeline toy DIR`) on the toy arithmetic problems with two
small rewards; with `--url` and `--token` its run shows up live in the studio (metrics, samples
with their rewards, checkpoints, status). Without them it trains alone: the tests and
bench/ingest_http.py run it both ways.

    python docs/examples/grpo_script.py --toy var/toy --url http://127.0.0.1:8000 \
        --token r1s_... --run my-grpo --steps 40 --output-dir /tmp/my-grpo
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)


def accuracy(prompts, completions, answer, **kwargs):
    """1.0 when the <answer> tag holds the reference answer, else 0.0."""
    found = [ANSWER.search(c) for c in completions]
    return [
        float(bool(m) and m.group(1).strip() == str(a)) for m, a in zip(found, answer, strict=True)
    ]


def format_reward(prompts, completions, **kwargs):
    """1.0 for <think>...</think><answer>...</answer>, else 0.0."""
    pattern = re.compile(r"^<think>.*?</think>\s*<answer>.*?</answer>$", re.S)
    return [float(bool(pattern.match(c.strip()))) for c in completions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toy", required=True, help="Folder of `python -m pipeline toy`")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--save-steps", type=int, default=5)
    parser.add_argument("--url", default="", help="The studio; empty: train without it")
    parser.add_argument("--token", default="", help="Your API token (or the run's, with an id)")
    parser.add_argument("--run", default="toy grpo (script)", help="Run name, or an id")
    parser.add_argument("--timings", default="", help="Write train wall and CPU seconds here")
    args = parser.parse_args()

    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    toy = Path(args.toy)
    tokenizer = AutoTokenizer.from_pretrained(toy / "models" / "base")
    model = AutoModelForCausalLM.from_pretrained(toy / "models" / "base")
    data = load_dataset("json", data_files=str(toy / "data" / "train.jsonl"), split="train")
    data = data.map(lambda row: {"prompt": row["problem"] + "\n"})

    config = GRPOConfig(
        output_dir=args.output_dir,
        max_steps=args.steps,
        per_device_train_batch_size=16,
        num_generations=8,
        max_completion_length=32,
        temperature=0.7,
        learning_rate=5e-5,
        logging_steps=1,
        save_steps=args.save_steps,
        save_total_limit=2,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to=[],
        disable_tqdm=True,
        seed=0,
    )
    rewards = [accuracy, format_reward]
    studio = None
    if args.url:
        from pipeline.callback import R1StudioCallback

        studio = R1StudioCallback(url=args.url, token=args.token, run=args.run)
        rewards = studio.rewards(rewards)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
    )
    if studio is not None:
        trainer.add_callback(studio)
    started, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if args.timings:
        Path(args.timings).write_text(json.dumps({"train_s": elapsed, "train_cpu_s": cpu}))


if __name__ == "__main__":
    main()
