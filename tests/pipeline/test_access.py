"""What a config may reach: local paths inside the allowed roots only, judges the admin allowed.

The security probe's cases: an evaluate run reading any JSON file as a "benchmark", a data source
or model path anywhere on the worker, a judge sending any variable of the worker to any URL,
a judge cache written anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import access
from pipeline.checks import validate_config
from pipeline.config import parse_config


@pytest.fixture
def roots(tmp_path: Path) -> access.Roots:
    """The web process's roots: a data dir (with a dataset and a secret beside it)."""
    data = tmp_path / "data"
    (data / "datasets").mkdir(parents=True)
    (data / "datasets" / "prompts.jsonl").write_text('{"problem": "1+1", "answer": "2"}\n')
    (tmp_path / "secret.jsonl").write_text('{"password": "hunter2"}\n')
    return access.allowed_roots(data_dir=data, extra=[])


def errors_of(config: dict, roots: access.Roots) -> list[dict]:
    return validate_config(config, roots)


def evaluate(path: str, **spec) -> dict:
    bench = {"name": "leak", "path": path, "problem_column": "password", **spec}
    return {"kind": "evaluate", "model": {"path": "org/model"}, "benchmarks": [bench]}


def sft(source: str, model: str = "org/model") -> dict:
    return {"kind": "sft", "model": {"path": model}, "data": {"source": source}}


def test_it_refuses_a_benchmark_file_outside_the_roots(roots, tmp_path):
    for path in ("/etc/passwd", str(tmp_path / "secret.jsonl")):
        errors = errors_of(evaluate(path), roots)
        assert [e["loc"] for e in errors] == ["benchmarks.0.path"]
        assert "outside the folders runs may read" in errors[0]["msg"]


def test_it_refuses_data_sources_and_models_outside_the_roots(roots, tmp_path):
    assert [e["loc"] for e in errors_of(sft("/etc/passwd"), roots)] == ["data.source"]
    assert [e["loc"] for e in errors_of(sft("org/data", model="/etc"), roots)] == ["model.path"]
    grpo = {
        "kind": "grpo",
        "model": {"path": "org/model"},
        "data": {"source": "gsm8k"},
        "eval": {"benchmark": "/etc/passwd"},
    }
    assert [e["loc"] for e in errors_of(grpo, roots)] == ["eval.benchmark"]
    generate = {
        "kind": "generate",
        "model": {"path": "org/model"},
        "data": {"source": "gsm8k"},
        "filters": {"decontaminate": ["math500", "/etc/hosts"]},
    }
    assert [e["loc"] for e in errors_of(generate, roots)] == ["filters.decontaminate.1"]


def test_it_follows_dotdot_and_symlinks_before_deciding(roots, tmp_path):
    data = tmp_path / "data"
    (data / "link.jsonl").symlink_to(tmp_path / "secret.jsonl")
    for sneaky in (str(data / ".." / "secret.jsonl"), str(data / "link.jsonl")):
        assert [e["loc"] for e in errors_of(sft(sneaky), roots)] == ["data.source"]


def test_it_never_says_whether_a_refused_path_exists(roots):
    there, missing = errors_of(sft("/etc/passwd"), roots), errors_of(sft("/etc/nope.jsonl"), roots)
    assert "outside" in there[0]["msg"] and "outside" in missing[0]["msg"]


def test_it_allows_the_data_dir_the_runs_root_presets_and_hub_ids(roots, tmp_path):
    data = tmp_path / "data"
    config = parse_config(sft(str(data / "datasets" / "prompts.jsonl")))
    assert access.access_errors(config, roots) == []
    for source in ("gsm8k", "openai/gsm8k", "${runs}/06-sft/dataset"):
        assert access.access_errors(parse_config(sft(source)), roots) == []
    escape = parse_config(sft("${runs}/../../secret.jsonl"))
    assert [e["loc"] for e in access.access_errors(escape, roots)] == ["data.source"]


def test_it_allows_the_admins_extra_roots_and_the_benchmarks_folder(tmp_path, monkeypatch):
    shared = tmp_path / "shared-models"
    shared.mkdir()
    roots = access.allowed_roots(data_dir=tmp_path / "data", extra=[shared])
    assert roots.allows(shared / "qwen") and not roots.allows(tmp_path / "elsewhere")
    bench = tmp_path / "bench"
    monkeypatch.setenv("R1STUDIO_BENCHMARKS_DIR", str(bench))
    assert access.allowed_roots(data_dir=tmp_path / "data", extra=[]).allows(bench / "x.jsonl")


def test_it_reads_the_roots_from_the_environment_the_supervisor_sets(tmp_path, monkeypatch):
    monkeypatch.delenv("R1STUDIO_DATA_DIR", raising=False)
    monkeypatch.delenv("R1STUDIO_ALLOWED_ROOTS", raising=False)
    assert access.allowed_roots() is None  # the CLI by hand: the user's own files
    env = access.roots_env(data_dir=tmp_path / "data", extra=[tmp_path / "models"])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    roots = access.allowed_roots()
    assert roots.allows(tmp_path / "data" / "x") and roots.allows(tmp_path / "models" / "m")
    assert not roots.allows(tmp_path / "secret.jsonl")
    # validate_config without roots reads them from the environment, as the pipeline run does
    assert [e["loc"] for e in validate_config(evaluate("/etc/passwd"))] == ["benchmarks.0.path"]


def grpo_with_judge(**params) -> dict:
    return {
        "kind": "grpo",
        "model": {"path": "org/model"},
        "data": {"source": "gsm8k"},
        "rewards": [{"name": "accuracy"}, {"name": "judge", "params": params}],
    }


def test_it_refuses_judge_endpoints_keys_and_caches_the_admin_did_not_allow(roots, monkeypatch):
    monkeypatch.delenv("R1STUDIO_JUDGE_URLS", raising=False)
    monkeypatch.delenv("R1STUDIO_JUDGE_KEY_ENVS", raising=False)
    probe = grpo_with_judge(url="http://attacker.example/v1", api_key_env="REDIS_URL")
    errors = errors_of(probe, roots)
    assert [e["loc"] for e in errors] == ["rewards.1.params.url", "rewards.1.params.api_key_env"]
    assert "remote judges are off" in errors[0]["msg"]

    monkeypatch.setenv("R1STUDIO_JUDGE_URLS", "http://judge.internal:8000/v1")
    monkeypatch.setenv("R1STUDIO_JUDGE_KEY_ENVS", "JUDGE_API_KEY")
    assert [e["loc"] for e in errors_of(probe, roots)] == [
        "rewards.1.params.url",
        "rewards.1.params.api_key_env",
    ]
    allowed = grpo_with_judge(url="http://judge.internal:8000/v1", api_key_env="JUDGE_API_KEY")
    assert access.access_errors(parse_config(allowed), roots) == []

    for cache in ("/tmp/anywhere", "../../elsewhere"):
        bad = grpo_with_judge(url="http://judge.internal:8000/v1", cache_dir=cache)
        assert [e["loc"] for e in errors_of(bad, roots)] == ["rewards.1.params.cache_dir"]
    local = grpo_with_judge(model="/etc")
    assert [e["loc"] for e in errors_of(local, roots)] == ["rewards.1.params.model"]


def test_it_refuses_judges_among_the_verifiers_too(roots, monkeypatch):
    monkeypatch.delenv("R1STUDIO_JUDGE_URLS", raising=False)
    config = {
        "kind": "generate",
        "model": {"path": "org/model"},
        "data": {"source": "gsm8k"},
        "verifiers": [{"name": "judge", "params": {"url": "http://attacker.example"}}],
    }
    assert [e["loc"] for e in errors_of(config, roots)] == ["verifiers.0.params.url"]


def test_it_keeps_run_dir_out_of_the_params_a_config_may_set(roots):
    config = grpo_with_judge(model="org/judge", run_dir="/etc")
    assert [e["loc"] for e in errors_of(config, roots)] == ["rewards.1.params"]


def test_the_pipeline_process_refuses_what_the_studio_refuses(cli, tmp_path, monkeypatch):
    config = tmp_path / "leak.json"
    config.write_text(json.dumps(evaluate("/etc/passwd")))
    for name, value in access.roots_env(data_dir=tmp_path / "data", extra=[]).items():
        monkeypatch.setenv(name, value)  # what the supervisor sets
    result = cli("validate", str(config))
    assert result.returncode != 0 and "benchmarks.0.path" in result.stdout + result.stderr


def test_it_refuses_remote_model_code_and_unlisted_vllm_servers(roots, monkeypatch):
    monkeypatch.delenv("R1STUDIO_ALLOW_REMOTE_CODE", raising=False)
    monkeypatch.delenv("R1STUDIO_VLLM_URLS", raising=False)
    config = {
        "kind": "grpo",
        "model": {"path": "org/model", "trust_remote_code": True},
        "data": {"source": "gsm8k"},
        "trainer": {"use_vllm": False, "vllm_server_base_url": "http://attacker.example:8000"},
    }
    errors = access.access_errors(parse_config(config), roots)
    assert [e["loc"] for e in errors] == ["model.trust_remote_code", "trainer.vllm_server_base_url"]

    monkeypatch.setenv("R1STUDIO_ALLOW_REMOTE_CODE", "1")
    monkeypatch.setenv("R1STUDIO_VLLM_URLS", "http://vllm.internal:8000")
    assert [e["loc"] for e in access.access_errors(parse_config(config), roots)] == [
        "trainer.vllm_server_base_url"
    ]
    config["trainer"]["vllm_server_base_url"] = "http://vllm.internal:8000"
    assert access.access_errors(parse_config(config), roots) == []
