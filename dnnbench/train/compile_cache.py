"""JAX's persistent compilation cache, with checksummed entries and one warning per fault.

JAX trusts its cache files: a damaged entry is reported with a warning each time a program
looks it up (dozens per run) and is never replaced, since JAX does not overwrite an existing
entry. Here JAX's file cache is wrapped (:class:`CheckedCache`): each entry is written with a
header that carries the SHA-256 of its bytes; an entry that is damaged, unreadable or of
another format is deleted, so the program is compiled and the entry written anew, and one
warning says so. A cache that cannot be written (disk full, read-only) is warned about once,
and the run goes on without saving. An unusable cache folder (a file, no permission) turns
both caches off for the process, with one warning.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from dnnbench.files import atomic_write_bytes, folder_problem
from dnnbench.limits import cpu_model
from dnnbench.train import programs

MAGIC = b"dnnbench-xla\n"
Warn = Callable[[str], None]


def _stderr_warning(message: str) -> None:
    print(f"Warning: {message}", file=sys.stderr, flush=True)


class _Once:
    """Calls ``warn`` at most once per key (thread-safe)."""

    def __init__(self, warn: Warn):
        self.warn, self._seen, self._lock = warn, set(), threading.Lock()

    def __call__(self, key: str, message: str) -> None:
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
        self.warn(message)


def seal(value: bytes) -> bytes:
    return MAGIC + hashlib.sha256(value).digest() + value


def unseal(blob: bytes) -> bytes | None:
    """The entry's bytes, or None when they are not what was written."""
    head, digest, value = blob[:len(MAGIC)], blob[len(MAGIC):len(MAGIC) + 32], \
        blob[len(MAGIC) + 32:]
    if head != MAGIC or hashlib.sha256(value).digest() != digest:
        return None
    return value


class CheckedCache:
    """A JAX cache (``get``/``put`` of bytes by key) whose entries carry a checksum."""

    def __init__(self, base, warn_once: Callable[[str, str], None]):
        self._base, self._warn_once = base, warn_once
        self._path = base._path  # JAX's own code reads it

    def _entry_file(self, key: str) -> Path:
        return Path(self._path) / f"{key}-cache"

    def get(self, key: str) -> bytes | None:
        try:
            blob = self._base.get(key)
        except OSError as e:
            blob, why = None, f"unreadable ({e.strerror or e})"
        else:
            if blob is None:
                return None
            value = unseal(blob)
            if value is not None:
                return value
            why = "damaged or of another format"
        try:
            self._entry_file(key).unlink(missing_ok=True)
        except OSError:
            pass
        self._warn_once("damaged", f"the compilation cache {self._path} held {why} entries; "
                        "they are deleted and compiled again")
        return None

    def put(self, key: str, value: bytes) -> None:
        try:
            if getattr(self._base, "eviction_enabled", True):
                self._base.put(key, seal(value))
            elif not self._entry_file(key).exists():  # atomic: a concurrent reader never
                atomic_write_bytes(self._entry_file(key), seal(value))  # sees half an entry
        except OSError as e:
            self._warn_once("write", f"cannot write to the compilation cache {self._path} "
                            f"({e.strerror or e}); compiled programs are not kept")

    def clear(self) -> None:
        self._base.clear()


_enabled: Path | None = None
_wrapped = False


def default_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dnnbench" / "jax"


def machine_folder(folder: Path) -> Path:
    """The folder of JAX's entries under ``folder`` for this kind of CPU: XLA compiles for
    the host's vector instructions, and JAX's own key does not say which (a cache copied to
    another machine, as a CI cache may be, must miss)."""
    tag = hashlib.sha256(str(cpu_model()).encode()).hexdigest()[:12]
    return folder / f"cpu-{tag}"


def _wrap_jax_file_cache(warn_once) -> None:
    """Make JAX build its file cache as a :class:`CheckedCache` (once per process)."""
    global _wrapped
    if _wrapped:
        return
    from jax._src import compilation_cache as cc

    original = cc.get_file_cache

    def get_file_cache(path):
        got = original(path)
        return None if got is None else (CheckedCache(got[0], warn_once), got[1])

    cc.get_file_cache = get_file_cache
    _wrapped = True


def enable_compile_cache(folder: str | Path | None = None,
                         on_warning: Warn | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache (default: <user cache>/dnnbench/jax) and
    keep exported programs beside it (``programs/``). Returns the folder, or None when it is
    unusable (then neither cache is used, and one warning says why)."""
    global _enabled
    import jax

    warn_once = _Once(on_warning or _stderr_warning)
    folder = default_folder() if folder is None else Path(folder)
    if _enabled is not None:
        return _enabled
    problem = folder_problem(folder) or folder_problem(folder.parent / "programs")
    if problem is None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            problem = e.strerror or str(e)
    if problem is not None:
        warn_once("folder", f"compilation cache unusable ({problem}); running without it "
                  "(every program is compiled)")
        programs.use_folder(None)
        return None
    _wrap_jax_file_cache(warn_once)
    jax.config.update("jax_compilation_cache_dir", str(machine_folder(folder)))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    programs.use_folder(folder.parent / "programs", on_warning=warn_once)
    _enabled = folder
    return folder
