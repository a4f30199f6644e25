"""``python -m pipeline``: validate, run, graceful SIGTERM, rewards."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

import pipeline

REPO = Path(pipeline.__file__).resolve().parents[1]


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def broken_configs(toy_config, tmp_path: Path) -> dict[str, tuple[dict, str]]:
    """Configs with one mistake each, and the field the error must name."""
    wrong_field = toy_config("grpo")
    wrong_field["trainer"]["num_generation"] = 4
    missing_model = toy_config("sft")
    missing_model["model"]["path"] = str(tmp_path / "models" / "nope")
    unknown_reward = toy_config("grpo")
    unknown_reward["rewards"].append({"name": "helpfulness"})
    not_divisible = toy_config("grpo")
    not_divisible["trainer"]["per_device_train_batch_size"] = 12
    prefill = toy_config("grpo")
    prefill["data"]["prefill_think"] = True
    return {
        "wrong_field": (wrong_field, "trainer.num_generation"),
        "missing_model": (missing_model, "model.path"),
        "unknown_reward": (unknown_reward, "rewards.2.name"),
        "not_divisible": (not_divisible, "trainer.num_generations"),
        "prefill_vs_format": (prefill, "data.prefill_think"),
    }


def test_validate_names_the_bad_field_exits_2_and_writes_nothing(toy_config, cli, tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    for name, (data, loc) in broken_configs(toy_config, tmp_path).items():
        path = write(configs / f"{name}.yaml", data)
        before = sorted(tmp_path.rglob("*"))
        result = cli("validate", str(path))
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        assert result.stdout.startswith(f"{loc}: "), (name, result.stdout)
        assert sorted(tmp_path.rglob("*")) == before, name


def test_validate_accepts_a_good_config(toy_dir: Path, cli) -> None:
    result = cli("validate", str(toy_dir / "configs" / "grpo.yaml"))
    assert result.returncode == 0, result.stdout
    assert "ok" in result.stdout


def test_run_refuses_an_invalid_config_before_starting(toy_config, cli, tmp_path) -> None:
    data = toy_config("grpo")
    data["rewards"] = [{"name": "helpfulness"}]
    result = cli("run", str(write(tmp_path / "bad.yaml", data)), "--run-dir", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "rewards.0.name" in result.stderr
    assert not (tmp_path / "r").exists()


def test_run_logs_its_progress_to_stdout_and_a_failure_to_stderr(toy_config, cli, tmp_path):
    """What the run page's logs panel tails: the stage's own lines, not only the command."""
    data = toy_config("sft")
    data["trainer"].update(max_steps=3, logging_steps=1)
    ok = cli("run", str(write(tmp_path / "ok.yaml", data)), "--run-dir", str(tmp_path / "ok"))
    (tmp_path / "empty.jsonl").write_text("")
    data["data"]["source"] = str(tmp_path / "empty.jsonl")
    bad = cli("run", str(write(tmp_path / "bad.yaml", data)), "--run-dir", str(tmp_path / "bad"))

    assert ok.returncode == 0, ok.stderr
    for line in ("started: sft stage", "running (3 steps)", "step 1: loss=", "finished"):
        assert line in ok.stdout, ok.stdout
    assert "ERROR" not in ok.stderr
    assert bad.returncode == 1
    assert "ERROR pipeline.events: failed: data.source:" in bad.stderr
    assert "has no training examples" in bad.stderr and "failed" not in bad.stdout


def test_sigterm_saves_a_checkpoint_and_reports_cancelled(toy_config, events, tmp_path) -> None:
    data = toy_config("grpo")
    data["trainer"]["max_steps"] = 5000
    data["output"]["save_steps"] = 5000
    data["eval"]["benchmark"] = ""
    config = write(tmp_path / "long.yaml", data)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(config), "--run-dir", str(run_dir)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not events.of(events.read(run_dir), "metrics"):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 143
    log = events.read(run_dir)
    assert events.statuses(log)[-1] == "cancelled"
    [checkpoint] = events.of(log, "checkpoint")
    assert 0 < checkpoint["step"] < 5000
    assert Path(checkpoint["path"]).is_dir()
    assert not (run_dir / "final").exists()
    assert (run_dir / "config.json").exists()


def test_rewards_lists_every_registered_reward(cli) -> None:
    from pipeline import rewards

    result = cli("rewards")
    assert result.returncode == 0
    for name in rewards.names():
        assert f"\n{name}\n" in f"\n{result.stdout}"


def test_help_lists_the_commands(cli) -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("run", "validate", "toy", "rewards"):
        assert command in result.stdout
