"""Real MNIST (slow tier): needs DNNBENCH_DATA_DIR holding mnist/ with the canonical files."""

import os
from pathlib import Path

import numpy as np
import pytest

from dnnbench.data import load_dataset

pytestmark = pytest.mark.slow

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(scope="module")
def real_mnist():
    root = os.environ.get("DNNBENCH_DATA_DIR")
    if not root or not (Path(root) / "mnist").is_dir():
        pytest.skip("DNNBENCH_DATA_DIR unset or without mnist/")
    return load_dataset("mnist", data_dir=root, download=False)


def test_real_mnist_counts(real_mnist):
    ds = real_mnist
    y_all_train = np.concatenate([ds.y_train, ds.y_val])
    assert len(y_all_train) == 60_000 and len(ds.y_test) == 10_000
    assert (len(ds.y_train), len(ds.y_val)) == (55_000, 5_000)
    assert np.bincount(y_all_train).tolist() == TRAIN_COUNTS
    assert ds.x_train.shape == (55_000, 784) and ds.x_train.dtype == np.float32
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert len(ds.hashes) == 4
