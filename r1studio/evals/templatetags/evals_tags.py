"""Filters for benchmark scores: pass@1 as percent points, its standard error as ± points."""

from __future__ import annotations

import math
from typing import Any

from django import template

register = template.Library()


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@register.filter
def points(value: Any) -> str:
    """A 0-1 fraction as percent points with one decimal: `0.798` → `79.8`; `—` unknown."""
    number = _number(value)
    return "—" if number is None else f"{number * 100:.1f}"


@register.filter
def plus_minus(se: Any) -> str:
    """A standard error (0-1) as `± 8.4`; empty when unknown."""
    number = _number(se)
    return "" if number is None else f"± {number * 100:.1f}"


@register.filter
def reported(value: Any) -> str:
    """A paper's number, already in percent: `79.8`; `—` when it did not report one."""
    number = _number(value)
    return "—" if number is None else f"{number:.1f}"
