import numpy as np

from dnnbench.data import digits


def test_split_sizes_and_stratification():
    ds = digits.load()
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (1257, 180, 360)
    assert ds.n_features == 64 and ds.x_train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(ds.y_val), [18] * 10)
    assert np.bincount(ds.y_test, minlength=10).min() >= 35
    assert np.bincount(ds.y_test, minlength=10).max() <= 37


def test_split_is_fixed_and_disjoint():
    from sklearn.datasets import load_digits

    y = load_digits().target
    a, b = digits.split_indices(y), digits.split_indices(y)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    allidx = np.concatenate(a)
    assert len(allidx) == len(np.unique(allidx)) == 1797
    assert digits.load().fingerprint == digits.load().fingerprint
