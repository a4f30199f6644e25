"""Reads and the check-on-save behind the annotation view (`label_views.py`).

`label_progress`, `label_group` and `guideline_html` read what the page shows beside an item;
`label_checks` re-runs the R1 checks and the verifier (`pipeline.checks_text`) on an edited
think/answer and says what the edit broke; `check_rows` turns a checks dict into the rows the
page (and the JSON answers its script reads) display. Nothing here returns model text as markup.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from pipeline.checks_text import checks_regressed, r1_checks
from r1studio.curation.annotation.agreement import queue_item_counts
from r1studio.curation.annotation.models import (
    AnnotationItem,
    AnnotationQueue,
    Label,
    LabelStatus,
)

GROUP_LIMIT = 16  # other completions of a prompt shown beside an item
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def queue_questions(queue: AnnotationQueue) -> dict[str, Any]:
    """The questions a queue asks; a question the researcher did not mention is asked."""
    asked = queue.questions or {}
    tags = asked.get("tags") or []
    return {
        "verdict": asked.get("verdict", True) is not False,
        "edit": asked.get("edit", True) is not False,
        "rating": asked.get("rating", True) is not False,
        "note": asked.get("note", True) is not False,
        "tags": [str(t) for t in tags] if isinstance(tags, list) else [],
    }


def label_progress(*, queue: AnnotationQueue, user: Any) -> dict[str, int]:
    """Items done (labelled by as many annotators as the overlap) of all, and the user's own."""
    counts = queue_item_counts([queue.pk])[queue.pk]
    total = sum(counts.values())
    done = sum(n for labels, n in counts.items() if labels >= queue.overlap)
    mine = Label.objects.filter(
        annotator=user, item__queue=queue, status=LabelStatus.SUBMITTED
    ).count()
    return {"done": done, "total": total, "mine": mine}


def label_group(*, item: AnnotationItem) -> list[AnnotationItem]:
    """The other items of the queue sampled from the same prompt (a GRPO group), by reward."""
    if not item.group_key:
        return []
    others = list(
        AnnotationItem.objects.filter(queue_id=item.queue_id, group_key=item.group_key)
        .exclude(pk=item.pk)
        .order_by("position")[:GROUP_LIMIT]
    )
    return sorted(others, key=lambda o: _number(o.data.get("reward")), reverse=True)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("-inf")


def paragraphs(text: str | None) -> list[str]:
    """Blank-line-separated paragraphs of `text`, ends stripped (the template escapes them)."""
    return [p.strip("\n") for p in _PARAGRAPH_BREAK.split(text or "") if p.strip()]


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    # Raw HTML is off: a tag in the text is printed as text; markdown-it refuses javascript:,
    # vbscript: and file: links (its validateLink) on its own.
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def guideline_html(text: str | None) -> SafeString:
    """Guideline Markdown as HTML with every raw tag escaped (html off in markdown-it)."""
    return mark_safe(_markdown().render(text or ""))  # html is off in _markdown: safe


def _language(item: AnnotationItem) -> str:
    stored = item.data.get("checks") if isinstance(item.data.get("checks"), dict) else {}
    return str(stored.get("language") or "en")


def original_checks(item: AnnotationItem) -> dict[str, Any]:
    """The checks of the item as it was served (stored at creation, else computed now)."""
    stored = item.data.get("checks")
    if isinstance(stored, dict) and stored:
        return stored
    return r1_checks(
        think=item.data.get("think") or "",
        answer=item.data.get("answer") or "",
        reference=item.data.get("reference"),
    )


def label_checks(*, item: AnnotationItem, think: str, answer: str) -> dict[str, Any]:
    """The R1 checks and the verifier on an annotator's think/answer, with what the edit broke
    (`broken`: names of checks that passed on the original and fail now; empty: no flag)."""
    checks = r1_checks(
        think=think, answer=answer, reference=item.data.get("reference"), language=_language(item)
    )
    edited = think != (item.data.get("think") or "") or answer != (item.data.get("answer") or "")
    checks["broken"] = checks_regressed(original_checks(item), checks) if edited else []
    return checks


CHECK_LABELS = {
    "verifier": "verifier",
    "format_valid": "format valid",
    "language_consistent": "language consistent",
    "longest_paragraph": "longest paragraph",
    "code_blocks": "code blocks in reasoning",
    "summary_present": "summary present",
    "tokens": "length",
}


# What an edit broke, as the flag says it (`checks_regressed` names).
BROKEN_TEXT = {
    "verifier": "the answer no longer matches the reference (verifier)",
    "format_valid": "the <think>/<answer> format",
    "summary_present": "the summary after the reasoning",
    "language_consistent": "language consistency",
}


def broken_text(checks: dict[str, Any] | None) -> list[str]:
    """The checks an edit broke, in words (empty: nothing to flag)."""
    return [BROKEN_TEXT.get(n, n) for n in (checks or {}).get("broken") or []]


def check_rows(checks: dict[str, Any] | None) -> list[dict[str, str]]:
    """A checks dict as rows `{name, label, value, state}`; state is ok, bad, warn or ''."""
    checks = checks or {}
    broken = set(checks.get("broken") or [])
    rows = []
    for name, label in CHECK_LABELS.items():
        if name not in checks:
            continue
        value = checks[name]
        state = ""
        if name == "verifier":
            text, state = (
                ("n/a (no reference)", "")
                if value is None
                else ("correct", "ok")
                if _number(value) >= 1.0
                else ("wrong", "bad")
            )
        elif isinstance(value, bool):
            text, state = ("yes", "ok") if value else ("no", "bad")
            if name == "language_consistent" and "language_share" in checks:
                text += f" ({_number(checks['language_share']):.0%} {checks.get('language', '')})"
        elif name == "longest_paragraph":
            text = f"{value} chars"
            state = "warn" if _number(value) > 2000 else ""
        elif name == "code_blocks":
            text, state = str(value), ("warn" if _number(value) > 0 else "ok")
        elif name == "tokens":
            text = f"{'~' if checks.get('tokens_estimated') else ''}{value} tokens"
        else:
            text = str(value)
        if name in broken:
            state = "bad"
        rows.append({"name": name, "label": label, "value": text, "state": state})
    return rows
