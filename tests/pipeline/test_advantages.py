"""The advantages a GRPO run shows in its ``samples`` events are the ones TRL trained on.

Each ``scale_rewards`` mode TRL supports (``group``, ``batch``, ``none``) runs two toy steps; TRL's
own completions log (``_logs``, a separate path from the batch the stage takes its numbers from)
is captured after every generation and compared, completion by completion, with the events.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest


@pytest.fixture
def trl_batches(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[str, float]]]:
    """(completion, advantage) of every generated batch, as TRL logged them."""
    from trl import GRPOTrainer

    batches: list[list[tuple[str, float]]] = []
    generate = GRPOTrainer._generate_and_score_completions

    def capture(self, inputs):
        output = generate(self, inputs)
        n = len(output["advantages"])
        completions = list(self._logs["completion"])[-n:]
        advantages = list(self._logs["advantages"])[-n:]
        batches.append(list(zip(completions, advantages, strict=True)))
        return output

    monkeypatch.setattr(GRPOTrainer, "_generate_and_score_completions", capture)
    return batches


@pytest.mark.parametrize("scale_rewards", ["group", "batch", "none"])
def test_samples_show_the_advantages_trl_computed(
    scale_rewards, trl_batches, toy_config, run_stage, events, tmp_path: Path
) -> None:
    data = toy_config("grpo")
    # 4 prompts x 4 generations: several groups, so group and batch scaling differ.
    data["trainer"].update(
        max_steps=2, per_device_train_batch_size=16, num_generations=4, scale_rewards=scale_rewards
    )
    data["output"].update(save_final=False)
    data.update(log_samples_every=1, log_samples_count=16, eval={"benchmark": ""})

    assert run_stage(data, tmp_path / "run") == 0

    samples = [
        e
        for e in events.of(events.read(tmp_path / "run"), "samples")
        if e["items"][0].get("source") != "probe"
    ]
    assert [e["step"] for e in samples] == [1, 2] and len(trl_batches) == 2
    for event, batch in zip(samples, trl_batches, strict=True):
        assert len(event["items"]) == len(batch) == 16
        for item, (completion, advantage) in zip(event["items"], batch, strict=True):
            assert item["completion"] == completion
            assert math.isclose(item["advantage"], advantage, rel_tol=1e-6, abs_tol=1e-6)

    if scale_rewards == "none":
        # Unscaled: the reward minus its group's mean, straight from the reported rewards.
        for event in samples:
            items = event["items"]
            for start in range(0, 16, 4):
                group = items[start : start + 4]
                assert len({it["prompt"] for it in group}) == 1
                mean = sum(it["reward"] for it in group) / 4
                for it in group:
                    assert math.isclose(it["advantage"], it["reward"] - mean, abs_tol=1e-5)
