"""`{% metric_panels run as panels %}`: the run's panels that have data, for `_panels.html`."""

from __future__ import annotations

from typing import Any

from django import template

from r1studio.metrics.panels import PANELS_BY_KEY, group_names, panel_spec
from r1studio.metrics.selectors import run_last_values, run_metric_names

register = template.Library()


@register.simple_tag
def metric_panels(run: Any) -> dict[str, Any]:
    """`items` (panels with data, each with `names`), `other` names, and the panel `spec`.

    A panel with a `rate` series (a generate run's keep rate) gets its last value as `rate`
    and a label, so the caption says it before any script runs.
    """
    items, other = group_names(run_metric_names(run=run))
    rates = [PANELS_BY_KEY[i["key"]].rate for i in items if PANELS_BY_KEY[i["key"]].rate]
    values = run_last_values(run=run, names=rates) if rates else {}
    for item in items:
        rate = PANELS_BY_KEY[item["key"]].rate
        if rate and values.get(rate) is not None:
            item["rate"] = {"label": rate.replace("_", " "), "percent": values[rate] * 100}
    return {"items": items, "other": other, "spec": panel_spec(), "spec_id": f"panel-spec-{run.pk}"}
