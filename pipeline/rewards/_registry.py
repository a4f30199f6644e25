"""The reward registry and the per-sample plumbing every reward shares.

A reward is registered as a *factory*: ``get(name, **params)`` calls it with the params from the
stage config and gets back a TRL reward function ``f(prompts, completions, **kwargs)``. Most
rewards score one completion at a time; :func:`per_sample` turns such a scorer into the batch
function, picks each sample's dataset columns out of TRL's kwargs, and turns an exception on one
sample into ``None`` plus a log line, so one bad sample never stops training.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("pipeline.rewards")

RewardFunc = Callable[..., list[float | None]]

# What the stage hands to the factories that take it, never a param of a config: the run folder
# (for rewards that keep files, like the judge's cache).
CONTEXT_PARAMS = frozenset({"run_dir"})

# Keyword arguments TRL passes that are not per-sample dataset columns.
NON_COLUMN_KWARGS = frozenset(
    {"trainer_state", "log_extra", "log_metric", "completion_ids", "environments"}
)


class RewardError(ValueError):
    """Unknown reward name or bad params; the message names the culprit."""


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., RewardFunc]
    help: str


_REGISTRY: dict[str, _Entry] = {}


def register(
    name: str, help: str
) -> Callable[[Callable[..., RewardFunc]], Callable[..., RewardFunc]]:
    """Register a reward factory under ``name`` with one line of ``help`` for the UI and CLI."""

    def decorator(factory: Callable[..., RewardFunc]) -> Callable[..., RewardFunc]:
        _REGISTRY[name] = _Entry(factory=factory, help=help)
        return factory

    return decorator


def get(name: str, *, run_dir: Any = None, **params: Any) -> RewardFunc:
    """Build the reward function ``name`` with ``params``; its ``__name__`` is ``name``.

    ``run_dir`` is the stage's run folder, passed on to the rewards that take it (see
    ``CONTEXT_PARAMS``). Raises :class:`RewardError` for an unknown name or a param the reward
    does not take.
    """
    entry = _REGISTRY.get(name)
    if entry is None:
        raise RewardError(f"unknown reward {name!r}; known: {', '.join(names())}")
    accepted = params_of(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise RewardError(
            f"reward {name!r} has no param {unknown[0]!r}; "
            f"it takes: {', '.join(accepted) or 'none'}"
        )
    if run_dir is not None and "run_dir" in inspect.signature(entry.factory).parameters:
        params = {**params, "run_dir": run_dir}
    try:
        func = entry.factory(**params)
    except (TypeError, ValueError) as exc:
        raise RewardError(f"reward {name!r}: {exc}") from exc
    func.__name__ = name
    func.__qualname__ = name
    return func


def names() -> list[str]:
    """Registered reward names, sorted."""
    return sorted(_REGISTRY)


def describe() -> dict[str, str]:
    """``{name: one-line help}`` for every registered reward."""
    return {name: _REGISTRY[name].help for name in names()}


def params_of(name: str) -> dict[str, Any]:
    """The params a config may give a reward, with their defaults (``{}`` for an unknown name)."""
    entry = _REGISTRY.get(name)
    if entry is None:
        return {}
    sig = inspect.signature(entry.factory)
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in sig.parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in CONTEXT_PARAMS
    }


def row_columns(kwargs: dict[str, Any], index: int, n: int) -> dict[str, Any]:
    """Sample ``index``'s value of every per-sample column TRL passed (lists of length ``n``)."""
    row = {}
    for key, value in kwargs.items():
        if key in NON_COLUMN_KWARGS:
            continue
        if isinstance(value, list | tuple) and len(value) == n:
            row[key] = value[index]
    return row


def completion_ids_at(kwargs: dict[str, Any], index: int) -> list[int] | None:
    ids = kwargs.get("completion_ids")
    if isinstance(ids, list | tuple) and index < len(ids):
        try:
            return list(ids[index])
        except TypeError:
            return None
    return None


def per_sample(name: str, score: Callable[..., float | None]) -> RewardFunc:
    """Turn ``score(prompt, completion, row, completion_ids) -> float|None`` into a TRL reward.

    ``row`` holds the sample's dataset columns. An exception scores the sample ``None`` and is
    logged with the reward's name; the rest of the batch is still scored.
    """

    def reward(prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float | None]:
        completions = list(completions or [])
        n = len(completions)
        prompts = list(prompts) if isinstance(prompts, list | tuple) else [prompts] * n
        scores: list[float | None] = []
        for i, completion in enumerate(completions):
            prompt = prompts[i] if i < len(prompts) else None
            try:
                value = score(
                    prompt, completion, row_columns(kwargs, i, n), completion_ids_at(kwargs, i)
                )
                scores.append(None if value is None else float(value))
            except Exception:
                logger.exception("reward %s failed on sample %d; scored None", name, i)
                scores.append(None)
        return scores

    reward.__name__ = name
    return reward
