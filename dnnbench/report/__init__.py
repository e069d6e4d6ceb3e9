"""Presentation and persistence: CSV/metadata writers, Rich tables and progress, figures."""

from __future__ import annotations


def stderr_console():
    """The Rich console of progress and warnings: wrapped to a terminal, but one line per
    message when stderr is a pipe or a file (a log), never cut at 80 columns."""
    import sys

    from rich.console import Console

    return Console(stderr=True, soft_wrap=not sys.stderr.isatty())
