"""Inputs a config names by reference (`dataset:NAME@N`), resolved by the app that owns them.

A stage reads files; a researcher names a dataset version. `runs` cannot know what
`dataset:cold-start@3` is (curation sits above it, STYLE.md 10), so the app that owns a kind of
reference registers, in its `AppConfig.ready`:

    input_resolver_register(prefix="dataset:", check=..., resolve=..., choices=...)

- `check(*, value) -> str | None`: why the reference cannot be used (no such version), called
  by `config_parse` on create, edit, launch and Check;
- `resolve(*, value, run, field) -> str`: the absolute path the stage reads. With a `run` (the
  supervisor, just before it writes `config.json`) the owner also records that the run used it,
  and gives the same file again on a resume; without (the form's Check) it only looks;
- `choices(*, user, limit) -> [PickerChoice]`: what the config form's picker offers.

The run row keeps the reference (what the researcher chose); only the `config.json` the
pipeline reads holds the path. The pipeline refuses an unresolved reference.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# The config fields that name a dataset file (pipeline.access lists the same paths).
_INPUT_LOC = re.compile(
    r"data\.source|eval\.benchmark|benchmarks\.\d+\.path|filters\.decontaminate\.\d+"
)


class InputError(ValueError):
    """A referenced input that cannot be resolved; the message is shown to the user as is."""


@dataclass(frozen=True)
class InputResolver:
    prefix: str
    check: Callable[..., str | None]
    resolve: Callable[..., str]
    choices: Callable[..., list[Any]] | None = None


_registry: dict[str, InputResolver] = {}


def input_resolver_register(
    *,
    prefix: str,
    check: Callable[..., str | None],
    resolve: Callable[..., str],
    choices: Callable[..., list[Any]] | None = None,
) -> None:
    """Resolve config values starting with `prefix` (registering again replaces it)."""
    _registry[prefix] = InputResolver(prefix, check, resolve, choices)


def _resolver(value: Any) -> InputResolver | None:
    if not isinstance(value, str):
        return None
    return next((r for p, r in _registry.items() if value.startswith(p)), None)


def _walk(value: Any, loc: str = "") -> Iterator[tuple[str, Any, Any, Any]]:
    """(loc, value, container, key) of every string in a config dict."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        here = f"{loc}.{key}" if loc else str(key)
        if isinstance(item, dict | list):
            yield from _walk(item, here)
        elif isinstance(item, str):
            yield here, item, value, key


def config_references(config: dict) -> list[tuple[str, str]]:
    """`[(loc, value)]` of the registered references in a config's input fields."""
    return [
        (loc, value)
        for loc, value, _, _ in _walk(config)
        if _INPUT_LOC.fullmatch(loc) and _resolver(value)
    ]


def config_input_errors(config: dict) -> list[dict[str, str]]:
    """`[{"loc", "msg"}]` for each reference that cannot be used; `[]` when all can."""
    errors = []
    for loc, value in config_references(config):
        msg = _resolver(value).check(value=value)
        if msg:
            errors.append({"loc": loc, "msg": msg})
    return errors


def config_inputs_resolve(config: dict, *, run: Any = None) -> dict:
    """A copy of `config` with each reference replaced by its file (see the module docstring);
    raises InputError when one cannot be resolved."""
    if not config_references(config):
        return config
    out = copy.deepcopy(config)
    for loc, value, container, key in list(_walk(out)):
        resolver = _resolver(value)
        if resolver is not None and _INPUT_LOC.fullmatch(loc):
            container[key] = resolver.resolve(value=value, run=run, field=loc)
    return out


def input_choices(*, user: Any, limit: int = 50) -> list[Any]:
    """What the registered owners offer the config form's dataset picker."""
    return [
        choice
        for resolver in _registry.values()
        if resolver.choices is not None
        for choice in resolver.choices(user=user, limit=limit)
    ]
