"""Text helpers for the trace pages: think/answer segments, word diffs, reflection words.

Everything here returns plain strings in small structures; templates render them through
Django's auto-escaping. Nothing builds HTML, so model output can never become markup.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pipeline.template import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN

# The words and phrases a model uses when it stops to re-check itself: the "aha moment" of
# the R1 paper shows up as these becoming more frequent as training goes on.
REFLECTION_PHRASES: tuple[str, ...] = (
    "wait",
    "hmm",
    "let me re-check",
    "let me recheck",
    "let me check",
    "let me verify",
    "re-evaluate",
    "reevaluate",
    "re-examine",
    "double-check",
    "on second thought",
    "i made a mistake",
    "aha",
)
_REFLECTION = {
    phrase: re.compile(
        r"(?<![\w-])" + re.escape(phrase).replace(r"\ ", r"\s+") + r"(?![\w-])", re.IGNORECASE
    )
    for phrase in REFLECTION_PHRASES
}
_TAG = re.compile(
    "(" + "|".join(re.escape(t) for t in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)) + ")"
)
MAX_DIFF_WORDS = 3000


def reflection_counts(text: str) -> dict[str, int]:
    """How often each reflection phrase occurs in `text` (case-insensitive, whole words)."""
    return {phrase: len(pattern.findall(text)) for phrase, pattern in _REFLECTION.items()}


def segments(completion: str) -> list[dict[str, str]]:
    """Split a completion into `think`, `answer` and `text` parts, tags shown as `tag` parts.

    A completion that never closes `<think>` keeps the rest as think text: that is what the
    model was doing when it ran out of tokens.
    """
    parts: list[dict[str, str]] = []
    kind = "text"
    for piece in _TAG.split(completion or ""):
        if piece in (THINK_OPEN, ANSWER_OPEN):
            parts.append({"kind": "tag", "text": piece})
            kind = "think" if piece == THINK_OPEN else "answer"
        elif piece in (THINK_CLOSE, ANSWER_CLOSE):
            parts.append({"kind": "tag", "text": piece})
            kind = "text"
        elif piece.strip():
            parts.append({"kind": kind, "text": piece.strip("\n")})
    return parts


def word_diff(before: str, after: str) -> list[dict[str, Any]]:
    """Word-level diff of two completions as `{"op": equal|insert|delete, "text"}` parts.

    Very long completions are compared on their first `MAX_DIFF_WORDS` words (difflib is
    quadratic in the worst case); `truncated` parts say so.
    """
    a = re.split(r"(\s+)", before or "")
    b = re.split(r"(\s+)", after or "")
    truncated = len(a) > 2 * MAX_DIFF_WORDS or len(b) > 2 * MAX_DIFF_WORDS
    a, b = a[: 2 * MAX_DIFF_WORDS], b[: 2 * MAX_DIFF_WORDS]
    out: list[dict[str, Any]] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append({"op": "equal", "text": "".join(a[i1:i2])})
            continue
        if op in ("delete", "replace"):
            out.append({"op": "delete", "text": "".join(a[i1:i2])})
        if op in ("insert", "replace"):
            out.append({"op": "insert", "text": "".join(b[j1:j2])})
    if truncated:
        out.append({"op": "truncated", "text": f"(diff of the first {MAX_DIFF_WORDS} words)"})
    return out


def diff_stats(parts: list[dict[str, Any]]) -> dict[str, int]:
    """Words added and removed in a `word_diff`."""
    added = sum(len(p["text"].split()) for p in parts if p["op"] == "insert")
    removed = sum(len(p["text"].split()) for p in parts if p["op"] == "delete")
    return {"added": added, "removed": removed}
