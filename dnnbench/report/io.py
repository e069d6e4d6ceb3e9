"""Atomic, schema-versioned result files: ``<exp>-<dataset>-runs.csv``, ``-curves.csv``, ``-meta.json``.

Every file is written to a temporary file in the same folder and renamed over the target, so a
reader never sees a half-written CSV or JSON, even if the process dies mid-write.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

SCHEMA_VERSION = 1


class SchemaError(Exception):
    """A result file has an unknown schema version or lacks required columns (user-facing)."""


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_csv(path: str | Path, df: pd.DataFrame) -> None:
    atomic_write_text(path, df.to_csv(index=False, lineterminator="\n"))


def write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def result_paths(out: str | Path, experiment: str, dataset: str) -> dict[str, Path]:
    stem = Path(out) / f"{experiment}-{dataset}"
    return {"runs": Path(f"{stem}-runs.csv"), "curves": Path(f"{stem}-curves.csv"),
            "meta": Path(f"{stem}-meta.json")}


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    """Versions, backend and device of this process (for the metadata file)."""
    import importlib.metadata as md

    import jax

    versions = {}
    for pkg in ("dnnbench", "jax", "jaxlib", "flax", "optax", "numpy", "pandas", "scipy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    devices = jax.devices()
    return {"versions": versions, "backend": jax.default_backend(),
            "devices": [str(d) for d in devices], "device_kind": devices[0].device_kind,
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "git_commit": _git_commit()}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_results(out: str | Path, experiment: str, dataset, runs: pd.DataFrame,
                  curves: pd.DataFrame, meta: dict) -> dict[str, Path]:
    """Write the three files of an experiment; returns their paths."""
    paths = result_paths(out, experiment, dataset.name)
    write_csv(paths["runs"], runs)
    write_csv(paths["curves"], curves)
    full_meta = {"schema_version": SCHEMA_VERSION, "experiment": experiment,
                 "dataset": {"name": dataset.name, "source": dataset.source,
                             "hashes": dataset.hashes, "fingerprint": dataset.fingerprint,
                             "n_train": len(dataset.y_train), "n_val": len(dataset.y_val),
                             "n_test": len(dataset.y_test)},
                 **environment(), **meta}
    write_json(paths["meta"], full_meta)
    return paths


def read_results(runs_path: str | Path, required: list[str] | tuple[str, ...] = ()):
    """Read a runs CSV and its meta JSON; SchemaError (one line) if unknown schema or columns missing."""
    runs_path = Path(runs_path)
    meta_path = runs_path.with_name(runs_path.name.replace("-runs.csv", "-meta.json"))
    if not meta_path.exists():
        raise SchemaError(f"{runs_path}: metadata file {meta_path.name} is missing")
    meta = json.loads(meta_path.read_text())
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise SchemaError(f"{meta_path}: unknown schema version {version!r} "
                          f"(this dnnbench reads version {SCHEMA_VERSION})")
    df = pd.read_csv(runs_path)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SchemaError(f"{runs_path}: missing columns: {', '.join(missing)}")
    return df, meta
