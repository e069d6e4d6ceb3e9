"""Files written so that a reader never sees half of one, and TOML files read with one error.

A file is written to a temporary file in its own folder, flushed to disk and renamed over the
target, so a reader never sees a partial file, even if the writer dies mid-write. A writer
killed with SIGKILL cannot clean up: its temporary file (``.<name>.<host>.<pid>-XXXX.tmp``,
hidden) is removed by the next writer into that folder (:func:`remove_stale_temps`) once that
process is gone. This module depends on nothing else in the package.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<host>[0-9a-f]{8})\.(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (power loss); a no-op where folders can't be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes ``path`` only if the ``with`` block succeeds.

    The data go to a temporary file beside ``path`` (same file system, so the rename is
    atomic), are flushed to disk, and the file is renamed over ``path`` (then the folder entry
    is flushed too). On any failure (KeyboardInterrupt included) the temporary file is removed
    and ``path`` keeps its previous content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_host_tag()}.{os.getpid()}-",
                               suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Remove the temp files that killed writers on this host left in ``folder``; return them.

    Only files named by :func:`atomic_write_bytes` whose process no longer runs are touched, so
    a concurrent writer is never disturbed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    host = _host_tag()
    for p in folder.glob(".*.tmp"):
        m = _TEMP_RE.match(p.name)
        if m and m["host"] == host and int(m["pid"]) != os.getpid() and not _pid_alive(
                int(m["pid"])):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def read_toml(path: str | os.PathLike, error: type[Exception], what: str = "file") -> dict:
    """The TOML document at ``path``; ``error`` (a one-line message) when it is missing or
    not valid TOML."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: not valid TOML ({e})") from None


# ------------------------------------------------------------------ output locations, checked

def folder_problem(path: str | os.PathLike) -> str | None:
    """Why files cannot be written into folder ``path`` (created if missing), or None.

    Checked before any work: an existing file where the folder should be, a path below a
    file, a place this process may not write to (permissions, a read-only file system)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a folder"
    existing = path
    while not existing.exists():  # the nearest existing folder above it
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, so {path} cannot be a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    try:  # a real probe: os.access does not see every refusal (e.g. root on some mounts)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        return f"{existing} is not writable ({e.strerror or e})"
    return None


def file_problem(path: str | os.PathLike) -> str | None:
    """Why file ``path`` cannot be written (its folder is created if missing), or None."""
    path = Path(path)
    if path.is_dir():
        return f"{path} is a folder, not a file"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is not writable"
    return folder_problem(path.parent)
