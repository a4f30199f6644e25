"""The trace filters, defined once: the trace browser's form, the export, the API and the
selectors all take a `TraceFilters` (the run itself is chosen apart: a select on the page, the
path in the API)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# What `r1studio.traces.search` matches, on SQLite and PostgreSQL alike.
SEARCH_HELP = (
    "Word search in the prompt and completion: every word must occur (case does not matter); "
    'words joined by punctuation or in quotes are a phrase (re-check, "let me check"); '
    "a trailing * matches a prefix (verif*). Not a substring search."
)
MAX_STEP = 2**31 - 1
SOURCES = {"train": "training samples", "probe": "probe prompts", "eval": "evaluations"}


class TraceFilters(BaseModel):
    """Which traces: a step range, a reward range, correct or not, the source, a word search."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    step_min: int | None = Field(None, ge=0, le=MAX_STEP, description="First step.")
    step_max: int | None = Field(None, ge=0, le=MAX_STEP, description="Last step.")
    reward_min: float | None = Field(None, description="Lowest total reward.")
    reward_max: float | None = Field(None, description="Highest total reward.")
    correct: bool | None = Field(None, description="Only correct (true) or incorrect (false).")
    source: Literal["train", "probe", "eval"] | None = Field(
        None, description="train: training samples; probe: fixed probe prompts; eval: evaluations."
    )
    q: str | None = Field(None, max_length=200, description=SEARCH_HELP)

    @field_validator("reward_min", "reward_max")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("q")
    @classmethod
    def _words(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    def selector_kwargs(self) -> dict[str, Any]:
        """The set filters, as `traces_filtered` / `traces_page` keyword arguments."""
        return self.model_dump(exclude_none=True)
