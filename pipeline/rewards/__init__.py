"""Reward functions for GRPO and the graders behind rejection sampling and evaluation.

Every reward is built by name: ``get("accuracy", answer_column="solution")`` returns a function
with TRL's signature ``f(prompts, completions, **kwargs) -> list[float | None]`` whose
``__name__`` is the registry name (TRL logs it as ``rewards/<name>/mean``). ``None`` means
"cannot judge this sample". ``names()`` lists them and ``describe()`` gives one line of help each.

>>> from pipeline import rewards
>>> rewards.get("format")(None, ["<think>x</think><answer>1</answer>"])
[1.0]
"""

from __future__ import annotations

# Importing the modules registers their rewards.
from . import accuracy, coding, formatting, judge, language, length, repetition  # noqa: F401
from ._registry import RewardError, RewardFunc, describe, get, names, params_of
from .accuracy import extract_answer, gold_text, grade, grade_batch

__all__ = [
    "RewardError",
    "RewardFunc",
    "describe",
    "extract_answer",
    "get",
    "gold_text",
    "grade",
    "grade_batch",
    "names",
    "params_of",
]

# The reward mixes of the R1 recipe, as stage configs' `rewards` lists: R1-Zero's rule-based
# accuracy plus a light format reward, and reasoning RL's with language consistency added.
R1_ZERO_REWARDS = [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.2}]
REASONING_REWARDS = [
    {"name": "accuracy", "weight": 1.0},
    {"name": "language_consistency", "weight": 0.1},
    {"name": "format", "weight": 0.2},
]
