"""The judge reward against a real local HTTP server and a real (tiny, local) transformers model,
and what an admin allows it: endpoints, API-key variables, a cache inside the run folder."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline import rewards
from pipeline.rewards.judge import parse_score


class JudgeServer:
    """An OpenAI-compatible /v1/chat/completions stub on 127.0.0.1 that records requests."""

    def __init__(self, reply):
        self.reply = reply  # str, or callable(prompt) -> str
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                prompt = body["messages"][-1]["content"]
                if "FAIL" in prompt:
                    self.send_response(500)
                    self.end_headers()
                    return
                content = outer.reply(prompt) if callable(outer.reply) else outer.reply
                payload = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": content}}]}
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def allow(self, monkeypatch, *key_envs: str) -> JudgeServer:
        """Allow-list this server (and these API-key variables), as an admin would."""
        monkeypatch.setenv("R1STUDIO_JUDGE_URLS", self.url)
        monkeypatch.setenv("R1STUDIO_JUDGE_KEY_ENVS", ",".join(key_envs))
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def grade_by_length(prompt: str) -> str:
    reply = prompt.split("Assistant's reply:\n", 1)[1].split("\n\n", 1)[0]
    return f"Reasonable. Score: {min(len(reply), 10)}/10"


@pytest.mark.parametrize(
    "reply,score",
    [
        ("Good work.\nScore: 7/10", 0.7),
        ("On a scale of 1/10 ... Score: 9/10", 0.9),
        ("I'd give it 3 out of 5", 0.6),
        ("score = 4", 0.4),
        ("8", 0.8),
        (" 10. ", 1.0),
        ("Score: 12/10", None),
        ("no verdict here", None),
        ("", None),
        (None, None),
    ],
)
def test_it_parses_and_normalises_judge_scores(reply, score):
    assert parse_score(reply) == (pytest.approx(score) if score is not None else None)


def test_it_scores_completions_through_an_openai_compatible_endpoint(monkeypatch):
    monkeypatch.setenv("R1_TEST_JUDGE_KEY", "sk-local")
    with JudgeServer(grade_by_length) as server:
        server.allow(monkeypatch, "R1_TEST_JUDGE_KEY")
        judge = rewards.get(
            "judge", url=server.url, model_name="tiny", api_key_env="R1_TEST_JUDGE_KEY"
        )
        scores = judge(
            prompts=[[{"role": "system", "content": "sys"}, {"role": "user", "content": "Say hi"}]]
            * 2,
            completions=["hey", [{"role": "assistant", "content": "hello there"}]],
            answer=["hi", "hi"],
            trainer_state=None,
            completion_ids=[[1], [2]],
        )
    assert scores == [pytest.approx(0.3), pytest.approx(1.0)]
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "tiny"
    assert request["auth"] == "Bearer sk-local"
    prompt = request["body"]["messages"][0]["content"]
    assert "Say hi" in prompt and "sys" not in prompt.split("Reference")[0]


def test_it_judges_the_same_completion_once_in_memory_and_on_disk(tmp_path, monkeypatch):
    with JudgeServer("Score: 6/10") as server:
        server.allow(monkeypatch)
        judge = rewards.get("judge", url=server.url, run_dir=tmp_path, cache_dir="cache")
        first = judge(["q"] * 3, ["same", "same", "other"], answer=["r"] * 3)
        again = judge(["q"], ["same"], answer=["r"])
        assert len(server.requests) == 2  # "same" and "other"
        fresh = rewards.get("judge", url=server.url, run_dir=tmp_path, cache_dir="cache")
        assert fresh(["q"], ["other"], answer=["r"]) == [pytest.approx(0.6)]
        assert len(server.requests) == 2  # read back from disk
    assert first == [pytest.approx(0.6)] * 3 and again == [pytest.approx(0.6)]
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2


def test_it_caches_in_the_run_folder_by_default(tmp_path, monkeypatch):
    with JudgeServer("Score: 6/10") as server:
        server.allow(monkeypatch)
        rewards.get("judge", url=server.url, run_dir=tmp_path)(["q"], ["x"], answer=["r"])
    assert len(list((tmp_path / "judge-cache").glob("*.json"))) == 1


def test_it_keeps_the_cache_inside_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("R1STUDIO_JUDGE_URLS", "http://127.0.0.1:1/v1")
    url = "http://127.0.0.1:1/v1"
    for outside in (str(tmp_path / "elsewhere"), "../elsewhere", "~/cache"):
        with pytest.raises(rewards.RewardError, match="cache_dir"):
            rewards.get("judge", url=url, run_dir=tmp_path / "run", cache_dir=outside)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "link").symlink_to(tmp_path)
    with pytest.raises(rewards.RewardError, match="out of the run folder"):
        rewards.get("judge", url=url, run_dir=tmp_path / "run", cache_dir="link/x")
    assert not (tmp_path / "x").exists()


def test_it_refuses_endpoints_and_key_variables_the_admin_did_not_allow(monkeypatch):
    monkeypatch.delenv("R1STUDIO_JUDGE_URLS", raising=False)
    monkeypatch.delenv("R1STUDIO_JUDGE_KEY_ENVS", raising=False)
    with pytest.raises(rewards.RewardError, match="remote judges are off"):
        rewards.get("judge", url="http://127.0.0.1:1/v1")

    monkeypatch.setenv("R1STUDIO_JUDGE_URLS", "http://judge.internal:8000/v1, https://api.x.ai")
    assert rewards.get("judge", url="http://judge.internal:8000/v1")
    assert rewards.get("judge", url="https://api.x.ai/v1")
    for url in (
        "http://evil.example/v1",
        "http://judge.internal:8000@evil.example/v1",
        "http://judge.internal:8001/v1",
        "https://judge.internal:8000/v1",
        "http://judge.internal:8000/v1/../../admin",
        "http://judge.internal:8000/v10",
        "file:///etc/passwd",
    ):
        with pytest.raises(rewards.RewardError, match="not an allowed judge endpoint"):
            rewards.get("judge", url=url)

    # Any variable of the worker as the "API key", sent to an allowed endpoint: refused.
    url = "http://judge.internal:8000/v1"
    with pytest.raises(rewards.RewardError, match="REDIS_URL"):
        rewards.get("judge", url=url, api_key_env="REDIS_URL")
    monkeypatch.setenv("R1STUDIO_JUDGE_KEY_ENVS", "JUDGE_API_KEY")
    assert rewards.get("judge", url=url, api_key_env="JUDGE_API_KEY")
    with pytest.raises(rewards.RewardError, match="not a variable judges may use"):
        rewards.get("judge", url=url, api_key_env="SECRET_KEY")


def test_it_sends_no_api_key_unless_one_is_named(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-judges")
    with JudgeServer("Score: 5/10") as server:
        server.allow(monkeypatch)
        rewards.get("judge", url=server.url)(["q"], ["x"])
    assert server.requests[0]["auth"] is None


def test_it_scores_none_for_unparsable_verdicts_and_failed_calls(monkeypatch):
    with JudgeServer("I cannot decide.") as server:
        server.allow(monkeypatch)
        judge = rewards.get("judge", url=server.url)
        assert judge(["q", "q"], ["fine", "FAIL please"], answer=["r", "r"]) == [None, None]
    monkeypatch.setenv("R1STUDIO_JUDGE_URLS", "http://127.0.0.1:9")
    dead = rewards.get("judge", url="http://127.0.0.1:9/v1", timeout=2)  # nothing listens there
    assert dead(["q"], ["x"]) == [None]


def test_it_fills_template_fields_without_tripping_on_braces(monkeypatch):
    with JudgeServer(
        lambda prompt: "Score: 10/10" if "{x}" in prompt and "REF" in prompt else "0"
    ) as server:
        server.allow(monkeypatch)
        judge = rewards.get(
            "judge", url=server.url, template="Q={prompt} A={completion} R={reference}"
        )
        assert judge(["q"], ["def f(): return {x}"], answer=["REF"]) == [1.0]


def test_it_needs_exactly_one_of_model_and_url(monkeypatch):
    monkeypatch.setenv("R1STUDIO_JUDGE_URLS", "http://127.0.0.1:1")
    with pytest.raises(rewards.RewardError):
        rewards.get("judge")
    with pytest.raises(rewards.RewardError):
        rewards.get("judge", model="/m", url="http://127.0.0.1:1/v1")
    with pytest.raises(rewards.RewardError, match="completion"):
        rewards.get("judge", url="http://127.0.0.1:1/v1", template="no slot")


def test_it_runs_a_local_transformers_model(tmp_path):
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    # Token 0 is "7" and the output head is all zeros, so greedy decoding always says "7".
    vocab = {"7": 0, "[UNK]": 1, "[PAD]": 2, "[EOS]": 3, "good": 4, "reply": 5}
    backend = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    )
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=2,
        eos_token_id=3,
        bos_token_id=3,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight.zero_()
    model.save_pretrained(tmp_path / "judge")
    tokenizer.save_pretrained(tmp_path / "judge")

    judge = rewards.get("judge", model=str(tmp_path / "judge"), max_new_tokens=1)
    assert judge(["q", "q"], ["good reply", "another"], answer=["a", "a"]) == [
        pytest.approx(0.7),
        pytest.approx(0.7),
    ]
