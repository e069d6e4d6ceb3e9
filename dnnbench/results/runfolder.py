"""The folder a run writes into: one run at a time, results never replaced by other settings.

- :func:`locked` holds an exclusive ``flock`` on ``<out>/.dnnbench-lock`` for the whole run; a
  second run into the same folder is refused at once (:class:`FolderInUse`), so two runs never
  do the same work or overwrite each other. The kernel releases the lock when the process
  ends, however it ends, so a killed run never leaves a stale lock.
- The *settings* of a run are everything that makes its numbers (experiment, data set
  fingerprint, configuration, ``--quick``...), not how it was typed; their digest
  (:func:`settings_digest`) is stored in the metadata file. :func:`replaced_run` tells whether
  an existing result set was made with other settings (a metadata file written before the
  digest existed is compared by the same keys).
- :class:`RunRecord` (``run.json`` beside the run's saved units) keeps the first start time of
  an unfinished run, and every resume, until its results are written.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from dnnbench.files import atomic_write_text

LOCK_NAME = ".dnnbench-lock"


class LockFailed(OSError):
    """The lock file could not be written (a full disk, a read-only file system)."""


class FolderInUse(Exception):
    """Another process holds the folder's lock (one-line message)."""


@contextlib.contextmanager
def locked(folder: str | Path, holder: str) -> Iterator[None]:
    """Hold ``folder``'s lock (created with the folder if missing); FolderInUse when taken.

    ``holder`` (e.g. the command line) is written into the lock file for the refusal message."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 1000).decode("utf-8", "replace").strip() or "another process"
            raise FolderInUse(f"{folder} is in use by another dnnbench run ({other}); wait for "
                              "it to finish, or choose another --out") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}: {holder}\n".encode(), 0)
        except OSError as e:  # a full disk: nothing is left behind, one line is said
            (folder / LOCK_NAME).unlink(missing_ok=True)
            raise LockFailed(f"cannot write the lock file {folder / LOCK_NAME}: "
                             f"{e.strerror or e}") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _plain_json(obj):
    """``obj`` as it reads back from the metadata file (tuples become lists, and so on)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def settings_digest(settings: dict) -> str:
    """A stable digest (16 hex digits) of a run's settings, equal across processes."""
    text = json.dumps(_plain_json(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(old, new, limit: int = 6) -> list[str]:
    """The settings that differ between two (nested) tables, as ``key: old -> new`` lines
    (dotted keys, sorted; at most ``limit``, then how many more)."""
    def flat(value, prefix=""):
        if isinstance(value, dict):
            return {k: v for key, sub in value.items()
                    for k, v in flat(sub, f"{prefix}{key}.").items()}
        return {prefix.rstrip("."): value}

    a, b = flat(_plain_json(old or {})), flat(_plain_json(new or {}))
    missing = "(none)"
    out = [f"{k}: {json.dumps(a.get(k, missing))} -> {json.dumps(b.get(k, missing))}"
           for k in sorted(set(a) | set(b)) if a.get(k, missing) != b.get(k, missing)]
    return out[:limit] + ([f"... and {len(out) - limit} more"] if len(out) > limit else [])


def run_settings(experiment: str, fingerprint: str, meta: dict) -> dict:
    """The settings of a run: experiment, data set fingerprint, and the command's ``meta``
    (configuration, ``--quick``, ...)."""
    return {"experiment": experiment, "dataset": fingerprint, **meta}


class DamagedMetadata(Exception):
    """A result set's metadata file exists but cannot be read as a JSON table (the message says
    what is wrong with it)."""


def _stored_meta(meta_path: Path) -> dict | None:
    """The metadata file at ``meta_path`` (None when absent); DamagedMetadata when it cannot
    be read as a JSON table."""
    if not meta_path.exists():
        return None
    if not meta_path.is_file():
        raise DamagedMetadata("is not a file")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DamagedMetadata(f"cannot be read ({e.strerror or e})") from None
    except (UnicodeDecodeError, ValueError):
        raise DamagedMetadata("is not valid JSON (damaged or cut short)") from None
    if not isinstance(meta, dict):
        raise DamagedMetadata("is not a JSON table")
    return meta


def replaced_run(meta_path: str | Path, settings: dict) -> str | None:
    """None when the result set of ``meta_path`` is absent or was made with ``settings``;
    else a short description of the run that made it (its command and metadata file).
    DamagedMetadata when its metadata file cannot be read."""
    meta_path = Path(meta_path)
    meta = _stored_meta(meta_path)
    if meta is None:
        return None
    stored = meta.get("settings_digest")
    if not isinstance(stored, str):  # written before settings digests: the same keys
        dataset = meta.get("dataset")
        old = {k: meta.get(k) for k in settings}
        old["dataset"] = dataset.get("fingerprint") if isinstance(dataset, dict) else dataset
        stored = settings_digest(old)
    if stored == settings_digest(settings):
        return None
    command = meta.get("command")
    return f"{command!r} ({meta_path})" if isinstance(command, str) else str(meta_path)


class RunRecord:
    """``run.json`` in ``folder``: the start of an unfinished run of one settings digest and
    the times it was resumed. :meth:`begin` -> (started, resumed); :meth:`finish` removes it."""

    def __init__(self, folder: str | Path, digest: str):
        self.path = Path(folder) / "run.json"
        self.digest = digest

    def begin(self, now: str, *, fresh: bool) -> tuple[str, list[str]]:
        record = None
        if not fresh:
            try:
                record = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError):
                record = None
        if (isinstance(record, dict) and record.get("settings_digest") == self.digest
                and isinstance(record.get("started"), str)
                and isinstance(record.get("resumed"), list)):
            started, resumed = record["started"], [*record["resumed"], now]
        else:
            started, resumed = now, []
        atomic_write_text(self.path, json.dumps(
            {"settings_digest": self.digest, "started": started, "resumed": resumed}) + "\n")
        return started, resumed

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)
