"""Template tags the dataset app offers other pages.

`{% traces_to_dataset_form %}` draws the trace browser's "Add these traces to a dataset" form:
the trace list's template loads it, so that the traces app never imports this one (templates
may name any app's tags and URLs; Python imports go one way, STYLE.md 10).
"""

from __future__ import annotations

from typing import Any

from django import template

from r1studio.curation.forms import TracesToDatasetForm
from r1studio.curation.from_traces import MAX_TRACES
from r1studio.curation.models import Dataset

register = template.Library()
DATALIST_NAMES = 200


@register.inclusion_tag("curation/_from_traces.html", takes_context=True)
def traces_to_dataset_form(context: template.Context) -> dict[str, Any]:
    """The form, posting the list's current filters (`filter_suffix`) to `curation:from_traces`."""
    names = Dataset.objects.order_by("name").values_list("name", flat=True)[:DATALIST_NAMES]
    return {
        "form": TracesToDatasetForm(),
        "filter_suffix": context.get("filter_suffix", ""),
        "filtered": context.get("filtered", False),
        "csrf_token": context.get("csrf_token"),
        "names": list(names),
        "max_traces": MAX_TRACES,
    }
