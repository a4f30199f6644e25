"""Chart panels: which series go on which panel of the run page and the compare page.

A panel lists regular expressions over series names (TRL's names). The same list is sent to
the browser (`panel_spec()`), where charts.js uses it to open a panel when a series appears
during a live run, so the two sides cannot disagree. The expressions are written in the subset
Python and JavaScript agree on.

Most panels are lines over steps. A `bars` panel shows the last value of each of its series as
one bar, in the order of its patterns (a generate run's counts, logged once at the end); its
`rate` series is shown as a percentage in the caption instead of as a bar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    patterns: tuple[str, ...]
    help: str = ""
    y_title: str = ""
    log_y: bool = False
    chart: str = "lines"
    rate: str = ""
    compiled: tuple[re.Pattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", tuple(re.compile(p) for p in self.patterns))

    def matches(self, name: str) -> bool:
        return any(p.search(name) for p in self.compiled)

    def order(self, names: list[str]) -> list[str]:
        """`names` by the first pattern each matches, then alphabetically."""
        first = {n: next(i for i, p in enumerate(self.compiled) if p.search(n)) for n in names}
        return sorted(names, key=lambda n: (first[n], n))


PANELS: tuple[Panel, ...] = (
    Panel(
        "reward",
        "Reward",
        (r"^reward$", r"^rewards/[^/]+/mean$"),
        "Total (weighted) reward and the mean of each reward function.",
        "reward",
    ),
    Panel("reward_std", "Reward std", (r"^reward_std$", r"^rewards/[^/]+/std$"), y_title="std"),
    Panel(
        "zero_std",
        "Groups with zero reward std",
        (r"^frac_reward_zero_std$",),
        "Share of prompt groups whose completions all earned the same reward (no signal).",
        "share of groups",
    ),
    Panel(
        "length",
        "Completion length",
        (r"^completions/(mean|min|max)_length$", r"^completions/(mean|min|max)_terminated_length$"),
        "Completion length in tokens: mean, min and max.",
        "tokens",
    ),
    Panel(
        "clipped",
        "Clipped completions",
        (r"^completions/clipped_ratio$",),
        "Share of completions cut off at max_completion_length.",
        "share",
    ),
    Panel(
        "think_first",
        "Starts with <think>",
        (r"^think_first$", r"^eval/[^/]+/think_first$"),
        "Share of completions that open with <think>: in training, and on each benchmark.",
        "share",
    ),
    Panel("kl", "KL", (r"^kl$",), "KL divergence to the reference model.", "KL"),
    Panel("entropy", "Entropy", (r"^entropy$",), y_title="entropy (nats)"),
    Panel(
        "clip_ratio",
        "Clip ratios",
        (r"^clip_ratio/",),
        "Share of tokens clipped by PPO's ratio.",
        "share of tokens",
    ),
    Panel("loss", "Loss", (r"^loss$", r"^eval_loss$"), y_title="loss"),
    Panel("grad_norm", "Grad norm", (r"^grad_norm$",), y_title="norm"),
    Panel("learning_rate", "Learning rate", (r"^learning_rate$",), y_title="learning rate"),
    Panel("token_accuracy", "Token accuracy", (r"^mean_token_accuracy$",), y_title="accuracy"),
    Panel(
        "eval",
        "Benchmark pass@1",
        (r"^eval/[^/]+/pass@1$", r"^eval/pass@1$"),
        "pass@1 of each benchmark evaluated during the run (held-out problems).",
        "pass@1",
    ),
    Panel(
        "generate",
        "Rejection sampling",
        (
            r"^prompts$",
            r"^dropped/decontaminate$",
            r"^samples$",
            # the generate stage's filters, in the order it applies them
            r"^dropped/keep_correct$",
            r"^dropped/mixed_language$",
            r"^dropped/max_length$",
            r"^dropped/max_repetition$",
            r"^dropped/dedup$",
            r"^dropped/max_per_prompt$",
            r"^dropped/",
            r"^kept$",
            r"^keep_rate$",
        ),
        "Prompts and samples in, how many samples each filter dropped (in the order the filters "
        "run), and how many were kept.",
        "count",
        chart="bars",
        rate="keep_rate",
    ),
    Panel(
        "verifiers",
        "Verifier scores",
        (r"^verifiers/[^/]+/mean$",),
        "Mean score each verifier gave the samples, before filtering.",
        "mean score",
        chart="bars",
    ),
)
PANELS_BY_KEY = {p.key: p for p in PANELS}


def panel_spec() -> list[dict[str, Any]]:
    """The panels as JSON for charts.js."""
    return [
        {
            "key": p.key,
            "title": p.title,
            "patterns": list(p.patterns),
            "help": p.help,
            "y_title": p.y_title,
            "log_y": p.log_y,
            "chart": p.chart,
            "rate": p.rate,
        }
        for p in PANELS
    ]


def group_names(names: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Panels that have data (each with the names on it, in panel order) and leftover names."""
    used: set[str] = set()
    panels = []
    for panel in PANELS:
        on_panel = [n for n in names if n not in used and panel.matches(n)]
        if on_panel:
            used.update(on_panel)
            panels.append(
                {
                    "key": panel.key,
                    "title": panel.title,
                    "help": panel.help,
                    "log_y": panel.log_y,
                    "names": panel.order(on_panel),
                }
            )
    return panels, [n for n in names if n not in used]


def panel_names(key: str, names: list[str]) -> list[str]:
    """The names among `names` that go on panel `key`, in the panel's order (none for an unknown
    key)."""
    panel = PANELS_BY_KEY.get(key)
    return panel.order([n for n in names if panel.matches(n)]) if panel else []
