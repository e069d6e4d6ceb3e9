"""The user cache folder and atomic file writes.

The cache is ``$XDG_CACHE_HOME/dnnbench`` (``~/.cache/dnnbench`` when ``XDG_CACHE_HOME`` is
unset or empty); data sets live in subfolders named after them (``mnist/``, ``fashion-mnist/``).
Files are written to a temporary file in the destination folder and renamed into place with
``os.replace``, so a reader never sees a partial file, even if the writer is interrupted.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/dnnbench``, default ``~/.cache/dnnbench`` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dnnbench"


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes ``path`` only if the ``with`` block succeeds.

    The temporary file sits next to ``path`` (same file system, so the rename is atomic) and is
    removed when the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + ``os.replace``)."""
    with atomic_writer(path) as f:
        f.write(data)
