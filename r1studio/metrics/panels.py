"""Chart panels: which series go on which panel of the run page and the compare page.

A panel lists regular expressions over series names (TRL's names). The same list is sent to
the browser (`panel_spec()`), where charts.js uses it to open a panel when a series appears
during a live run, so the two sides cannot disagree. The expressions are written in the subset
Python and JavaScript agree on.
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
    log_y: bool = False
    compiled: tuple[re.Pattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", tuple(re.compile(p) for p in self.patterns))

    def matches(self, name: str) -> bool:
        return any(p.search(name) for p in self.compiled)


PANELS: tuple[Panel, ...] = (
    Panel(
        "reward",
        "Reward",
        (r"^reward$", r"^rewards/[^/]+/mean$"),
        "Total (weighted) reward and the mean of each reward function.",
    ),
    Panel("reward_std", "Reward std", (r"^reward_std$", r"^rewards/[^/]+/std$")),
    Panel(
        "zero_std",
        "Groups with zero reward std",
        (r"^frac_reward_zero_std$",),
        "Share of prompt groups whose completions all earned the same reward (no signal).",
    ),
    Panel(
        "length",
        "Completion length",
        (r"^completions/(mean|min|max)_length$", r"^completions/(mean|min|max)_terminated_length$"),
        "Completion length in tokens: mean, min and max.",
    ),
    Panel(
        "clipped",
        "Clipped completions",
        (r"^completions/clipped_ratio$",),
        "Share of completions cut off at max_completion_length.",
    ),
    Panel("kl", "KL", (r"^kl$",), "KL divergence to the reference model."),
    Panel("entropy", "Entropy", (r"^entropy$",)),
    Panel(
        "clip_ratio", "Clip ratios", (r"^clip_ratio/",), "Share of tokens clipped by PPO's ratio."
    ),
    Panel("loss", "Loss", (r"^loss$", r"^eval_loss$")),
    Panel("grad_norm", "Grad norm", (r"^grad_norm$",)),
    Panel("learning_rate", "Learning rate", (r"^learning_rate$",)),
    Panel("token_accuracy", "Token accuracy", (r"^mean_token_accuracy$",)),
    Panel(
        "eval",
        "Benchmark pass@1",
        (r"^eval/[^/]+/pass@1$",),
        "pass@1 of each benchmark evaluated during the run.",
    ),
)
PANELS_BY_KEY = {p.key: p for p in PANELS}


def panel_spec() -> list[dict[str, Any]]:
    """The panels as JSON for charts.js."""
    return [
        {"key": p.key, "title": p.title, "patterns": list(p.patterns), "help": p.help}
        for p in PANELS
    ]


def group_names(names: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Panels that have data (each with the names on it, in panel order) and leftover names."""
    used: set[str] = set()
    panels = []
    for panel in PANELS:
        on_panel = [n for n in names if panel.matches(n)]
        if on_panel:
            used.update(on_panel)
            panels.append(
                {"key": panel.key, "title": panel.title, "help": panel.help, "names": on_panel}
            )
    return panels, [n for n in names if n not in used]


def panel_names(key: str, names: list[str]) -> list[str]:
    """The names among `names` that go on panel `key` (none for an unknown key)."""
    panel = PANELS_BY_KEY.get(key)
    return [n for n in names if panel.matches(n)] if panel else []
