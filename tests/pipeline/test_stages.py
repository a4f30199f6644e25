"""Each stage kind runs for real on the toy models and reports what the studio reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

TRL_GRPO_METRICS = {
    "reward",
    "reward_std",
    "rewards/accuracy/mean",
    "rewards/format/mean",
    "completions/mean_length",
    "entropy",
    "loss",
    "learning_rate",
    "grad_norm",
}


def test_grpo_reports_trl_metrics_samples_checkpoints_and_status(grpo_run: Path, events) -> None:
    log = events.read(grpo_run)
    states = events.statuses(log)
    assert states[0] == "started" and "running" in states and states[-1] == "finished"
    running = next(e for e in events.of(log, "status") if e["state"] == "running")
    assert running["total_steps"] == 30

    assert events.metric_names(log) >= TRL_GRPO_METRICS
    assert "think_first" in events.metric_names(log)  # ours, logged through TRL's log_metric

    samples = events.of(log, "samples")
    assert samples and all(e["step"] % 3 == 0 for e in samples)
    item = samples[-1]["items"][0]
    assert set(item) == {"prompt", "completion", "reference", "rewards", "reward", "advantage"}
    assert set(item["rewards"]) == {"accuracy", "format"}
    assert item["prompt"].startswith("<|user|>What is ")
    # The reported total is TRL's weighted sum (accuracy 1.0, format 0.2).
    for it in samples[-1]["items"]:
        assert (
            abs(it["reward"] - (it["rewards"]["accuracy"] + 0.2 * it["rewards"]["format"])) < 1e-6
        )
    # Advantages are normalised within each group of 8 completions of one prompt.
    group = samples[-1]["items"][:8]
    assert len({it["prompt"] for it in group}) == 1
    assert abs(sum(it["advantage"] for it in group)) < 1e-3

    checkpoints = events.of(log, "checkpoint")
    assert [e["step"] for e in checkpoints] == [15, 30]
    assert all(Path(e["path"]).is_dir() for e in checkpoints)
    assert (grpo_run / "final" / "model.safetensors").exists()
    assert (grpo_run / "final" / "tokenizer.json").exists()

    evals = events.of(log, "eval")
    assert [e["step"] for e in evals] == [15, 30]
    assert {"pass@1", "think_first"} <= set(evals[-1]["metrics"])
    assert len(evals[-1]["items"]) == 64
    # RL's periodic eval is greedy: one sample per problem, said so, and each problem's result
    assert evals[-1]["decoding"]["temperature"] == 0.0 and evals[-1]["n_samples"] == 1
    assert "pass@1_se" in evals[-1]["metrics"] and len(evals[-1]["problems"]) == 64
    # The held-out file goes by the short name the evaluate stage gives it, never its path.
    assert {e["benchmark"] for e in evals} == {"toy-heldout"}
    assert "eval/toy-heldout/pass@1" in events.metric_names(log)
    assert not any(n.startswith("eval/") and n.count("/") != 2 for n in events.metric_names(log))

    progress = events.of(log, "progress")
    assert progress[-1]["step"] == progress[-1]["total_steps"] == 30


def test_sft_reports_loss_and_saves_checkpoints_and_the_final_model(sft_run: Path, events) -> None:
    log = events.read(sft_run)
    assert events.statuses(log) == ["started", "running", "finished"]
    assert {"loss", "entropy", "mean_token_accuracy", "learning_rate"} <= events.metric_names(log)
    assert [e["step"] for e in events.of(log, "checkpoint")] == [10, 20]
    assert (sft_run / "final" / "config.json").exists()


def test_sft_on_an_empty_dataset_fails_with_a_clear_message(
    toy_config, run_stage, events, tmp_path
):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    data = toy_config("sft")
    data["data"]["source"] = str(empty)
    assert run_stage(data, tmp_path / "run") == 1
    last = events.of(events.read(tmp_path / "run"), "status")[-1]
    assert last["state"] == "failed"
    assert "no training examples" in last["message"]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_failing_stage_reports_the_traceback(toy_config, run_stage, events, tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "1+1?"}\n')
    data = toy_config("grpo")
    data["data"]["source"] = str(bad)
    assert run_stage(data, tmp_path / "run") == 1
    last = events.of(events.read(tmp_path / "run"), "status")[-1]
    assert last["state"] == "failed"
    assert "problem_column" in last["message"]


def test_generate_writes_a_graded_filtered_messages_dataset(
    toy_config, run_stage, events, tmp_path
):
    # Mix held-out problems into the prompts: decontamination must drop them before sampling.
    toy = Path(toy_config("generate")["data"]["source"]).parent
    train = (toy / "train.jsonl").read_text().splitlines()[:40]
    leaked = (toy / "heldout.jsonl").read_text().splitlines()[:5]
    source = tmp_path / "prompts.jsonl"
    source.write_text("\n".join(train + leaked) + "\n")
    data = toy_config("generate")
    data["data"] = {"source": str(source)}
    data["filters"]["max_per_prompt"] = 2

    run_dir = tmp_path / "run"
    assert run_stage(data, run_dir) == 0
    log = events.read(run_dir)
    assert events.statuses(log) == ["started", "running", "finished"]
    [metrics] = events.of(log, "metrics")
    counts = metrics["values"]
    assert counts["prompts"] == 45 and counts["dropped/decontaminate"] == 5
    assert counts["samples"] == 40 * 4
    assert counts["kept"] == counts["samples"] - sum(
        v for k, v in counts.items() if k.startswith("dropped/") and k != "dropped/decontaminate"
    )
    [dataset] = events.of(log, "dataset")
    assert dataset["rows"] == counts["kept"] > 0 and dataset["kind"] == "messages"

    rows = [json.loads(line) for line in (run_dir / "dataset" / "data.jsonl").open()]
    assert len(rows) == pq.read_table(run_dir / "dataset" / "data.parquet").num_rows == len(rows)
    heldout = {json.loads(line)["problem"] for line in leaked}
    per_prompt: dict[str, int] = {}
    for row in rows:
        user, assistant = row["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert row["problem"] == user["content"] and row["problem"] not in heldout
        assert f"<answer>{row['answer']}</answer>" in assistant["content"]  # kept: correct
        assert json.loads(row["scores"]) == {"accuracy": 1.0, "format": 1.0}
        assert row["source_model"].endswith("models/base")
        per_prompt[row["problem"]] = per_prompt.get(row["problem"], 0) + 1
    assert max(per_prompt.values()) <= 2
    # Exact duplicates of one prompt's completions are gone.
    texts = [(r["problem"], r["messages"][1]["content"]) for r in rows]
    assert len(texts) == len(set(texts))


def test_generate_resumes_by_sampling_only_the_missing_prompts(
    toy_config, run_stage, events, tmp_path
) -> None:
    data = toy_config("generate")
    data["data"]["limit"] = 12
    data["sampling"]["batch_size"] = 16  # 4 prompts x k=4 per batch
    run_dir = tmp_path / "run"
    # A first run that sampled 8 of the 12 prompts before it was stopped.
    run_dir.mkdir()
    with (run_dir / "samples.jsonl").open("w") as fh:
        for i in range(8):
            fh.write(json.dumps({"index": i, "completions": ["<answer>0</answer>"] * 4}) + "\n")
    assert run_stage(data, run_dir, resume=True) == 0
    log = events.read(run_dir)
    assert [e["step"] for e in events.of(log, "progress")] == [12]
    assert any("8 prompts already sampled" in e["message"] for e in events.of(log, "log"))
    assert len((run_dir / "samples.jsonl").read_text().splitlines()) == 12


def test_evaluate_reports_pass_at_1_cons_at_k_and_per_problem_items(
    toy_config, run_stage, events, tmp_path
) -> None:
    data = toy_config("evaluate")
    data["limit"] = 16
    run_dir = tmp_path / "run"
    assert run_stage(data, run_dir) == 0
    log = events.read(run_dir)
    assert events.statuses(log) == ["started", "running", "finished"]
    [evaluation] = events.of(log, "eval")
    assert evaluation["benchmark"] == "toy-heldout" and evaluation["n_samples"] == 4
    metrics = evaluation["metrics"]
    assert {"pass@1", "cons@4", "think_first", "well_formed"} <= set(metrics)
    assert len(evaluation["items"]) == 16
    item = evaluation["items"][0]
    assert len(item["completions"]) == len(item["correct"]) == 4
    assert item["pass@1"] == sum(item["correct"]) / 4
    assert metrics["pass@1"] == sum(i["pass@1"] for i in evaluation["items"]) / 16
    # pass@1's standard error and bootstrap interval, the decoding used, every problem's result
    rates = [i["pass@1"] for i in evaluation["items"]]
    mean = sum(rates) / 16
    se = (sum((r - mean) ** 2 for r in rates) / 15 / 16) ** 0.5
    assert abs(metrics["pass@1_se"] - se) < 1e-9
    assert metrics["pass@1_ci_low"] <= metrics["pass@1"] <= metrics["pass@1_ci_high"]
    assert evaluation["decoding"] == {
        "temperature": 0.6,
        "top_p": 0.95,
        "n_samples": 4,
        "max_new_tokens": 32,
    }
    problems = evaluation["problems"]
    assert len(problems) == 16 and len({p["id"] for p in problems}) == 16
    assert [p["n_correct"] for p in problems] == [sum(i["correct"]) for i in evaluation["items"]]
    assert {p["n"] for p in problems} == {4}
    assert sum(p["correct"] for p in problems) / 16 == metrics["cons@4"]
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    assert results["toy-heldout"] == metrics
    saved = json.loads((run_dir / "eval" / "toy-heldout.json").read_text())
    assert len(saved["items"]) == 16


def test_sft_resumes_from_its_last_checkpoint(toy_config, run_stage, events, tmp_path) -> None:
    data = toy_config("sft")
    data["trainer"].update(max_steps=6, logging_steps=1)
    data["output"]["save_steps"] = 3
    run_dir = tmp_path / "run"
    assert run_stage(data, run_dir) == 0
    first = len(events.read(run_dir))
    assert (run_dir / "checkpoints" / "checkpoint-6").is_dir()

    data["trainer"]["max_steps"] = 9
    assert run_stage(data, run_dir, resume=True) == 0
    log = events.read(run_dir)[first:]
    assert any(e["message"].endswith("checkpoint-6") for e in events.of(log, "log"))
    steps = [e["step"] for e in events.of(log, "metrics") if "loss" in e["values"]]
    assert steps == [7, 8, 9]
    assert [e["step"] for e in events.of(log, "checkpoint")] == [9]

    # Stopped after its last checkpoint but before it ended: a resume trains nothing more
    # (transformers' Trainer would train a step 10 of 9) and still saves the final model.
    shutil.rmtree(run_dir / "final")
    done = len(events.read(run_dir))
    assert run_stage(data, run_dir, resume=True) == 0
    log = events.read(run_dir)[done:]
    assert not [e for e in events.of(log, "metrics") if "loss" in e["values"]]
    assert max(e["step"] for e in log if "step" in e) == 9
    assert any("nothing left to train" in e["message"] for e in events.of(log, "log"))
    # ... the weights of that checkpoint, not the model it was built from.
    from safetensors.numpy import load_file

    final = load_file(run_dir / "final" / "model.safetensors")
    trained = load_file(run_dir / "checkpoints" / "checkpoint-9" / "model.safetensors")
    assert final.keys() == trained.keys()
    assert all(np.array_equal(final[k], trained[k]) for k in final)
