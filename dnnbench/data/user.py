"""A user's own data set: an ``.npz`` file or a plug-in, checked on load.

``--dataset path/to/file.npz`` (or ``dataset = "path/to/file.npz"`` in an experiment file)
reads the arrays ``x_train, y_train, x_val, y_val, x_test, y_test``, or ``x, y`` which are
then split 80% / 10% / 10% (train / validation / test) by a permutation with seed 0
(:data:`SPLIT_SEED`), the same on every machine; ``class_names`` (strings) may name the
classes. ``--dataset package.module:load`` (or ``path/to/file.py:load``) calls ``load()``,
which returns a mapping with the same keys (or a :class:`~dnnbench.data.base.Dataset`).

Checks, each a one-line :class:`~dnnbench.data.base.DataError`: the keys are there; features
are numbers, finite, of one shape per example (images are flattened); labels are whole
numbers 0 .. K-1 with K >= 2, one per example; no split is empty. Features are used as given
(float32; scale them, or set ``standardize = true``). The result's name (used in file names)
is the file's stem or the plug-in's module and attribute (``mydata.load``); its ``hashes`` record the file's SHA-256, or
the arrays' digest and the plug-in's import path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dnnbench.choices import is_user_dataset
from dnnbench.data.base import DataError, Dataset, DataUnavailable

__all__ = ["is_user_dataset", "load_user"]

SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
SPLIT_SEED = 0
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


def _name(text: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._]+", "_", text).strip("._") or "data"
    return safe[:60]


def _split(x: np.ndarray, y: np.ndarray, where: str) -> dict[str, np.ndarray]:
    n = len(x)
    if n < 10:
        raise DataError(f"{where}: {n} examples; x and y need at least 10 to be split into "
                        "train, validation and test")
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    a = round(n * SPLIT_FRACTIONS[0])
    b = a + round(n * SPLIT_FRACTIONS[1])
    parts = {"train": order[:a], "val": order[a:b], "test": order[b:]}
    return {f"{k}_{s}": arr[idx] for s, idx in parts.items() for k, arr in (("x", x), ("y", y))}


def _checked(arrays: Mapping, where: str, name: str, hashes: dict[str, str],
             source: str) -> Dataset:
    if all(k in arrays for k in ("x", "y")) and not any(k in arrays for k in SPLITS):
        x, y = np.asarray(arrays["x"]), np.asarray(arrays["y"])
        if len(x) != len(y):
            raise DataError(f"{where}: x holds {len(x)} examples but y {len(y)} labels")
        arrays = {**_split(x, y, where), **{k: v for k, v in arrays.items()
                                            if k not in ("x", "y")}}
    missing = [k for k in SPLITS if k not in arrays]
    if missing:
        raise DataError(f"{where}: missing arrays {', '.join(missing)} (give x_train, y_train, "
                        "x_val, y_val, x_test, y_test, or x and y to be split)")
    out, n_features, n_classes = {}, None, 0
    for split in ("train", "val", "test"):
        x, y = np.asarray(arrays[f"x_{split}"]), np.asarray(arrays[f"y_{split}"])
        if x.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
            raise DataError(f"{where}: x_{split} and y_{split} must hold numbers "
                            f"(found {x.dtype} and {y.dtype})")
        if x.ndim < 2 or y.ndim != 1:
            raise DataError(f"{where}: x_{split} must be (examples, features...) and y_{split} "
                            f"(examples,), found shapes {x.shape} and {y.shape}")
        if len(x) != len(y) or not len(x):
            raise DataError(f"{where}: x_{split} holds {len(x)} examples and y_{split} "
                            f"{len(y)} labels (they must match and not be empty)")
        x = x.reshape(len(x), -1).astype(np.float32)
        if n_features is not None and x.shape[1] != n_features:
            raise DataError(f"{where}: x_{split} has {x.shape[1]} features, x_train "
                            f"{n_features}")
        n_features = x.shape[1]
        if not np.isfinite(x).all():
            raise DataError(f"{where}: x_{split} holds NaN or infinite values")
        if (y != np.round(y)).any() or (y < 0).any():
            raise DataError(f"{where}: y_{split} must hold class numbers 0, 1, 2, ... "
                            f"(found {y[(y != np.round(y)) | (y < 0)][0]!r})")
        out[f"x_{split}"], out[f"y_{split}"] = x, y.astype(np.int32)
        n_classes = max(n_classes, int(y.max()) + 1)
    if n_classes < 2:
        raise DataError(f"{where}: the labels name {n_classes} class; a classifier needs 2 "
                        "or more")
    names = arrays.get("class_names")
    names = tuple(str(c) for c in np.asarray(names).tolist()) if names is not None else ()
    if names and len(names) != n_classes:
        raise DataError(f"{where}: class_names names {len(names)} classes, the labels "
                        f"{n_classes}")
    return Dataset(name=name, n_classes=n_classes, hashes=hashes, source=source,
                   class_names=names, **out)


def load_user(spec: str) -> Dataset:
    """The data set a .npz file or a plug-in gives (see the module); DataUnavailable for a
    file or plug-in that cannot be had, DataError for arrays that fail the checks."""
    if spec.endswith(".npz"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise DataUnavailable(f"--dataset {spec}: no such file")
        data = path.read_bytes()
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
            raise DataError(f"{spec}: not a readable .npz file of plain arrays ({e})") from None
        return _checked(arrays, spec, _name(path.stem),
                        {path.name: hashlib.sha256(data).hexdigest()}, str(path))
    from dnnbench.registry import load_plugin

    try:
        fn = load_plugin(spec, "data set")
    except ValueError as e:
        raise DataUnavailable(str(e)) from None
    try:
        got = fn()
    except Exception as e:  # noqa: BLE001 - a user's plug-in: one line naming it
        raise DataError(f"data set plug-in {spec!r} raised {type(e).__name__}: {e}") from None
    if isinstance(got, Dataset):
        return got
    if not isinstance(got, Mapping):
        raise DataError(f"data set plug-in {spec!r} returned a {type(got).__name__}, not a "
                        "mapping of arrays (x_train, y_train, ... or x, y) or a Dataset")
    module, _, attr = spec.rpartition(":")
    stem = Path(module).stem if module.endswith(".py") else module.rpartition(".")[2]
    ds = _checked(got, f"data set plug-in {spec!r}", _name(f"{stem}.{attr}"), {}, spec)
    return dataclasses.replace(ds, hashes={"plugin": spec, "arrays": ds.fingerprint})
