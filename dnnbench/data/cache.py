"""The user cache folder.

The cache is ``$XDG_CACHE_HOME/dnnbench`` (``~/.cache/dnnbench`` when ``XDG_CACHE_HOME`` is
unset or empty); data sets live in subfolders named after them (``mnist/``, ``fashion-mnist/``).
Files go in with :func:`dnnbench.files.atomic_writer`, so a reader never sees a partial file.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/dnnbench``, default ``~/.cache/dnnbench`` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dnnbench"
