"""Who stores which run event: the registry that keeps `runs` below its consumers.

`runs` owns the Run and the ingestion of its events (r1studio.runs.ingest), but not what the
events mean to the apps above it: metric points, traces, evaluation results, datasets. Each of
those apps registers a handler for the event types it owns in its `AppConfig.ready`:

    event_handler_register(types=("samples", "eval"), key="traces", handler=traces_ingest)

Ingestion calls every handler with the batch's events of its types, inside the transaction that
advances the run's byte offset, so what a handler stores is stored exactly once. A handler
returns a value for the live message under its `key` (the new points, a count) or None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EventHandler = Callable[..., Any]  # handler(*, run, events) -> value for the live message


@dataclass(frozen=True)
class _Registration:
    types: frozenset[str]
    key: str
    handler: EventHandler


_registry: dict[str, _Registration] = {}


def event_handler_register(*, types: tuple[str, ...], key: str, handler: EventHandler) -> None:
    """Hand events of `types` to `handler`; one handler per `key` (registering again replaces
    it, so a reloaded app does not store everything twice)."""
    _registry[key] = _Registration(frozenset(types), key, handler)


def events_dispatch(*, run: Any, events: list[dict]) -> dict[str, Any]:
    """Call each registered handler with its events; returns {key: what it returned}."""
    results: dict[str, Any] = {}
    for registration in _registry.values():
        mine = [event for event in events if event.get("type") in registration.types]
        if mine:
            results[registration.key] = registration.handler(run=run, events=mine)
    return results
