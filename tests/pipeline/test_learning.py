"""Learning is real: measured on held-out problems no stage trains on (test-size toy, fixed seeds).

Margins are generous on purpose; ``bench/recipe.py`` measures the demo size against the targets.
"""

from __future__ import annotations

from pathlib import Path


def first_and_last(values: list[float], n: int = 5) -> tuple[float, float]:
    return sum(values[:n]) / n, sum(values[-n:]) / n


def test_r1_zero_grpo_discovers_thinking_first_and_gains_accuracy(
    toy_dir: Path, grpo_run: Path, heldout, events
) -> None:
    before = heldout(toy_dir / "models" / "base", toy_dir / "data" / "heldout.jsonl")
    after = heldout(grpo_run / "final", toy_dir / "data" / "heldout.jsonl")
    assert before["think_first"] < 0.1
    assert after["think_first"] > 0.5
    assert after["pass@1"] > before["pass@1"] + 0.05

    # The same shift, seen in the rollouts TRL logged during training.
    logged = [e["values"] for e in events.of(events.read(grpo_run), "metrics")]
    formats = [v["rewards/format/mean"] for v in logged if "rewards/format/mean" in v]
    early, late = first_and_last(formats)
    assert late > early + 0.1


def test_sft_lowers_the_loss_and_lifts_accuracy_over_the_base(
    toy_dir: Path, sft_run: Path, heldout, events
) -> None:
    losses = [
        e["values"]["loss"] for e in events.of(events.read(sft_run), "metrics")
        if "loss" in e["values"]
    ]  # fmt: skip
    early, late = first_and_last(losses)
    assert late < early * 0.9

    before = heldout(toy_dir / "models" / "base", toy_dir / "data" / "heldout.jsonl")
    after = heldout(sft_run / "final", toy_dir / "data" / "heldout.jsonl")
    assert after["think_first"] > 0.9  # it learnt the R1 format from the traces
    assert after["pass@1"] > before["pass@1"] + 0.08
