"""Admin: API tokens (hashes only; the tokens themselves are never stored)."""

from __future__ import annotations

from django.contrib import admin

from r1studio.api.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "prefix")
    readonly_fields = ("key_hash", "prefix", "created_at", "last_used_at")
