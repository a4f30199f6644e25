"""Who hears that a run ended: the registry that lets recipes follow runs without runs knowing.

A recipe starts its next stages when a run ends; `runs` sits below `recipes` (STYLE.md 10), so
the recipes app registers, in its `AppConfig.ready`:

    run_ended_register(key="recipes", handler=recipe_run_ended)

`runs_ended(run_ids)` is called by runs once a final status (finished, failed, cancelled, lost)
is committed: at the end of the supervisor, on the cancel of a queued run, and by the lost-run
sweeps. A handler gets `run_ids` (a list), must be quick (enqueue a task, do not work there)
and never breaks the caller: its errors are logged and swallowed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

RunEndedHandler = Callable[..., Any]  # handler(*, run_ids: list[int]) -> None

_registry: dict[str, RunEndedHandler] = {}


def run_ended_register(*, key: str, handler: RunEndedHandler) -> None:
    """Call `handler(run_ids=[...])` after runs end; one handler per `key` (re-registering
    replaces it)."""
    _registry[key] = handler


def _call(run_ids: list[int]) -> None:
    for key, handler in list(_registry.items()):
        try:
            handler(run_ids=run_ids)
        except Exception:
            logger.exception("run-ended handler %r failed for runs %s", key, run_ids)


def runs_ended(run_ids: Iterable[int]) -> None:
    """Tell the registered handlers that `run_ids` ended, once the current transaction (if any)
    has committed, so that they read the final status."""
    ids = sorted({int(pk) for pk in run_ids})
    if ids and _registry:
        transaction.on_commit(lambda: _call(ids))
