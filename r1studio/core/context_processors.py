"""Template context shared by every page: the navigation, filtered by the user's role."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from r1studio.core.roles import ANNOTATOR, RESEARCHER, user_has_role, user_role

# (label, url name, role needed); an item is active when the current path starts with its url.
NAV_ITEMS = [
    ("Recipes", "recipes:list", RESEARCHER),
    ("Runs", "runs:list", RESEARCHER),
    ("Traces", "traces:list", RESEARCHER),
    ("Datasets", "curation:datasets", RESEARCHER),
    ("Annotate", "curation:annotate", ANNOTATOR),
    ("Benchmarks", "evals:benchmarks", RESEARCHER),
    ("Workers", "workers:list", RESEARCHER),
]


def navigation(request: HttpRequest) -> dict[str, Any]:
    """`nav`: the items the user may open, each marked active when it is the current page."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav": [], "user_role": None}
    items = []
    for label, url_name, role in NAV_ITEMS:
        if not user_has_role(user, role):
            continue
        url = reverse(url_name)
        items.append({"label": label, "url": url, "active": request.path.startswith(url)})
    return {"nav": items, "user_role": user_role(user)}
