"""Core registers nothing: users and groups use Django's own admin."""

from __future__ import annotations
