"""Admin registrations of `r1studio.curation` (none yet)."""

from __future__ import annotations
