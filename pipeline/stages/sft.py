"""The ``sft`` stage: supervised fine-tuning with TRL's SFTTrainer.

Takes a ``messages`` dataset (what a generate stage writes: the last assistant turn is the
target) or problems with a completion column, renders the prompts with the same builder the
other stages use, and trains on the completion only by default. Used for the cold start, the
SFT on rejection-sampled data, and the distilled student.

    python -m pipeline run sft.yaml --run-dir runs/cold-start [--resume]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.data import load_sft_examples
from pipeline.reporting import Reporter, ReporterCallback
from pipeline.stages.common import StageError, load_model, save_final, train, trainer_arguments


def run(config: Any, reporter: Reporter, *, resume: bool = False) -> dict:
    """Fine-tune; returns the training summary TRL logs at the end."""
    from trl import SFTConfig, SFTTrainer

    run_dir = Path(reporter.run_dir)

    # load model
    model, tokenizer = load_model(config.model)

    # load data
    dataset = load_sft_examples(config.data, tokenizer)
    if len(dataset) == 0:
        # SFTTrainer would fail with a bare StopIteration on an empty dataset.
        raise StageError(
            f"data.source: {config.data.source} has no training examples (a rejection-sampling "
            "stage that kept nothing? check its filters and its dataset event)"
        )
    reporter.log("info", f"{len(dataset)} training examples")

    # train
    args = SFTConfig(**trainer_arguments(config.trainer, config.output, config.seed, run_dir))
    callback = ReporterCallback(reporter)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[callback],
    )
    train(trainer, callback, run_dir, resume, reporter)

    # save
    if config.output.save_final:
        save_final(trainer, tokenizer, run_dir, reporter)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {"step": trainer.state.global_step, "examples": len(dataset)}
    if losses:
        summary.update(first_loss=losses[0], last_loss=losses[-1])
    return summary
