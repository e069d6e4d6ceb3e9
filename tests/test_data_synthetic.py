import numpy as np
import pytest

from dnnbench.data.synthetic import synthetic


def test_shapes_and_ranges():
    ds = synthetic(n_train=123, n_val=45, n_test=67, n_features=7, n_classes=4, seed=1)
    assert ds.x_train.shape == (123, 7) and ds.x_val.shape == (45, 7) and ds.x_test.shape == (67, 7)
    assert ds.n_classes == 4 and set(np.unique(ds.y_train)) == {0, 1, 2, 3}
    assert ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0 and ds.x_train.dtype == np.float32


def test_deterministic_per_seed():
    assert synthetic(seed=5).fingerprint == synthetic(seed=5).fingerprint
    assert synthetic(seed=5).fingerprint != synthetic(seed=6).fingerprint
    assert synthetic(seed=5).hashes == synthetic(seed=5).hashes


def test_learnable_but_not_linear():
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    ds = synthetic()
    knn = KNeighborsClassifier(5).fit(ds.x_train, ds.y_train).score(ds.x_test, ds.y_test)
    lin = LogisticRegression(max_iter=500).fit(ds.x_train, ds.y_train).score(ds.x_test, ds.y_test)
    assert knn > 0.9  # the classes are well separated ...
    assert lin < knn - 0.03  # ... but not linearly: depth has something to do


def test_bad_arguments():
    with pytest.raises(ValueError):
        synthetic(n_classes=1)
