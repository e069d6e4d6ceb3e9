import numpy as np
import pytest

from dnnbench.data import (
    DATASETS,
    STD_FLOOR,
    DataError,
    Dataset,
    DataUnavailable,
    dataset_status,
    load_dataset,
    resolve_dataset,
)
from dnnbench.data.mnist import FILES


def test_names():
    assert list(DATASETS) == ["mnist", "fashion-mnist", "digits", "synthetic"]


def test_unknown_name():
    with pytest.raises(ValueError, match="choose from mnist, fashion-mnist, digits, synthetic"):
        load_dataset("cifar")


@pytest.mark.parametrize("name", ["digits", "synthetic"])
def test_offline_sets_contract(name):
    ds = load_dataset(name)
    assert isinstance(ds, Dataset) and ds.name == name and ds.hashes and ds.source
    for split in ("train", "val", "test"):
        x, y = ds.split(split)
        assert x.dtype == np.float32 and y.dtype == np.int32 and x.ndim == 2 and len(x) == len(y)
        assert x.min() >= 0.0 and x.max() <= 1.0 and set(np.unique(y)) <= set(range(ds.n_classes))


def test_mnist_via_registry(fake_mnist):
    root, hashes = fake_mnist
    ds = load_dataset("mnist", data_dir=root, download=False, expected_hashes=hashes, n_val=10)
    assert ds.hashes == hashes and ds.source == str(root / "mnist")


def test_standardize_uses_train_statistics():
    raw = load_dataset("synthetic", n_train=300, seed=3)
    ds = load_dataset("synthetic", n_train=300, seed=3, standardize=True)
    np.testing.assert_allclose(ds.x_train.mean(0), 0.0, atol=1e-5)
    std = np.maximum(raw.x_train.std(0), STD_FLOOR)
    np.testing.assert_allclose(ds.x_test, (raw.x_test - raw.x_train.mean(0)) / std, atol=1e-5)
    assert "standardized" in ds.source and ds.hashes == raw.hashes


def test_standardize_constant_feature_is_finite():
    ds = load_dataset("digits", standardize=True)  # pixel 0 is always 0 in digits
    assert np.isfinite(ds.x_train).all() and np.abs(ds.x_test).max() < 1e3


def test_fallback_when_default_unavailable(data_env):
    messages = []
    ds = resolve_dataset(None, "mnist", download=False, on_fallback=messages.append)
    assert ds.name == "digits"
    assert len(messages) == 1 and "'mnist' is not available" in messages[0]
    assert "Continuing on 'digits'" in messages[0]


def test_no_fallback_when_default_available(fake_mnist):
    root, hashes = fake_mnist
    ds = resolve_dataset(None, "mnist", data_dir=root, download=False, expected_hashes=hashes,
                         n_val=10, on_fallback=pytest.fail)
    assert ds.name == "mnist"


def test_explicit_request_is_not_replaced(data_env):
    with pytest.raises(DataUnavailable, match="--dataset digits"):
        resolve_dataset("mnist", "mnist", download=False, on_fallback=pytest.fail)


def test_corrupt_files_never_fall_back(fake_mnist):
    root, _ = fake_mnist  # canonical hashes do not match the generated files
    with pytest.raises(DataError, match="SHA-256 mismatch") as e:
        resolve_dataset(None, "mnist", data_dir=root, download=False, on_fallback=pytest.fail)
    assert not isinstance(e.value, DataUnavailable)


def test_dataset_status(fake_mnist, data_env):
    root, _ = fake_mnist
    status = {n: dataset_status(n, root)["status"] for n in DATASETS}
    assert status == {"mnist": f"found: {root / 'mnist'}", "fashion-mnist": "missing",
                      "digits": "bundled (scikit-learn)", "synthetic": "procedural"}
    row = dataset_status("mnist")
    assert row["shape"] == "28x28 (784)" and row["classes"] == 10 and row["status"] == "missing"
    assert len(FILES) == 4
