"""Terminal output shared by every component's CLI: tables a script can read whole."""

from __future__ import annotations

import sys

from rich.console import Console


def output_console() -> Console:
    """Tables for people on a terminal; never cut short when piped to a script or file."""
    return Console() if sys.stdout.isatty() else Console(width=250, soft_wrap=True)
