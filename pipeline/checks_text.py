"""The R1 checks on one reasoning trace: what an annotator sees beside a completion.

The R1 paper's cold-start data had to be *readable*: well formed, in one language, in short
paragraphs, ending with a summary, and still correct. :func:`r1_checks` measures exactly that on
a completion (or on a think/answer pair an annotator edited) and returns a small JSON-ready dict:

- ``format_valid``: ``<think>…</think> <answer>…</answer>`` and nothing else (``parse_completion``)
- ``language_share`` / ``language_consistent``: share of the reasoning's words in the target
  language (the reasoning-RL reward, ``pipeline.rewards.language``), consistent at
  ``LANGUAGE_CONSISTENT`` or more
- ``longest_paragraph``: characters of the longest paragraph of the reasoning
- ``code_blocks``: fenced code blocks in the reasoning
- ``summary_present``: there is an answer / text after ``</think>``
- ``tokens`` (``tokens_estimated``): length of the completion, chars/4 unless a tokenizer is given
- ``verifier``: the accuracy reward against ``reference`` (1.0, 0.0, or None: no reference or
  one that cannot be read)

Annotation queues store it on each item at creation; the labelling view runs it again on an
edit, and :func:`checks_regressed` says what the edit broke. No Django here.

>>> c = r1_checks(think="2 and 2 make 4.", answer="4", reference="4")
>>> (c["format_valid"], c["summary_present"], c["verifier"], c["code_blocks"])
(True, True, 1.0, 0)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pipeline.rewards.accuracy import extract_answer, gold_text, grade, grade_batch
from pipeline.rewards.language import LANGUAGE_SCRIPTS, language_share
from pipeline.template import THINK_CLOSE, completion_text, parse_completion

# A reasoning with at least this share of target-language words reads as one language.
LANGUAGE_CONSISTENT = 0.95
# Characters per token when no tokenizer is given (the usual English BPE average).
CHARS_PER_TOKEN = 4
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_FENCE = re.compile(r"^[ \t]*(?:```|~~~)", re.MULTILINE)


def compose_completion(think: str | None, answer: str | None) -> str:
    """The completion an edited think/answer pair stands for.

    >>> compose_completion("x", "1")
    '<think>\\nx\\n</think>\\n<answer>\\n1\\n</answer>'
    """
    return f"<think>\n{think or ''}\n</think>\n<answer>\n{answer or ''}\n</answer>"


def longest_paragraph(text: str) -> int:
    """Characters of the longest blank-line-separated paragraph (ends stripped).

    >>> longest_paragraph("ab\\n\\n  abcd  \\n\\nx")
    4
    """
    return max((len(p.strip()) for p in _PARAGRAPH_BREAK.split(text or "")), default=0)


def code_blocks(text: str) -> int:
    """Fenced (```` ``` ```` or ``~~~``) code blocks; an unclosed fence counts as one.

    >>> code_blocks("a\\n```py\\nx=1\\n```\\nb\\n```\\n")
    2
    """
    fences = len(_FENCE.findall(text or ""))
    return (fences + 1) // 2


def token_count(text: str, tokenizer: Any = None) -> tuple[int, bool]:
    """``(tokens, estimated)``: ``tokenizer.encode`` when given, else characters / 4.

    >>> token_count("abcdefgh")
    (2, True)
    """
    if tokenizer is not None:
        return len(tokenizer.encode(text, add_special_tokens=False)), False
    return -(-len(text) // CHARS_PER_TOKEN), True


def _text_checks(
    completion: str, think: str | None, answer: str | None, language: str, tokenizer: Any
) -> dict[str, Any]:
    parsed = parse_completion(completion)
    reasoning = think if think is not None else completion
    share = language_share(reasoning, language)
    after_think = completion.split(THINK_CLOSE, 1)[1] if THINK_CLOSE in completion else ""
    tokens, estimated = token_count(completion, tokenizer)
    return {
        "format_valid": parsed.well_formed,
        "language": language,
        "language_share": round(share, 3),
        "language_consistent": share >= LANGUAGE_CONSISTENT,
        "longest_paragraph": longest_paragraph(reasoning),
        "code_blocks": code_blocks(reasoning),
        "summary_present": bool((answer or "").strip() or after_think.strip()),
        "tokens": tokens,
        "tokens_estimated": estimated,
    }


def _parts(
    think: str | None, answer: str | None, completion: Any
) -> tuple[str, str | None, str | None, str | None]:
    """(completion text, think, answer, answer to grade) from whichever the caller has; the
    graded answer falls back to the last \\boxed{} of a completion without <answer>."""
    if completion is None:
        return compose_completion(think, answer), think, answer, answer
    text = completion_text(completion)
    parsed = parse_completion(text)
    think = think if think is not None else parsed.think
    if answer is not None:
        return text, think, answer, answer
    return text, think, parsed.answer, extract_answer(text)


def r1_checks(
    *,
    think: str | None = None,
    answer: str | None = None,
    completion: Any = None,
    reference: Any = None,
    language: str = "en",
    tokenizer: Any = None,
) -> dict[str, Any]:
    """The R1 checks of one trace (see the module docstring); never raises on odd text.

    Give the raw ``completion`` (think and answer are parsed from it) or an edited ``think`` and
    ``answer`` (the completion is composed from them, so a stray tag breaks the format).
    """
    if language not in LANGUAGE_SCRIPTS:
        raise ValueError(f"unknown language {language!r}")
    text, think, answer, graded = _parts(think, answer, completion)
    checks = _text_checks(text, think, answer, language, tokenizer)
    checks["verifier"] = grade(reference, graded) if gold_text(reference) is not None else None
    return checks


def r1_checks_batch(
    rows: Iterable[dict[str, Any]],
    *,
    language: str = "en",
    tokenizer: Any = None,
    processes: int | None = 1,
) -> list[dict[str, Any]]:
    """:func:`r1_checks` for many rows (dicts with any of think, answer, completion, reference),
    grading the answers in one ``grade_batch`` call (``processes`` as there)."""
    if language not in LANGUAGE_SCRIPTS:
        raise ValueError(f"unknown language {language!r}")
    out: list[dict[str, Any]] = []
    pairs: list[tuple[Any, str | None]] = []
    at: list[int] = []
    for i, row in enumerate(rows):
        text, think, answer, graded = _parts(
            row.get("think"), row.get("answer"), row.get("completion")
        )
        out.append(_text_checks(text, think, answer, language, tokenizer))
        out[-1]["verifier"] = None
        reference = row.get("reference")
        if gold_text(reference) is not None:
            pairs.append((reference, graded))
            at.append(i)
    for i, score in zip(at, grade_batch(pairs, processes=processes), strict=True):
        out[i]["verifier"] = score
    return out


def checks_regressed(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """Names of the checks an edit broke: a valid format made invalid, a correct answer made
    wrong, a summary removed, one language made mixed. Empty: nothing to flag.

    >>> checks_regressed({"format_valid": True, "verifier": 1.0}, {"format_valid": False,
    ...     "verifier": 0.0})
    ['format_valid', 'verifier']
    """
    before = before or {}
    broken = []
    for name in ("format_valid", "summary_present", "language_consistent"):
        if before.get(name) is True and after.get(name) is False:
            broken.append(name)
    if before.get("verifier") == 1.0 and after.get("verifier") == 0.0:
        broken.append("verifier")
    return broken
