"""Scores reported in the DeepSeek-R1 paper: the leaderboard's reference rows and chart lines.

Source: DeepSeek-AI, "DeepSeek-R1: Incentivizing Reasoning Capability in LLMs via Reinforcement
Learning", arXiv:2501.12948 (January 2025) — Table 2 (DeepSeek-R1-Zero), Table 4 (DeepSeek-R1)
and Table 5 (the distilled models). pass@1 in percent, averaged over k samples per problem at
temperature 0.6 and top-p 0.95 with up to 32,768 generated tokens (the paper's protocol; k
between 4 and 64 depending on the benchmark's size).

Benchmarks go by the short names the studio stores (`aime24`, `math500`, as in
`pipeline.data.PRESET_FILES`); `benchmark_key` maps the usual spellings onto them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SOURCE = "DeepSeek-R1 paper (arXiv:2501.12948), Tables 2, 4 and 5"
SOURCE_URL = "https://arxiv.org/abs/2501.12948"
PROTOCOL = "pass@1 over k samples, temperature 0.6, top-p 0.95, up to 32,768 tokens"

# Benchmarks the paper reports for all of these models, in the order its tables use.
BENCHMARKS = ("aime24", "math500")
BENCHMARK_TITLES = {"aime24": "AIME 2024", "math500": "MATH-500"}


@dataclass(frozen=True)
class Reference:
    """One model's reported pass@1 (percent) per benchmark short name."""

    model: str
    table: str
    pass_at_1: dict[str, float]


REFERENCES: tuple[Reference, ...] = (
    Reference("DeepSeek-R1", "Table 4", {"aime24": 79.8, "math500": 97.3}),
    Reference("DeepSeek-R1-Zero", "Table 2", {"aime24": 71.0, "math500": 95.9}),
    Reference("DeepSeek-R1-Distill-Llama-70B", "Table 5", {"aime24": 70.0, "math500": 94.5}),
    Reference("DeepSeek-R1-Distill-Qwen-32B", "Table 5", {"aime24": 72.6, "math500": 94.3}),
    Reference("DeepSeek-R1-Distill-Qwen-14B", "Table 5", {"aime24": 69.7, "math500": 93.9}),
    Reference("DeepSeek-R1-Distill-Llama-8B", "Table 5", {"aime24": 50.4, "math500": 89.1}),
    Reference("DeepSeek-R1-Distill-Qwen-7B", "Table 5", {"aime24": 55.5, "math500": 92.8}),
    Reference("DeepSeek-R1-Distill-Qwen-1.5B", "Table 5", {"aime24": 28.9, "math500": 83.9}),
)

_ALIASES = {
    "aime24": "aime24",
    "aime2024": "aime24",
    "math500": "math500",
    "mathtest500": "math500",
}


def benchmark_key(name: str) -> str:
    """The short name of a benchmark as the references use it (else the name unchanged).

    >>> benchmark_key("AIME 2024"), benchmark_key("MATH-500"), benchmark_key("gsm8k")
    ('aime24', 'math500', 'gsm8k')
    """
    squashed = re.sub(r"[^a-z0-9]", "", name.lower())
    return _ALIASES.get(squashed, name)


def references_for(benchmark: str) -> list[dict[str, object]]:
    """`[{"label", "value"}]`: the reported pass@1 of each model on `benchmark`, as a 0-1
    fraction like the studio's own pass@1 (empty for a benchmark the paper does not report)."""
    key = benchmark_key(benchmark)
    return [
        {"label": ref.model, "value": round(ref.pass_at_1[key] / 100, 6)}
        for ref in REFERENCES
        if key in ref.pass_at_1
    ]
