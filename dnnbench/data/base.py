"""The in-memory data set every experiment consumes: plain numpy arrays, three splits."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np


class DataError(Exception):
    """A data file is missing, corrupt or fails its integrity check (message is user-facing)."""


class DataUnavailable(DataError):
    """A data set cannot be obtained from any of the places it is looked for."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Train / validation / test splits as float32 features in [0, 1] (or standardized) and int32 labels.

    x_* have shape (n, d) (images flattened), y_* shape (n,) with values in 0..n_classes-1.
    ``hashes`` maps file names (or a descriptive key) to SHA-256 hex digests of the source bytes,
    ``source`` says where the data came from (a folder, "scikit-learn", "procedural seed=0", ...).
    ``fingerprint`` is a short stable hash of the arrays themselves, used to key cached results.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    hashes: dict[str, str]
    source: str
    class_names: tuple[str, ...] = ()
    requested: str | None = None  # the data set asked for, when this one stands in for it
    fallback_reason: str | None = None  # why it stands in (the requested one is unavailable)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (x, y) of split ``name`` in {"train", "val", "test"}."""
        return {"train": (self.x_train, self.y_train), "val": (self.x_val, self.y_val),
                "test": (self.x_test, self.y_test)}[name]

    @functools.cached_property  # (0.2 s for MNIST; the arrays are never changed in place)
    def fingerprint(self) -> str:
        import hashlib

        h = hashlib.sha256(self.name.encode())
        for a in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            a = np.ascontiguousarray(a)
            h.update(str((a.shape, a.dtype.str)).encode())
            h.update(a.tobytes())
        return h.hexdigest()[:16]
