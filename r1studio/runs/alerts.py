"""Alerts on runs (reward stuck, NaN loss, a stalled process), shown by the runs pages.

The rules read metric series, which `runs` does not own: the metrics app registers them in its
`AppConfig.ready` (`run_alerts_register(provider=runs_alerts)`), so `runs` stays below it. With
nothing registered, runs have no alerts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

AlertsProvider = Callable[..., dict[int, list[Any]]]  # provider(*, runs) -> {run id: alerts}

_provider: list[AlertsProvider] = []


def run_alerts_register(*, provider: AlertsProvider) -> None:
    """Use `provider` for the alerts of runs (registering again replaces it)."""
    _provider[:] = [provider]


def runs_alerts(*, runs: list[Any]) -> dict[int, list[Any]]:
    """`{run id: [alert, ...]}` for `runs` in a bounded number of queries."""
    if not _provider or not runs:
        return {}
    return _provider[0](runs=runs)
