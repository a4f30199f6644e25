"""Small display filters for run pages."""

from __future__ import annotations

from django import template

register = template.Library()

STATUS_BADGES = {
    "draft": "badge-off",
    "queued": "badge-queued",
    "running": "badge-running",
    "finished": "badge-ok",
    "failed": "badge-bad",
    "cancelled": "badge-off",
    "lost": "badge-bad",
}


@register.filter
def duration(seconds: float | None) -> str:
    """`3725` → "1 h 2 min"; "" for None."""
    if seconds is None:
        return ""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.filter
def status_badge(status: str) -> str:
    """The badge class of a run status."""
    return STATUS_BADGES.get(status, "")


@register.simple_tag
def elapsed(start, end=None) -> str:
    """Wall time between two datetimes (or until now) as `duration` writes it."""
    from django.utils import timezone

    if start is None:
        return ""
    return duration(((end or timezone.now()) - start).total_seconds())
