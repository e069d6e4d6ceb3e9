"""Data sets: one entry point, :func:`load_dataset`, over the registry :data:`DATASETS`.

A user's own data: a ``.npz`` file or a plug-in ``package.module:load``
(:mod:`dnnbench.data.user`). Names: ``mnist`` and ``fashion-mnist`` (the canonical IDX files, looked up in ``--data-dir``,
``$DNNBENCH_DATA_DIR``, the user cache, then downloaded; see :mod:`dnnbench.data.mnist`),
``digits`` (scikit-learn's bundled 8x8 digits, offline everywhere) and ``synthetic``
(procedural, seeded, any size). :func:`resolve_dataset` adds the offline fallback (to mnist's
files if present, then ``digits``) for experiments whose user did not choose a data set.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from dnnbench import choices
from dnnbench.data import digits, mnist, synthetic, user
from dnnbench.data.base import DataError, Dataset, DataUnavailable

__all__ = [
    "DATASETS",
    "FALLBACK",
    "FALLBACKS",
    "INPUT_SCALINGS",
    "STD_FLOOR",
    "DataError",
    "DataUnavailable",
    "Dataset",
    "dataset_status",
    "load_dataset",
    "resolve_dataset",
    "scale_inputs",
    "standardize_dataset",
]

FALLBACK = "digits"  # available everywhere (bundled with scikit-learn)
# An unavailable default data set is replaced by the first of these that is available.
FALLBACKS = choices.FALLBACKS
STD_FLOOR = 1e-2  # per-feature std below this is raised to it (features are in [0, 1])


def _mnist_family(name: str) -> Callable[..., Dataset]:
    def factory(*, data_dir=None, download=True, **kwargs) -> Dataset:
        return mnist.load(name, data_dir=data_dir, download=download, **kwargs)
    return factory


def _local(load: Callable[..., Dataset]) -> Callable[..., Dataset]:
    def factory(*, data_dir=None, download=True, **kwargs) -> Dataset:  # no files involved
        return load(**kwargs)
    return factory


# name -> factory(*, data_dir=None, download=True, **kwargs) -> Dataset
DATASETS: dict[str, Callable[..., Dataset]] = {
    "mnist": _mnist_family("mnist"),
    "fashion-mnist": _mnist_family("fashion-mnist"),
    "digits": _local(digits.load),
    "synthetic": _local(synthetic.load),
}


def _check(name: str) -> None:
    if name not in DATASETS and not user.is_user_dataset(name):
        raise ValueError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}, "
                         "a file.npz or a plug-in package.module:load")


def standardize_dataset(ds: Dataset) -> Dataset:
    """Return ``ds`` with every split shifted and scaled by the train split's per-feature mean and
    standard deviation (std floored at :data:`STD_FLOOR`, so constant features do not blow up)."""
    mean = ds.x_train.mean(axis=0, dtype=np.float64)
    std = np.maximum(ds.x_train.std(axis=0, dtype=np.float64), STD_FLOOR)

    def f(x: np.ndarray) -> np.ndarray:
        return ((x - mean) / std).astype(np.float32)

    return Dataset(name=ds.name, x_train=f(ds.x_train), y_train=ds.y_train, x_val=f(ds.x_val),
                   y_val=ds.y_val, x_test=f(ds.x_test), y_test=ds.y_test, n_classes=ds.n_classes,
                   hashes=ds.hashes, source=f"{ds.source} (standardized with train statistics)",
                   class_names=ds.class_names)


def _raw_pixels(ds: Dataset) -> Dataset:
    """Every split's features times 255: MNIST's pixel values as stored, [0, 255]."""
    scale = np.float32(255)
    return dataclasses.replace(ds, x_train=ds.x_train * scale, x_val=ds.x_val * scale,
                               x_test=ds.x_test * scale, source=f"{ds.source} (x 255)")


# The scalings of the input features a run may ask for (``RunSpec.inputs``): name -> (what
# it is, data set -> data set); None keeps the features as loaded.
INPUT_SCALINGS: dict[str, tuple[str, Callable[[Dataset], Dataset] | None]] = {
    "unit": ("as loaded: pixel values / 255, in [0, 1]", None),
    "raw": ("raw pixel values in [0, 255] (the loaded features x 255)", _raw_pixels),
    "standardized": ("each feature shifted and scaled by the train split's mean and std",
                     standardize_dataset),
}


def scale_inputs(ds: Dataset, kind: str) -> Dataset:
    """``ds`` with its features scaled as ``kind`` (:data:`INPUT_SCALINGS`) says."""
    if kind not in INPUT_SCALINGS:
        raise ValueError(f"unknown inputs {kind!r}; choose from {', '.join(INPUT_SCALINGS)}")
    scale = INPUT_SCALINGS[kind][1]
    return ds if scale is None else scale(ds)


def load_dataset(name: str, *, data_dir: str | os.PathLike | None = None, download: bool = True,
                 standardize: bool = False, **kwargs: Any) -> Dataset:
    """Load data set ``name`` (one of :data:`DATASETS`).

    ``data_dir`` is the ``--data-dir`` option; ``download`` allows fetching MNIST-family files into
    the cache; ``standardize`` applies train-split standardization; other keyword arguments go to
    the loader (e.g. ``n_train``/``seed`` for ``synthetic``, ``expected_hashes`` for test files).
    Raises ValueError for an unknown name, DataUnavailable when the files cannot be found or
    downloaded (the message says where it looked and what to do), DataError for corrupt files.
    """
    _check(name)
    ds = (user.load_user(name) if name not in DATASETS
          else DATASETS[name](data_dir=data_dir, download=download, **kwargs))
    return standardize_dataset(ds) if standardize else ds



def resolve_dataset(name: str | None, default: str, *, data_dir: str | os.PathLike | None = None,
                    download: bool = True, on_fallback: Callable[[str], None] | None = None,
                    standardize: bool = False, **kwargs: Any) -> Dataset:
    """Load the data set the user chose, or the experiment's default with an offline fallback.

    ``name`` is the ``--dataset`` value (None when the user did not pass it). If it is None and
    ``default`` is unavailable, the first available of :data:`FALLBACKS` is loaded instead (the
    nearest real data set, mnist, from local files only, before ``digits``),
    ``on_fallback(message)`` is called (the CLI prints a warning on stderr), and the result
    records ``requested`` (``default``) and ``fallback_reason``; check ``.name`` for the data
    set actually used. An explicit ``name`` that is unavailable raises DataUnavailable. Corrupt
    files (DataError) never trigger the fallback.
    """
    if name is not None:
        return load_dataset(name, data_dir=data_dir, download=download, standardize=standardize,
                            **kwargs)
    try:
        return load_dataset(default, data_dir=data_dir, download=download,
                            standardize=standardize, **kwargs)
    except DataUnavailable as e:
        reason = " ".join(str(e).split())
    for fallback in (f for f in FALLBACKS if f != default):
        try:
            ds = load_dataset(fallback, data_dir=data_dir, download=False,
                              standardize=standardize)
        except DataUnavailable:
            continue
        if on_fallback is not None:
            on_fallback(f"{reason} Continuing on '{fallback}' instead; results are for "
                        f"'{fallback}', not '{default}'.")
        return dataclasses.replace(ds, requested=default, fallback_reason=reason)
    raise DataUnavailable(reason)  # pragma: no cover - digits is bundled


_INFO = {
    "mnist": ("28x28 (784)", 10),
    "fashion-mnist": ("28x28 (784)", 10),
    "digits": ("8x8 (64)", 10),
    "synthetic": ("any (default 32)", 10),
}


def dataset_status(name: str, data_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Describe ``name`` for ``dnnbench data list``: name, shape, classes and status, where
    status is "found: FOLDER", "cached: FOLDER", "missing", "bundled (scikit-learn)" or
    "procedural". Files are located, not hashed (``dnnbench data verify`` does that)."""
    _check(name)
    shape, classes = _INFO[name]
    if name in mnist.NAMES:
        status = mnist.status(name, data_dir)
    else:
        status = "bundled (scikit-learn)" if name == "digits" else "procedural"
    return {"name": name, "shape": shape, "classes": classes, "status": status}
