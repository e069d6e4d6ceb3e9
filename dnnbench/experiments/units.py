"""Resumable units of work: nothing finished is lost when a sweep is interrupted.

A *unit* is an arm with all its seeds (or, for transfer, a class pair). It is keyed by its
spec hash, the seeds, the dnnbench version and the data set fingerprint; when it finishes its
DataFrames are saved atomically under ``<out>/.dnnbench-units/``. Re-running the same command
skips finished units, so the final files equal those of an uninterrupted run (timing aside).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import dnnbench
from dnnbench.report.io import atomic_write_bytes

Frames = tuple[pd.DataFrame, pd.DataFrame]  # (runs, curves)


@dataclass(frozen=True)
class Unit:
    label: str  # shown in progress, e.g. "depth=5 bn=on"
    key_parts: tuple  # everything that determines the unit's numbers (besides version and data)
    compute: Callable[[], Frames]


class UnitStore:
    def __init__(self, out: str | Path, experiment: str, dataset_name: str, fingerprint: str):
        self.dir = Path(out) / ".dnnbench-units" / f"{experiment}-{dataset_name}"
        self.fingerprint = fingerprint

    def key(self, unit: Unit) -> str:
        blob = json.dumps([dnnbench.__version__, self.fingerprint, *unit.key_parts],
                          sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:20]

    def path(self, unit: Unit) -> Path:
        return self.dir / f"{self.key(unit)}.pkl"

    def load(self, unit: Unit) -> Frames | None:
        p = self.path(unit)
        if not p.exists():
            return None
        try:
            obj = pickle.loads(p.read_bytes())
            return obj["runs"], obj["curves"]
        except Exception:  # a damaged unit file is recomputed, never trusted
            return None

    def save(self, unit: Unit, frames: Frames) -> None:
        atomic_write_bytes(self.path(unit), pickle.dumps({"runs": frames[0], "curves": frames[1]}))

    def clear(self) -> None:
        for p in self.dir.glob("*.pkl"):
            p.unlink()


class Progress:
    """What the runner tells its presenter; the CLI passes a Rich implementation."""

    def start(self, total: int, done: int) -> None: ...
    def unit_started(self, label: str) -> None: ...
    def unit_finished(self, label: str, cached: bool) -> None: ...
    def stop(self) -> None: ...


def run_units(units: Sequence[Unit], store: UnitStore, *, fresh: bool = False,
              progress: Progress | None = None) -> Frames:
    """Compute (or load) every unit in order and concatenate their frames in that order."""
    progress = progress or Progress()
    if fresh:
        store.clear()
    loaded = [store.load(u) for u in units]
    progress.start(len(units), sum(f is not None for f in loaded))
    frames: list[Frames] = []
    try:
        for unit, cached in zip(units, loaded, strict=True):
            if cached is None:
                progress.unit_started(unit.label)
                cached = unit.compute()
                store.save(unit, cached)
                progress.unit_finished(unit.label, cached=False)
            frames.append(cached)
    finally:
        progress.stop()
    runs = pd.concat([f[0] for f in frames], ignore_index=True)
    curves = pd.concat([f[1] for f in frames], ignore_index=True)
    return runs, curves


def count_saved(units: Sequence[Unit], store: UnitStore) -> int:
    return sum(store.path(u).exists() for u in units)
