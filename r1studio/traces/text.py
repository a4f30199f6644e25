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

# Chat templates, recognised by their turn markers: each pattern finds (role, content) turns.
_CHATML = re.compile(
    r"<\|im_start\|>[ \t]*(\w+)[ \t]*\n?(.*?)(?=<\|im_end\|>|<\|im_start\|>|\Z)", re.S
)
_LLAMA3 = re.compile(
    r"<\|start_header_id\|>(\w+)<\|end_header_id\|>\s*(.*?)(?=<\|eot_id\|>|<\|start_header_id\|>|\Z)",
    re.S,
)
_GEMMA = re.compile(r"<start_of_turn>(\w+)\n?(.*?)(?=<end_of_turn>|<start_of_turn>|\Z)", re.S)
# Role tokens with the content after them: Phi-3, Zephyr, the toy models (<|user|>...<|end|>),
# DeepSeek-R1 (<｜User｜>...; its system prompt comes before the first role token).
_ROLE_TOKEN = re.compile(r"<\|(system|user|assistant)\|>|<｜(User|Assistant)｜>", re.I)
_MISTRAL = re.compile(r"\[INST\](.*?)\[/INST\]", re.S)
# The R1 template without a chat template: "<system text>\nUser: <problem>\nAssistant:".
_PLAIN = re.compile(
    r"\A(?:(?P<system>.*)\n)?User:[ \t]?(?P<user>.*)\nAssistant:(?P<prefill>[^\n]*)\Z", re.S
)
# What is left of a template inside a turn: end-of-turn and begin/end-of-text tokens.
_SPECIAL = re.compile(r"<\|[^|<>\s]{1,40}\|>|<｜[^｜<>]{1,40}｜>|</?s>|<(?:bos|eos|end_of_turn)>")


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


def _turns(pattern: re.Pattern[str], text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in pattern.finditer(text)]


def _role_token_turns(text: str) -> list[tuple[str, str]]:
    pieces = _ROLE_TOKEN.split(text)  # [before, role, ROLE, content, role, ROLE, content, ...]
    turns = [("system", pieces[0])]
    for i in range(1, len(pieces) - 2, 3):
        turns.append((pieces[i] or pieces[i + 1], pieces[i + 2]))
    return turns


def _mistral_turns(text: str) -> list[tuple[str, str]]:
    turns: list[tuple[str, str]] = []
    end = 0
    for m in _MISTRAL.finditer(text):
        if turns:
            turns.append(("assistant", text[end : m.start()]))
        turns.append(("user", m.group(1)))
        end = m.end()
    turns.append(("assistant", text[end:]))
    return turns


def conversation(prompt: str) -> list[dict[str, str]]:
    """A prompt rendered with a chat template, as its messages: `[{"role", "text"}]`.

    Knows ChatML (Qwen), Llama 3, Gemma, Mistral, role-token templates (Phi-3, Zephyr, the toy
    models, DeepSeek-R1) and the plain R1 template ("...User: ...\nAssistant:"). Roles are
    lowercase; empty turns (the open assistant turn the model writes into) are left out, so a
    prefilled `<think>` stays as an assistant message. A prompt in none of these formats is one
    message with role `""` and the text unchanged.

    >>> conversation("<|user|>What is 2+3?<|end|><|assistant|>")
    [{'role': 'user', 'text': 'What is 2+3?'}]
    """
    text = prompt or ""
    turns: list[tuple[str, str]] = []
    if "<|im_start|>" in text:
        turns = _turns(_CHATML, text)
    elif "<|start_header_id|>" in text:
        turns = _turns(_LLAMA3, text)
    elif "<start_of_turn>" in text:
        turns = _turns(_GEMMA, text)
    elif _ROLE_TOKEN.search(text):
        turns = _role_token_turns(text)
    elif "[INST]" in text and _MISTRAL.search(text):
        turns = _mistral_turns(text)
    elif match := _PLAIN.match(text):
        turns = [(role, match.group(role) or "") for role in ("system", "user", "prefill")]
    messages = []
    for role, content in turns:
        content = _SPECIAL.sub("", content).strip()
        if content:
            role = role.lower()
            role = {"model": "assistant", "prefill": "assistant"}.get(role, role)
            messages.append({"role": role, "text": content})
    if not messages:
        return [{"role": "", "text": text}]
    return messages


def prompt_preview(prompt: str, length: int = 160) -> str:
    """The prompt's last user message (the whole text outside a chat template) on one line,
    cut to `length` characters: what a list shows of a prompt."""
    messages = conversation(prompt)
    users = [m["text"] for m in messages if m["role"] == "user"]
    line = " ".join((users[-1] if users else messages[-1]["text"]).split())
    return line if len(line) <= length else line[: length - 1].rstrip() + "…"
