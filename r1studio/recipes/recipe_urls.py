"""Recipe pages (the list, a recipe's graph, the editor)."""

from __future__ import annotations

urlpatterns: list = []
