"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes, available offline).

Pixel values 0..16 are scaled to [0, 1] float32 (64 features); labels are int32.

The split is fixed and stratified by class, made with ``sklearn.model_selection.train_test_split``
on the example indices with ``random_state=0``:

* test: 20% of all examples (360);
* validation: 180 of the remaining 1,437 (about 10% of all examples);
* train: the other 1,257.

Within each split the examples keep their original order. ``hashes`` holds the SHA-256 of the raw
``data`` (float64) and ``target`` (int64) arrays as scikit-learn ships them.
"""

from __future__ import annotations

import hashlib

import numpy as np

from dnnbench.data.base import Dataset

N_TEST, N_VAL = 360, 180
SEED = 0


def split_indices(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed stratified (train, val, test) index arrays for labels ``y``, each sorted."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=N_TEST, stratify=y, random_state=SEED)
    train, val = train_test_split(rest, test_size=N_VAL, stratify=y[rest], random_state=SEED)
    return np.sort(train), np.sort(val), np.sort(test)


def load() -> Dataset:
    import sklearn
    from sklearn.datasets import load_digits

    bunch = load_digits()
    raw_x, raw_y = np.asarray(bunch.data), np.asarray(bunch.target)
    hashes = {f"digits.{k}": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
              for k, a in (("data", raw_x), ("target", raw_y))}
    x = (raw_x / 16.0).astype(np.float32)
    y = raw_y.astype(np.int32)
    tr, va, te = split_indices(y)
    return Dataset(name="digits", x_train=x[tr], y_train=y[tr], x_val=x[va], y_val=y[va],
                   x_test=x[te], y_test=y[te], n_classes=10, hashes=hashes,
                   source=f"scikit-learn {sklearn.__version__} load_digits",
                   class_names=tuple(str(d) for d in range(10)))
