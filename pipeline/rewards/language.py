"""Language consistency: the share of the chain of thought written in the target language.

DeepSeek-R1 adds this reward in its reasoning-RL stage because R1-Zero's thoughts drifted between
languages. The paper counts target-language words in the CoT; with no language-ID model here
(nothing may be downloaded) we classify each word by its Unicode script, which separates the
cases that matter in practice (English vs Chinese, Japanese, Korean, Russian ...) but cannot tell
two languages of the same script apart (English vs French both count as Latin).

Words: a run of letters of one script; every Han or kana character counts as one word (Chinese
and Japanese do not separate words with spaces). Math is not language: LaTeX commands
(``\\frac``), single Latin letters (variables) and numbers are skipped.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.template import TAGS, completion_text, parse_completion

from ._registry import RewardFunc, per_sample, register

# Script name -> character class body.
_SCRIPTS = {
    "latin": "A-Za-z\u00c0-\u024f\u1e00-\u1eff",
    "han": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef",
    "kana": "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f",
    "hangul": "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af",
    "cyrillic": "\u0400-\u04ff\u0500-\u052f",
    "greek": "\u0370-\u03ff",
    "arabic": "\u0600-\u06ff\u0750-\u077f",
    "hebrew": "\u0590-\u05ff",
    "devanagari": "\u0900-\u097f",
    "thai": "\u0e00-\u0e7f",
}
# Han and kana are one word per character; the others are runs.
_PER_CHAR = {"han", "kana"}
_WORD = re.compile(
    "|".join(
        f"(?P<{name}>[{chars}]{'' if name in _PER_CHAR else '+'})"
        for name, chars in _SCRIPTS.items()
    )
)
_LATEX_CMD = re.compile(r"\\[A-Za-z]+")

# Target language -> the scripts its words are written in.
LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    **{
        code: frozenset({"latin"})
        for code in ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "pl", "tr", "vi", "id")
    },
    "zh": frozenset({"han"}),
    "ja": frozenset({"han", "kana"}),
    "ko": frozenset({"hangul", "han"}),
    "ru": frozenset({"cyrillic"}),
    "uk": frozenset({"cyrillic"}),
    "el": frozenset({"greek"}),
    "ar": frozenset({"arabic"}),
    "he": frozenset({"hebrew"}),
    "hi": frozenset({"devanagari"}),
    "th": frozenset({"thai"}),
}


def script_words(text: str) -> list[tuple[str, str]]:
    """``(script, word)`` for every word of ``text``, math and tags left out.

    >>> script_words("Let x = 2, 所以 \\\\frac{1}{2}")
    [('latin', 'Let'), ('han', '所'), ('han', '以')]
    """
    for tag in TAGS:
        text = text.replace(tag, " ")
    text = _LATEX_CMD.sub(" ", text)
    words = []
    for match in _WORD.finditer(text):
        script = match.lastgroup or ""
        word = match.group()
        if script == "latin" and len(word) == 1:
            continue  # a variable, not a word
        words.append((script, word))
    return words


def language_share(text: str, language: str = "en") -> float:
    """Share of the words of ``text`` in ``language``'s script (1.0 when there are no words).

    >>> language_share("The sum is 12, 所以")
    0.6
    """
    scripts = LANGUAGE_SCRIPTS[language]
    words = script_words(text)
    if not words:
        return 1.0
    return sum(1 for script, _ in words if script in scripts) / len(words)


@register(
    "language_consistency",
    "Share of the chain-of-thought's words written in the target language (R1's language "
    "consistency reward), by Unicode script. Params: language ('en', 'zh', 'ja', 'ko', 'ru', ...), "
    "think_prefilled.",
)
def language_consistency_reward(
    *, language: str = "en", think_prefilled: bool = False
) -> RewardFunc:
    """Proportion of target-language words in the ``<think>`` block.

    Without a closed think block the whole completion is read. No words (pure math) scores 1.0.

    >>> f = language_consistency_reward(language="en")
    >>> f(None, ["<think>add them up</think><answer>3</answer>", "<think>加起来 then</think>"])
    [1.0, 0.25]
    """
    if language not in LANGUAGE_SCRIPTS:
        raise ValueError(
            f"unknown language {language!r}; known: {', '.join(sorted(LANGUAGE_SCRIPTS))}"
        )

    def score(prompt: Any, completion: Any, row: dict, ids: Any) -> float:
        think = parse_completion(completion, think_prefilled).think
        return language_share(think if think is not None else completion_text(completion), language)

    return per_sample("language_consistency", score)
