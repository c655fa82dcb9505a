#!/usr/bin/env python
"""Django's command-line utility for Studio."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    from studio.embedded import ensure_environment, stop_at_exit

    # `up` manages the embedded servers' lifetime itself; everything else attaches to them
    # (or starts them and stops them again on exit).
    servers = ensure_environment()
    if sys.argv[1:2] != ["up"]:
        stop_at_exit(servers)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
