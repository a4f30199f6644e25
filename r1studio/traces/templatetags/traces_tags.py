"""Template filters for trace pages. None of them returns markup: model output stays text.

`{{ trace.completion|completion_segments }}` gives think/answer/text parts and
`{{ trace.prompt|prompt_messages }}` a prompt's chat messages, which the template wraps in its
own elements and prints with auto-escaping; the number filters format scores.
"""

from __future__ import annotations

import math
from typing import Any

from django import template

from r1studio.traces.text import conversation, prompt_preview, segments

register = template.Library()


@register.filter
def completion_segments(text: str) -> list[dict[str, str]]:
    """Think, answer and plain parts of a completion (see `r1studio.traces.text.segments`)."""
    return segments(text or "")


@register.filter
def prompt_messages(text: str) -> list[dict[str, str]]:
    """The messages of a chat-templated prompt (see `r1studio.traces.text.conversation`)."""
    return conversation(text or "")


@register.filter
def prompt_line(text: str, length: int = 160) -> str:
    """The prompt's user message on one line, cut to `length` characters (for lists)."""
    return prompt_preview(text or "", int(length))


@register.filter
def score(value: Any, digits: int = 3) -> str:
    """A reward as `0.5`, `1`, `-0.25`; `—` when unknown."""
    if value is None or isinstance(value, bool):
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(number):
        return "NaN"
    return f"{number:.{int(digits)}g}"


@register.filter
def signed(value: Any) -> str:
    """An advantage with its sign: `+0.71`, `-1.2`; `—` when unknown."""
    if value is None:
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    return f"{number:+.3g}" if math.isfinite(number) else "NaN"


@register.filter
def score_class(value: Any) -> str:
    """CSS class for a score cell: `pos`, `neg` or `zero` (empty when unknown)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(number):
        return ""
    return "pos" if number > 0 else "neg" if number < 0 else "zero"
