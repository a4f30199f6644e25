"""How a bench script reports its targets: one PASS or FAIL line each, and its exit status.

A script collects ``(label, passed)`` pairs for its targets (constants at its top) and returns
``verdict(checks)`` from ``main()``: 0 when every target passed, else 1.
"""

from __future__ import annotations


def verdict(checks: list[tuple[str, bool]], title: str = "targets") -> int:
    """Print each check as PASS or FAIL; 0 when all passed (and there was one), else 1."""
    print(f"{title}:")
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    failed = sum(1 for _, ok in checks if not ok)
    if not checks:
        print("  FAIL  nothing was checked")
    return 1 if failed or not checks else 0
