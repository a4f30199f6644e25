"""The API tokens page: make a token (shown once), see and revoke your tokens."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from r1studio.api.models import ApiToken
from r1studio.api.services import api_token_create, api_token_revoke
from r1studio.core.roles import RESEARCHER, role_required


@never_cache
@require_http_methods(["GET", "POST"])
@role_required(RESEARCHER)
def token_list(request: HttpRequest) -> HttpResponse:
    """Your tokens; POST makes a new one and shows it once."""
    new_token = None
    if request.method == "POST":
        _, new_token = api_token_create(user=request.user, name=request.POST.get("name", ""))
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "api/tokens.html", {"tokens": tokens, "new_token": new_token})


@require_POST
@role_required(RESEARCHER)
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = ApiToken.objects.filter(pk=pk, user=request.user).first()
    if token is None:
        raise Http404("No such token")
    api_token_revoke(token=token, user=request.user)
    messages.success(request, f"Token {token.prefix}… revoked.")
    return redirect("api:tokens")
