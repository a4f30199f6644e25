"""`{% metric_panels run as panels %}`: the run's panels that have data, for `_panels.html`."""

from __future__ import annotations

from typing import Any

from django import template

from r1studio.metrics.panels import group_names, panel_spec
from r1studio.metrics.selectors import run_metric_names

register = template.Library()


@register.simple_tag
def metric_panels(run: Any) -> dict[str, Any]:
    """`items` (panels with data, each with `names`), `other` names, and the panel `spec`."""
    items, other = group_names(run_metric_names(run=run))
    return {"items": items, "other": other, "spec": panel_spec(), "spec_id": f"panel-spec-{run.pk}"}
