"""The code reward: HumanEval's canonical solutions pass, empty bodies fail, runaways stop."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from pipeline import rewards
from pipeline.rewards import sandbox
from pipeline.rewards.coding import as_test_list, extract_code

BENCHMARKS = Path(
    os.environ.get(
        "R1STUDIO_BENCHMARKS_DIR", Path(__file__).resolve().parents[3] / "shared" / "benchmarks"
    )
)


@pytest.fixture(scope="module")
def humaneval() -> list[dict]:
    path = BENCHMARKS / "humaneval.jsonl"
    if not path.exists():
        # Missing, it fails CI (which must grade every gold) and skips elsewhere.
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(
            f"benchmark file {path} not found (set R1STUDIO_BENCHMARKS_DIR)"
        )
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(autouse=True)
def real_sandbox():
    """These tests run in bubblewrap: missing, it fails CI and skips elsewhere."""
    reason = sandbox.unavailable_reason()
    if reason:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(reason)


def fenced(code: str) -> str:
    return f"<think>Plan the function.</think>\n<answer>\n```python\n{code}\n```\n</answer>"


def columns(problems: list[dict]) -> dict:
    return {
        "test": [p["test"] for p in problems],
        "entry_point": [p["entry_point"] for p in problems],
    }


def test_it_passes_every_humaneval_canonical_solution(humaneval):
    assert len(humaneval) == 164
    completions = [fenced(p["prompt"] + p["canonical_solution"]) for p in humaneval]
    scores = rewards.get("code")(None, completions, **columns(humaneval))
    failed = [p["task_id"] for p, s in zip(humaneval, scores, strict=True) if s != 1.0]
    assert failed == []


def test_it_fails_every_humaneval_empty_body(humaneval):
    completions = [fenced(p["prompt"] + "    pass\n") for p in humaneval]
    scores = rewards.get("code")(None, completions, **columns(humaneval))
    passed = [p["task_id"] for p, s in zip(humaneval, scores, strict=True) if s != 0.0]
    assert passed == []


def test_it_can_prepend_the_prompt_for_body_only_completions(humaneval):
    problems = humaneval[:4]
    code = rewards.get("code", prefix_column="prompt")
    completions = [f"<answer>{p['canonical_solution']}</answer>" for p in problems]
    cols = {**columns(problems), "prompt": [p["prompt"] for p in problems]}
    assert code(None, completions, **cols) == [1.0] * 4


def test_it_scores_the_fraction_of_assert_tests_passed():
    code = rewards.get("code", tests_column="tests")
    solution = fenced("def double(x):\n    return x * 2 if x < 3 else x")
    tests = ["assert double(1) == 2", "assert double(2) == 4", "assert double(5) == 10"]
    scores = code(None, [solution, "<answer>no code</answer>", "nothing"], tests=[tests] * 3)
    assert scores == [pytest.approx(2 / 3), 0.0, 0.0]
    assert code(None, [solution], tests=[json.dumps(tests)]) == [pytest.approx(2 / 3)]
    assert code(None, [solution], tests=[None]) == [None]


def test_it_stops_an_infinite_loop_and_scores_zero():
    code = rewards.get("code", timeout=1, tests_column="tests")
    looping = fenced("def f():\n    while True:\n        pass\n")
    sleeping = fenced("import time\ndef f():\n    time.sleep(1000)\n")
    at_import = fenced("while True:\n    pass\n")
    scores = code(None, [looping, sleeping, at_import], tests=[["f()"]] * 3)
    assert scores == [0.0, 0.0, 0.0]


def test_it_stops_unbounded_allocation_and_scores_zero():
    code = rewards.get("code", timeout=5, memory_mb=256, tests_column="tests")
    hog = fenced(
        "def f():\n    chunks = []\n    while True:\n        chunks.append(bytearray(10**7))\n"
    )
    assert code(None, [hog], tests=[["f()"]]) == [0.0]


@pytest.fixture
def listener():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    yield server
    server.close()


def _connect_code(port: int) -> str:
    return fenced(
        "import socket\n"
        "def f():\n"
        f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "    s.sendall(b'leak')\n"
    )


def assert_no_connection(server: socket.socket) -> None:
    with pytest.raises(TimeoutError):
        server.accept()


def test_it_blocks_the_network_and_scores_zero(listener):
    port = listener.getsockname()[1]
    code = rewards.get("code", timeout=5, tests_column="tests")
    raw = fenced(
        "import _socket\n"
        "def f():\n"
        "    s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)\n"
        f"    s.connect(('127.0.0.1', {port}))\n"
    )
    assert code(None, [_connect_code(port), raw], tests=[["f()"]] * 2) == [0.0, 0.0]
    assert_no_connection(listener)


def test_it_blocks_sockets_even_without_a_network_namespace(listener, monkeypatch):
    # The opt-in guard mode on a machine that forbids unshare: the in-process guard alone.
    monkeypatch.setenv("R1STUDIO_SANDBOX", "guard")
    monkeypatch.setattr(sandbox, "network_namespace_prefix", lambda: ())
    result = sandbox.run_tests(
        "import socket\n", [f"socket.create_connection(('127.0.0.1', {listener.getsockname()[1]}))"]
    )
    assert (result.passed, result.total) == (0, 1)
    assert "PermissionError" in result.detail
    assert_no_connection(listener)
    spawn = sandbox.run_tests("import os\n", ["os.system('true')"])
    assert spawn.passed == 0


def test_it_keeps_going_after_one_test_loops():
    result = sandbox.run_tests(
        "def f(x):\n    return x\n",
        ["assert f(1) == 1", "while True: pass", "assert f(2) == 2"],
        timeout=10,
        per_test_timeout=1,
    )
    assert (result.passed, result.total) == (2, 3)


def test_it_runs_in_a_temporary_directory_that_is_removed(tmp_path):
    marker = tmp_path / "outside.txt"
    result = sandbox.run_tests(
        "import os\nhere = os.getcwd()\nopen('scratch.txt', 'w').write('x')\n",
        [f"assert here != {str(Path.cwd())!r}", "assert os.path.exists('scratch.txt')"],
    )
    assert (result.passed, result.total) == (2, 2)
    assert not marker.exists()
    assert not (Path.cwd() / "scratch.txt").exists()


def test_it_extracts_the_code_to_run():
    two_blocks = "<answer>```text\nnot code\n```\n```python\nx = 2\n```</answer>"
    assert extract_code(two_blocks) == "x = 2\n"
    assert extract_code("<answer>x = 3</answer>") == "x = 3\n"
    assert extract_code("<think>t</think> ```py\ny = 1\n``` trailing") == "y = 1\n"
    assert extract_code(None) is None
    assert as_test_list("", "f") is None
    assert as_test_list("assert True", None) == ["assert True"]
