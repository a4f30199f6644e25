"""Lineage pages (a run or dataset version walked back to the base model and the raw data)."""

from __future__ import annotations

urlpatterns: list = []
