"""The code reward: run the answer's code against the sample's tests, score the fraction passed.

Tests come from a dataset column in one of two shapes:

- HumanEval style: a source string defining ``check(candidate)`` plus an ``entry_point`` column;
  ``check(<entry_point>)`` is one test, so the score is 1.0 or 0.0;
- a list of test sources (usually one ``assert`` each), or a JSON string of such a list; the
  score is the fraction that pass.

Execution happens in :mod:`pipeline.rewards.sandbox` (bubblewrap: no network, no view of the
studio's files or environment, a private temp dir, CPU/memory/process/wall limits); read its
docstring for what that does and does not protect against. Without a working sandbox the
scores are ``None`` and the reason is logged.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from pipeline.template import ANSWER_CLOSE, ANSWER_OPEN, completion_text, parse_completion

from ._registry import RewardFunc, logger, register, row_columns
from .sandbox import SandboxUnavailable, run_many

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)```", re.DOTALL)
_PYTHON_TAGS = {"python", "py", "python3", "py3"}


def extract_code(completion: Any) -> str | None:
    """The code to run: the last fenced block of the ``<answer>`` (a Python one if any), else the
    answer text itself; without an answer block, the last fenced block of the whole completion.

    >>> extract_code("<think>plan</think><answer>```python\\nx = 1\\n```</answer>")
    'x = 1\\n'
    >>> extract_code("no code here") is None
    True
    """
    text = completion_text(completion)
    answer = _raw_answer(text)
    blocks = _FENCE.findall(answer if answer is not None else text)
    if blocks:
        python = [code for lang, code in blocks if lang.lower() in _PYTHON_TAGS]
        return (python or [code for _, code in blocks])[-1]
    if answer is not None and answer.strip():
        # Keep the first line's indentation: a body-only answer is indented.
        lines = answer.rstrip().splitlines()
        while lines and not lines[0].strip():
            lines.pop(0)
        return "\n".join(lines) + "\n"
    return None


def _raw_answer(text: str) -> str | None:
    # parse_completion strips the answer; code needs its indentation kept.
    if parse_completion(text).answer is None:
        return None
    end = text.rfind(ANSWER_CLOSE)
    return text[text.rfind(ANSWER_OPEN, 0, end) + len(ANSWER_OPEN) : end]


def as_test_list(tests: Any, entry_point: Any = None) -> list[str] | None:
    """Normalise a tests cell into a list of test sources (``None`` when there are none).

    >>> humaneval = "def check(candidate):\\n    assert candidate(1) == 2\\n"
    >>> as_test_list(humaneval, "inc")[0].splitlines()[-1]
    'check(inc)'
    >>> as_test_list('["assert f(1) == 1", "assert f(2) == 4"]')
    ['assert f(1) == 1', 'assert f(2) == 4']
    """
    if isinstance(tests, str):
        stripped = tests.strip()
        if stripped.startswith("["):
            with contextlib.suppress(ValueError):
                tests = json.loads(stripped)
    if isinstance(tests, str):
        if not tests.strip():
            return None
        if entry_point and re.search(r"^def check\s*\(", tests, re.MULTILINE):
            return [f"{tests}\n\ncheck({entry_point})\n"]
        return [tests]
    if isinstance(tests, list | tuple):
        cases = [t for t in tests if isinstance(t, str) and t.strip()]
        return cases or None
    return None


@register(
    "code",
    "Runs the answer's Python (last fenced block, else the answer) against the sample's tests in "
    "a bubblewrap sandbox (no network, no studio files, CPU/memory/wall limits); the fraction of "
    "tests passed. Params: tests_column ('test'), entry_point_column ('entry_point'), "
    "prefix_column (prepended to the code, e.g. HumanEval's 'prompt'), timeout, memory_mb, "
    "processes.",
)
def code_reward(
    *,
    tests_column: str = "test",
    entry_point_column: str = "entry_point",
    prefix_column: str | None = None,
    timeout: float = 10.0,
    memory_mb: int = 1024,
    processes: int | None = None,
) -> RewardFunc:
    """Fraction of tests passed; ``None`` for a sample without tests, 0.0 without code.

    >>> f = code_reward()
    >>> f(None, ["<answer>```python\\ndef sq(x):\\n    return x * x\\n```</answer>"],
    ...   test=[["assert sq(2) == 4", "assert sq(3) == 10"]])
    [0.5]
    """
    if timeout <= 0 or memory_mb <= 0:
        raise ValueError("timeout and memory_mb must be positive")

    def reward(prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float | None]:
        completions = list(completions or [])
        n = len(completions)
        scores: list[float | None] = [None] * n
        jobs, where = [], []
        for i, completion in enumerate(completions):
            try:
                row = row_columns(kwargs, i, n)
                tests = as_test_list(row.get(tests_column), row.get(entry_point_column))
                if tests is None:
                    continue
                code = extract_code(completion)
                if code is None:
                    scores[i] = 0.0
                    continue
                prefix = row.get(prefix_column) if prefix_column else None
                program = f"{prefix}\n{code}" if isinstance(prefix, str) else code
                jobs.append((program, tests))
                where.append(i)
            except Exception:
                logger.exception("code: could not prepare sample %d; scored None", i)
        try:
            results = run_many(jobs, processes, timeout=timeout, memory_mb=memory_mb)
        except SandboxUnavailable as exc:
            logger.error("code: no sandbox to run the answers in, scored None: %s", exc)
            return scores
        except Exception:
            logger.exception("code: sandbox failed for the batch; scored None")
            return scores
        for i, result in zip(where, results, strict=True):
            scores[i] = result.fraction
        return scores

    return reward
