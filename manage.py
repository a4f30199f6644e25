#!/usr/bin/env python
"""Django's command-line utility for R1 Studio (`python manage.py studio` starts everything)."""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run a management command; a malformed environment variable ends it with one line."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "r1studio.settings")
    from django.core.management import execute_from_command_line

    from r1studio.env import EnvError

    try:
        execute_from_command_line(sys.argv)
    except EnvError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
