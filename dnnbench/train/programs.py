"""Exported training programs, kept on disk so that a warm start skips tracing.

JAX's persistent compilation cache skips XLA's compile, but it is keyed by the lowered
program, so every process still traces the Flax model and lowers the whole training program
first: about 1 s per arm (of 1.2-1.6 s) on a warm cache. Here the lowered program of an arm
is also kept, serialized with ``jax.export``, under a key made of everything it depends on:
the arm's spec and the other arguments of ``make_program``, the shapes, dtypes and shardings
of the program's arguments, the source of the code that builds it (``train/``, ``models/``,
``registry.py``, ``spec.py``), the library versions, backend, devices and XLA_FLAGS
(``environment``). A later process with the same key deserializes it instead of tracing;
the persistent cache then supplies the executable. Each file carries the SHA-256 of its
bytes: a file that is damaged, cannot be read or deserialized is replaced (with one warning);
a program that cannot be exported is compiled as it is, and not kept; when the folder cannot
be written (disk full), programs are no longer kept, with one warning. Programs whose construction involves functions (the custom optimizers of transfer
learning) are not kept: their behaviour is not captured by a key of plain values. At most
MAX_KEPT programs are kept; the least recently used are deleted first.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from dnnbench import package_root, package_versions
from dnnbench.files import atomic_write_bytes, sha256_file
from dnnbench.limits import cpu_model
from dnnbench.train.engine import Control, SeedInputs, Trace

# The parts of the package whose source builds a training program (relative to the package).
PROGRAM_SOURCES = ("train", "models", "registry.py", "spec.py")
FORMAT = 2  # 2: a checksum header (MAGIC + SHA-256) before the program
MAGIC = b"dnnbench-program\n"
MAX_KEPT = 256  # kept programs (~40 KB each); the least recently used beyond it are deleted

for _t in (Control, SeedInputs, Trace):
    jax.export.register_namedtuple_serialization(_t, serialized_name=f"dnnbench.{_t.__name__}")

_folder: Path | None = None
_warn: Callable[[str, str], None] = lambda key, message: None


def use_folder(folder: Path | None,
               on_warning: Callable[[str, str], None] | None = None) -> None:
    """Keep exported programs in ``folder`` (None: keep none); ``on_warning(key, message)``
    is told of damaged files and write failures (``key`` names the kind of fault)."""
    global _folder, _warn
    _folder = None if folder is None else Path(folder)
    if on_warning is not None:
        _warn = on_warning


def _read(path: Path):
    """The kept program at ``path``, or None when absent or untrustworthy (then warned)."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        why = f"cannot be read ({e.strerror or e})"
    else:
        head, digest, payload = blob[:len(MAGIC)], blob[len(MAGIC):len(MAGIC) + 32], \
            blob[len(MAGIC) + 32:]
        why = "is damaged (checksum mismatch)"
        if head == MAGIC and hashlib.sha256(payload).digest() == digest:
            try:
                exported = jax.export.deserialize(bytearray(payload))
                os.utime(path)  # recently used: pruned last
                return exported
            except Exception:  # noqa: BLE001 - of another version: export it again
                why = "cannot be deserialized"
    _warn(f"program {path.name}", f"kept program {path} {why}; building it again")
    return None


def _keep(path: Path, blob: bytes) -> None:
    """Write a program file; on a write failure stop keeping programs (one warning)."""
    global _folder
    try:
        atomic_write_bytes(path, MAGIC + hashlib.sha256(blob).digest() + blob)
        prune(path.parent)
    except OSError as e:
        _warn("programs write", f"cannot keep exported programs in {path.parent} "
              f"({e.strerror or e}); going on without keeping them")
        _folder = None


@functools.cache
def source_digest(parts: tuple[str, ...] = PROGRAM_SOURCES) -> str:
    """SHA-256 (16 hex digits) of the package's source files under ``parts``."""
    root = package_root()
    h = hashlib.sha256()
    for part in parts:
        p = root / part
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p] if p.exists() else []
        for f in files:
            h.update(f"{f.relative_to(root).as_posix()}:{sha256_file(f)}\n".encode())
    return h.hexdigest()[:16]


def _plain(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _arg_specs(args) -> list:
    def spec(a):
        sharding = getattr(a, "sharding", None)
        return [list(a.shape), str(a.dtype), None if sharding is None else repr(sharding)]
    leaves, tree = jax.tree_util.tree_flatten(args)
    return [str(tree), [spec(a) for a in leaves]]


@functools.cache
def environment() -> dict:
    """The versions of jax, jaxlib, flax and optax, the backend, devices, x64 and XLA_FLAGS:
    what, besides the code, may change a program or its numbers."""
    versions = package_versions("jax", "jaxlib", "flax", "optax")
    devices = jax.devices()
    backend = jax.default_backend()
    return {"libraries": versions, "backend": backend,
            "device_kind": devices[0].device_kind if devices else None,
            "device_count": len(devices), "x64": bool(jax.config.jax_enable_x64),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            # XLA compiles CPU code for the host's vector instructions
            "cpu": cpu_model() if backend == "cpu" else None}


def prune(folder: Path, keep: int | None = None) -> list[Path]:
    """Delete all but the ``keep`` (default MAX_KEPT) most recently used kept programs (each
    code change makes new ones; the old ones would otherwise pile up). Returns the deleted."""
    keep = MAX_KEPT if keep is None else keep
    files = []
    for p in folder.glob("*.jaxexport"):
        try:
            files.append((p.stat().st_mtime, p))
        except FileNotFoundError:  # pruned by another process meanwhile
            pass
    files.sort(reverse=True)
    gone = []
    for _, p in files[keep:]:
        p.unlink(missing_ok=True)
        gone.append(p)
    return gone


def program_key(build: dict[str, Any], args) -> str | None:
    """The key of a program built from ``build`` (plain values) for ``args``, or None when
    it cannot be kept (a value that is not plain, e.g. a function)."""
    if not all(_plain(v) for v in build.values()):
        return None
    material = json.dumps({"format": FORMAT, "build": build, "args": _arg_specs(args),
                           "code": source_digest(), "environment": environment()},
                          sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def compile_program(fn: Callable, args, key: str | None):
    """``jax.jit(fn)`` lowered and compiled for ``args``; through a kept exported program
    when ``key`` is given and a folder is in use (exported and kept on a miss)."""
    path = None if key is None or _folder is None else _folder / f"{key}.jaxexport"
    if path is not None:
        exported = _read(path)
        if exported is None:
            try:
                exported = jax.export.export(jax.jit(fn))(*args)
                blob = bytes(exported.serialize())
            except Exception:  # noqa: BLE001 - a program export cannot take: compile it as is
                return jax.jit(fn).lower(*args).compile()
            _keep(path, blob)
        fn = exported.call
    return jax.jit(fn).lower(*args).compile()
