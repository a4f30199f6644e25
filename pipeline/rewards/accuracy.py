"""The accuracy reward: is the completion's final answer mathematically equal to the reference?

Grading uses math-verify (``parse`` + ``verify``, sympy underneath). What this module adds:

- **Reference answers as they come in real datasets**: GSM8K solutions ending in ``#### 1,234``
  (the text after the last ``####``, commas dropped), AIME's ``025``, AMC's float ``27.0`` and
  MATH's bare LaTeX (``\\frac{14}{3}``, intervals, ``\\text{Evelyn}``, ``52_8`` ...), which is
  parsed as if boxed so that math-verify reads the whole expression and not its first number.
- **Where the answer is**: the ``<answer>`` block, else (``boxed_fallback``) the last ``\\boxed{}``.
- **Threads**: math-verify times out with ``signal.alarm``, which only works on the main thread.
  On the main thread we use it; anywhere else (a threaded Celery pool, a web server) grading goes
  to a process pool whose workers grade on their own main threads, so timeouts still hold.
- **All cores**: :func:`grade_batch` grades ``(gold, answer)`` pairs in a process pool.

A gold that cannot be parsed scores ``None`` (cannot judge), not 0.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import re
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from typing import Any

from pipeline.template import completion_text, parse_completion

from ._registry import RewardFunc, logger, register, row_columns

# Seconds math-verify may spend parsing one expression / comparing one pair.
PARSE_TIMEOUT = 5
VERIFY_TIMEOUT = 5


# Math delimiters that math-verify finds on its own; an escaped dollar (``\\$36``) is currency.
_DELIMITED = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\boxed|\\fbox")


def gold_text(gold: Any) -> str | None:
    """The reference answer as a string, or ``None`` when there is none.

    >>> gold_text("Janet sells 16 - 3 - 4 = 9 eggs... #### 1,234")
    '1234'
    >>> gold_text(27.0), gold_text("025")
    ('27', '025')
    """
    if gold is None or isinstance(gold, bool):
        return None
    if isinstance(gold, int):
        return str(gold)
    if isinstance(gold, float):
        if gold != gold or gold in (float("inf"), float("-inf")):
            return None
        return str(int(gold)) if gold.is_integer() else repr(gold)
    if not isinstance(gold, str):
        gold = str(gold)
    if "####" in gold:  # GSM8K: worked solution, final answer after the last marker
        gold = gold.rsplit("####", 1)[1].strip()
        if re.fullmatch(r"[-+]?[\d,]*\.?\d+", gold):
            gold = gold.replace(",", "")
    gold = gold.strip()
    return gold or None


def _boxed(text: str) -> str:
    return "\\boxed{" + text + "}"


@lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> tuple:
    import math_verify

    text = gold if _DELIMITED.search(gold) else _boxed(gold)
    return tuple(_mv_parse(math_verify, text))


def _mv_parse(math_verify: Any, text: str) -> list:
    on_main = threading.current_thread() is threading.main_thread()
    return math_verify.parse(text, parsing_timeout=PARSE_TIMEOUT if on_main else None)


def _verify(math_verify: Any, gold: Sequence, pred: Sequence) -> bool:
    on_main = threading.current_thread() is threading.main_thread()
    timeout = VERIFY_TIMEOUT if on_main else None
    return bool(math_verify.verify(list(gold), list(pred), timeout_seconds=timeout))


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces balanced.

    >>> last_boxed("so \\\\boxed{\\\\frac{1}{2}} and \\\\boxed{3}")
    '3'
    """
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
    return None


_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mbox|mathbf|operatorname)\s*\{([^{}]*)\}")
_SPACING = re.compile(r"\\[!,;:> ]|\\q?quad|\\left|\\right|\\displaystyle|\s+")


def normalize_answer_text(text: str) -> str:
    """A MATH-style string normal form, the last resort when sympy cannot decide.

    >>> normalize_answer_text("\\\\text{ Evelyn }.")
    'evelyn'
    """
    s = _TEXT_CMD.sub(r"\1", text)
    s = _SPACING.sub("", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\$", "")
    s = s.replace("$", "").replace("^\\circ", "").replace("^{\\circ}", "").replace("\\%", "")
    return s.rstrip(".").lower()


def grade(gold: Any, answer: str | None) -> float | None:
    """1.0 if ``answer`` (the answer text, not the whole completion) equals ``gold``, else 0.0.

    ``None`` when the gold is missing or unparsable. Call from any thread.

    >>> grade("#### 1,234", "1234"), grade("025", "25"), grade("\\\\frac{14}{3}", "14/3")
    (1.0, 1.0, 1.0)
    """
    if threading.current_thread() is not threading.main_thread():
        return _pool_grade([(gold, answer)])[0]
    return _grade(gold, answer)


def _grade(gold: Any, answer: str | None) -> float | None:
    import math_verify
    from sympy import Basic, MatrixBase

    g = gold_text(gold)
    if g is None:
        return None
    parsed_gold = _parse_gold(g)
    if not any(isinstance(x, Basic | MatrixBase) for x in parsed_gold):
        return None  # only a raw string came back: math-verify could not read the gold
    if answer is not None and not isinstance(answer, str):
        answer = gold_text(answer)  # a number handed over directly
    if answer is None or not answer.strip():
        return 0.0
    answer = answer.strip()
    # Bare LaTeX or plain text: read it whole (as if boxed) first, then let math-verify search it.
    delimited = _DELIMITED.search(answer) is not None
    attempts = [answer] if delimited else [_boxed(answer), answer]
    for text in attempts:
        pred = _mv_parse(math_verify, text)
        if pred and _verify(math_verify, parsed_gold, pred):
            return 1.0
    inner = last_boxed(answer) or answer
    norm = normalize_answer_text(inner)
    return 1.0 if norm and norm == normalize_answer_text(g) else 0.0


def extract_answer(completion: Any, boxed_fallback: bool = True) -> str | None:
    """The text to grade: the ``<answer>`` block, else the last ``\\boxed{}`` when allowed."""
    answer = parse_completion(completion).answer
    if answer is None and boxed_fallback:
        answer = last_boxed(completion_text(completion))
    return answer


def _grade_safe(pair: tuple[Any, str | None]) -> float | None:
    try:
        return _grade(*pair)
    except Exception:
        logger.exception("accuracy grading failed; scored None")
        return None


# One pool per size asked for, kept for the life of the process (start-up costs ~1 s).
_POOLS: dict[int, ProcessPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


def _get_pool(processes: int) -> ProcessPoolExecutor:
    with _POOL_LOCK:
        if processes not in _POOLS:
            # forkserver: never fork a process that may hold torch/OpenMP threads or locks.
            ctx = multiprocessing.get_context("forkserver")
            _POOLS[processes] = ProcessPoolExecutor(max_workers=processes, mp_context=ctx)
        return _POOLS[processes]


@atexit.register
def shutdown_pool() -> None:
    """Stop the grading workers (called at exit; safe to call any time)."""
    with _POOL_LOCK:
        for pool in _POOLS.values():
            pool.shutdown(cancel_futures=True)
        _POOLS.clear()


def _kill_pool(processes: int) -> None:
    with _POOL_LOCK:
        pool = _POOLS.pop(processes, None)
    if pool is not None:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)


def _pool_grade(pairs: list[tuple[Any, str | None]], processes: int | None = None) -> list:
    # processes=1 only lands here off the main thread: it still needs a worker's main thread.
    processes = processes if processes and processes > 1 else (os.cpu_count() or 1)
    chunksize = max(1, len(pairs) // (processes * 8))
    # Far more than math-verify's own timeouts allow; only a worker stuck in C code gets here.
    budget = 60 + len(pairs) * (PARSE_TIMEOUT * 2 + VERIFY_TIMEOUT) / processes
    results: list[float | None] = []
    try:
        pool = _get_pool(processes)
        for score in pool.map(_grade_safe, pairs, chunksize=chunksize, timeout=budget):
            results.append(score)
    except TimeoutError:
        logger.error("accuracy grading pool stuck; %d pairs scored None", len(pairs) - len(results))
        _kill_pool(processes)
        return results + [None] * (len(pairs) - len(results))
    except Exception as exc:
        # A broken pool, a daemonic parent (may not have children), or a __main__ script
        # without the `if __name__ == "__main__":` guard that spawned workers re-import.
        logger.warning("accuracy grading pool unavailable (%r); grading in this process", exc)
        _kill_pool(processes)
        return results + [_grade_safe(p) for p in pairs[len(results) :]]
    return results


def grade_batch(
    pairs: Iterable[tuple[Any, str | None]], processes: int | None = None
) -> list[float | None]:
    """Grade ``(gold, answer_text)`` pairs on ``processes`` cores (``None`` or 0: all).

    ``processes=1`` grades in this process without a pool (off the main thread it still uses
    a pool, where math-verify's signal-based timeouts work). Results keep the order
    of ``pairs``; a pair whose grading raised scores ``None``.

    >>> grade_batch([("4", "4"), ("4", "5")], processes=1)
    [1.0, 0.0]
    """
    pairs = list(pairs)
    on_main = threading.current_thread() is threading.main_thread()
    if (processes == 1 and on_main) or not pairs:
        return [_grade_safe(p) for p in pairs]
    return _pool_grade(pairs, processes)


@register(
    "accuracy",
    "1.0 when the <answer> is mathematically equal to the reference (math-verify), else 0.0; "
    "None when the reference cannot be parsed. Params: answer_column (default 'answer'), "
    "boxed_fallback (grade the last \\boxed{} when there is no <answer>), processes (1: in this "
    "process; 0 or null: all cores).",
)
def accuracy_reward(
    *, answer_column: str = "answer", boxed_fallback: bool = True, processes: int | None = 1
) -> RewardFunc:
    """Math accuracy against the ``answer_column`` dataset column.

    >>> f = accuracy_reward()
    >>> f(None, ["<think>…</think><answer>\\\\frac{1}{2}</answer>", "<answer>3</answer>"],
    ...   answer=["0.5", "#### 4"])
    [1.0, 0.0]
    """

    def reward(prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float | None]:
        completions = list(completions or [])
        n = len(completions)
        pairs = []
        for i, completion in enumerate(completions):
            gold = row_columns(kwargs, i, n).get(answer_column)
            try:
                pairs.append((gold, extract_answer(completion, boxed_fallback)))
            except Exception:
                logger.exception("accuracy: could not read completion %d", i)
                pairs.append((None, None))
        return grade_batch(pairs, processes=processes)

    return reward
