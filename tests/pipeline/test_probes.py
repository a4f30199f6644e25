"""Probe prompts: a few fixed prompts answered greedily at every samples step of a GRPO run,
so that "this prompt over time" always has data (training prompts rarely come back)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.stages.grpo import pick_probes


def probe_events(log: list[dict]) -> list[dict]:
    return [e for e in log if e["type"] == "samples" and e["items"][0].get("source") == "probe"]


def test_it_picks_the_same_probes_for_the_same_seed() -> None:
    pool = [{"problem": f"p{i}"} for i in range(100)]

    first, again, other = pick_probes(pool, 4, 0), pick_probes(pool, 4, 0), pick_probes(pool, 4, 1)

    assert first == again and first != other and len(first) == 4
    assert first == sorted(first, key=lambda row: int(row["problem"][1:]))  # in pool order
    assert pick_probes(pool[:2], 4, 0) == pool[:2] and pick_probes(pool, 0, 0) == []


def test_grpo_answers_the_held_out_probes_at_every_samples_step(
    grpo_run: Path, events, toy_dir: Path
) -> None:
    log = events.read(grpo_run)
    probes = probe_events(log)

    # Before training (step 0), then with every samples report (log_samples_every: 3 of 30).
    assert [e["step"] for e in probes] == list(range(0, 31, 3))
    prompts = [tuple(it["prompt"] for it in e["items"]) for e in probes]
    assert len(set(prompts)) == 1 and len(prompts[0]) == 4  # the same 4 prompts every time
    # Taken from the held-out set the run evaluates on, never from the training prompts.
    heldout = [json.loads(line) for line in (toy_dir / "data" / "heldout.jsonl").open()]
    train = {json.loads(line)["problem"] for line in (toy_dir / "data" / "train.jsonl").open()}
    for item in probes[0]["items"]:
        problem = item["prompt"].removeprefix("<|user|>").removesuffix("<|end|><|assistant|>")
        assert problem not in train
        assert {"problem": problem, "answer": item["reference"]} in heldout
    # Scored like training samples: each reward and TRL's weighted total; no advantage.
    for e in probes:
        for it in e["items"]:
            assert it["source"] == "probe" and it["advantage"] is None
            assert set(it["rewards"]) == {"accuracy", "format"}
            expected = it["rewards"]["accuracy"] + 0.2 * it["rewards"]["format"]
            assert abs(it["reward"] - expected) < 1e-6
    # The model changes under training, so (greedy) answers do too at some point.
    completions = {tuple(it["completion"] for it in e["items"]) for e in probes}
    assert len(completions) > 1


def test_grpo_probes_training_prompts_without_an_eval_set_and_none_when_off(
    toy_config, run_stage, events, tmp_path: Path, toy_dir: Path
) -> None:
    data = toy_config("grpo")
    data["trainer"].update(max_steps=2, per_device_train_batch_size=16)
    data.update(log_samples_every=1, probe_count=2, eval={"benchmark": ""})
    assert run_stage(data, tmp_path / "train-probes") == 0
    data["probe_count"] = 0
    assert run_stage(data, tmp_path / "no-probes") == 0

    probes = probe_events(events.read(tmp_path / "train-probes"))
    train = {json.loads(line)["problem"] for line in (toy_dir / "data" / "train.jsonl").open()}
    assert [e["step"] for e in probes] == [0, 1, 2]
    assert all(
        it["prompt"].removeprefix("<|user|>").removesuffix("<|end|><|assistant|>") in train
        for it in probes[0]["items"]
    )
    log = events.read(tmp_path / "no-probes")
    assert probe_events(log) == []
    assert [e["step"] for e in events.of(log, "samples")] == [1, 2]
