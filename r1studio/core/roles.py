"""Roles: the three groups every user belongs to one of, and the checks views use.

A role is a Django group. Roles are ranked (admin > researcher > annotator): a page that needs
the researcher role is open to admins too. Superusers pass every check. The permissions each
group holds are listed in `ROLE_PERMISSIONS` and applied by `roles_sync()` (services.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

ADMIN = "admin"
RESEARCHER = "researcher"
ANNOTATOR = "annotator"
ROLES = (ADMIN, RESEARCHER, ANNOTATOR)
ROLE_RANK = {ANNOTATOR: 1, RESEARCHER: 2, ADMIN: 3}
ROLE_HELP = {
    ADMIN: "everything, including users and roles",
    RESEARCHER: "configure and launch runs, read traces, curate datasets, run benchmarks",
    ANNOTATOR: "the annotation queue only",
}

# "app_label.codename"; "*" means every permission there is. Later apps add their model
# permissions here (e.g. "runs.add_run" for researchers) and `manage.py roles` applies them.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    ADMIN: ["*"],
    RESEARCHER: [
        "core.research",
        "core.curate",
        "core.annotate",
        "workers.view_workerheartbeat",
    ],
    ANNOTATOR: ["core.annotate"],
}

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponse])


def user_role(user: Any) -> str | None:
    """The highest role the user holds, or None for anonymous users and users with no role."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return ADMIN
    names = getattr(user, "_r1_role_names", None)
    if names is None:
        names = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._r1_role_names = names  # cached for the request; the user object is per request
    if not names:
        return None
    return max(names, key=ROLE_RANK.__getitem__)


def user_has_role(user: Any, role: str) -> bool:
    """True when the user's role ranks at least as high as `role`."""
    held = user_role(user)
    return held is not None and ROLE_RANK[held] >= ROLE_RANK[role]


def require_role(user: Any, role: str, what: str) -> None:
    """Raise PermissionDenied naming `what` needs `role` unless the user holds it (services use
    this; views use `role_required`)."""
    if not user_has_role(user, role):
        raise PermissionDenied(f"{what} need the {role} role.")


def role_required(role: str) -> Callable[[ViewFunc], ViewFunc]:
    """View decorator: 403 unless the signed-in user holds `role` (or a higher one).

    Anonymous users never get here: LoginRequiredMiddleware sends them to the login page first.
    """
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not user_has_role(request.user, role):
                raise PermissionDenied(f"This page needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator
