"""The R1 prompt template and the parser that splits a completion into think / answer.

DeepSeek-R1-Zero asks the model to reason inside ``<think> </think>`` and then answer inside
``<answer> </answer>``. Everything downstream (format and accuracy rewards, rejection sampling,
the trace views) reads completions through :func:`parse_completion`, which never raises: model
output is arbitrary text and a crash in a reward would stop a training run.

Example:
    >>> p = parse_completion("<think>2+2 is 4</think> <answer>4</answer>")
    >>> (p.think, p.answer, p.think_first, p.well_formed)
    ('2+2 is 4', '4', True, True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)

# The R1 paper's template idea, in our own words: a dialogue where the assistant thinks first,
# privately, then answers, each part wrapped in its tags.
R1_SYSTEM_PROMPT = (
    "This is a conversation between a User and an Assistant. The User asks a question and the "
    "Assistant solves it. The Assistant first works through the problem step by step in its "
    "head, then gives the final answer. The reasoning goes between <think> and </think> tags "
    "and the final answer between <answer> and </answer> tags, like this: "
    "<think> reasoning here </think> <answer> answer here </answer>."
)

# Plain-text (no chat template) form of the same template, for base models: the prompt ends
# where the assistant starts writing.
R1_PROMPT_TEMPLATE = R1_SYSTEM_PROMPT + "\nUser: {problem}\nAssistant:"

# The strict shape: think block, optional whitespace, answer block, nothing else around them.
_STRICT = re.compile(
    r"\A\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*\Z", re.DOTALL
)


@dataclass(frozen=True)
class ThinkAnswer:
    """A completion split into its parts.

    ``think``/``answer`` are the stripped contents of the tags (``None`` when absent or
    unclosed); ``think_first`` says the completion opens with ``<think>``; ``well_formed`` says it
    is exactly ``<think>…</think> <answer>…</answer>`` with each tag once and nothing outside.
    """

    think: str | None
    answer: str | None
    think_first: bool
    well_formed: bool


_EMPTY = ThinkAnswer(think=None, answer=None, think_first=False, well_formed=False)


def completion_text(completion: Any) -> str:
    """Return the text of a completion given as a string or a chat message list.

    TRL passes strings for plain datasets and ``[{"role": "assistant", "content": ...}]`` for
    conversational ones. Lists join the contents of their assistant messages (every message when
    none is tagged assistant); anything else becomes ``""``.

    >>> completion_text([{"role": "assistant", "content": "<answer>4</answer>"}])
    '<answer>4</answer>'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    if isinstance(completion, list | tuple):
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role") == "assistant"] or messages
        if not messages:
            return "".join(x for x in completion if isinstance(x, str))
        return "".join(_content_text(m.get("content")) for m in assistant)
    return ""


def _content_text(content: Any) -> str:
    # Message content is a string, or a list of parts like {"type": "text", "text": ...}.
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return ""


def parse_completion(text: Any, think_prefilled: bool = False) -> ThinkAnswer:
    """Split a completion into think and answer; never raises.

    ``think_prefilled=True`` means the prompt already ended with ``<think>``, so the completion
    starts inside the think block. The answer is the last closed ``<answer>`` block (models that
    restate the answer mean the last one); an unclosed ``<answer>`` gives ``None`` because the
    completion was cut off before it finished answering.

    >>> parse_completion("no tags at all")
    ThinkAnswer(think=None, answer=None, think_first=False, well_formed=False)
    >>> parse_completion("I think</think><answer>7</answer>", think_prefilled=True).well_formed
    True
    """
    try:
        return _parse(completion_text(text), think_prefilled)
    except Exception:  # a parser bug must never take a training run down
        return _EMPTY


def _parse(text: str, think_prefilled: bool) -> ThinkAnswer:
    if think_prefilled and not text.lstrip().startswith(THINK_OPEN):
        text = THINK_OPEN + text
    think_first = text.lstrip().startswith(THINK_OPEN)

    think = None
    start = text.find(THINK_OPEN)
    if start >= 0:
        end = text.find(THINK_CLOSE, start + len(THINK_OPEN))
        if end >= 0:
            think = text[start + len(THINK_OPEN) : end].strip()

    answer = None
    end = text.rfind(ANSWER_CLOSE)
    if end >= 0:
        start = text.rfind(ANSWER_OPEN, 0, end)
        if start >= 0:
            answer = text[start + len(ANSWER_OPEN) : end].strip()

    once = all(text.count(tag) == 1 for tag in TAGS)
    well_formed = once and _STRICT.match(text) is not None
    return ThinkAnswer(think=think, answer=answer, think_first=think_first, well_formed=well_formed)


def tag_counts(text: Any) -> dict[str, int]:
    """How many times each of the four tags occurs in a completion (for ``tag_count``)."""
    s = completion_text(text)
    return {tag: s.count(tag) for tag in TAGS}


def prompt_prefills_think(prompt: Any) -> bool:
    """True when a prompt (text or rendered chat) ends by opening ``<think>``.

    Some chat templates (DeepSeek-R1-Distill, Qwen3 thinking) prefill ``<think>``; a strict
    format reward must then be told ``think_prefilled=True`` or it scores every completion 0.
    """
    return completion_text(prompt).rstrip().endswith(THINK_OPEN)


def make_conversation(
    problem: str, system_prompt: str | None = R1_SYSTEM_PROMPT
) -> list[dict[str, str]]:
    """Chat messages for one problem: the R1 system prompt (when given) then the user turn.

    >>> [m["role"] for m in make_conversation("1+1?")]
    ['system', 'user']
    """
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": problem})
    return messages


def render_prompt(problem: str, template: str = R1_PROMPT_TEMPLATE) -> str:
    """Fill a plain-text template's ``{problem}`` (other braces are left alone).

    >>> render_prompt("1+1?", "Q: {problem}\\nA: <think>")
    'Q: 1+1?\\nA: <think>'
    """
    return template.replace("{problem}", problem)
