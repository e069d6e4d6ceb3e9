import os

import numpy as np
import pytest
from conftest import FakeOpener, make_mnist_files

from dnnbench.data import DataError, DataUnavailable, mnist
from dnnbench.data.idx import write_idx
from dnnbench.data.mnist import FILES, SHA256


def test_canonical_tables_complete():
    for name in mnist.NAMES:
        assert set(SHA256[name]) == set(FILES)
        assert all(len(h) == 64 for h in SHA256[name].values())
        assert len(mnist.MIRRORS[name]) >= 2 and len(mnist.CLASS_NAMES[name]) == 10
    assert mnist.CLASS_NAMES["fashion-mnist"][9] == "Ankle boot"


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_load_folder_splits(tmp_path, name):
    hashes = make_mnist_files(tmp_path, n_train=60, n_test=20)
    ds = mnist.load_folder(name, tmp_path, expected_hashes=hashes, n_val=10)
    assert ds.name == name and ds.source == str(tmp_path) and ds.hashes == hashes
    assert (ds.x_train.shape, ds.x_val.shape, ds.x_test.shape) == ((50, 16), (10, 16), (20, 16))
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    # validation is the *last* n_val training images
    np.testing.assert_array_equal(ds.y_val, np.arange(50, 60) % 10)
    assert ds.class_names == mnist.CLASS_NAMES[name]


def test_canonical_hashes_refuse_other_files(tmp_path):
    make_mnist_files(tmp_path)
    with pytest.raises(DataError) as e:
        mnist.load_folder("mnist", tmp_path)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz: SHA-256 mismatch" in msg
    assert SHA256["mnist"][FILES[0]] in msg and mnist.sha256_file(tmp_path / FILES[0]) in msg
    assert "dnnbench data fetch mnist" in msg and "--data-dir" in msg


def test_count_mismatch(tmp_path):
    hashes = make_mnist_files(tmp_path)
    write_idx(tmp_path / FILES[1], np.zeros(59, np.uint8))
    hashes[FILES[1]] = mnist.sha256_file(tmp_path / FILES[1])
    with pytest.raises(DataError, match=r"holds 60 images but .*train-labels-idx1-ubyte\.gz "
                                        r"holds 59 labels"):
        mnist.load_folder("mnist", tmp_path, expected_hashes=hashes, n_val=10)


def test_label_out_of_range(tmp_path):
    hashes = make_mnist_files(tmp_path)
    write_idx(tmp_path / FILES[3], np.array([1, 2, 10] + [0] * 17, np.uint8))
    hashes[FILES[3]] = mnist.sha256_file(tmp_path / FILES[3])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: label 10 at index 2 is "
                                        r"out of range 0\.\.9"):
        mnist.load_folder("mnist", tmp_path, expected_hashes=hashes, n_val=10)


def test_swapped_files_wrong_magic(tmp_path):
    hashes = make_mnist_files(tmp_path)
    os.replace(tmp_path / FILES[0], tmp_path / "x")
    os.replace(tmp_path / FILES[1], tmp_path / FILES[0])
    os.replace(tmp_path / "x", tmp_path / FILES[1])
    hashes[FILES[0]], hashes[FILES[1]] = hashes[FILES[1]], hashes[FILES[0]]
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: wrong magic number"):
        mnist.load_folder("mnist", tmp_path, expected_hashes=hashes, n_val=10)


# --- lookup order --------------------------------------------------------------------------------

def _roots(tmp_path):
    roots = {k: tmp_path / k for k in ("arg", "env")}
    hashes = {k: make_mnist_files(r / "mnist", seed=i) for i, (k, r) in enumerate(roots.items())}
    return roots, hashes


def test_lookup_order(tmp_path, data_env, monkeypatch):
    roots, _ = _roots(tmp_path)
    make_mnist_files(data_env / "mnist", seed=9)
    monkeypatch.setenv("DNNBENCH_DATA_DIR", str(roots["env"]))
    assert mnist.locate("mnist", roots["arg"])[:2] == (roots["arg"] / "mnist", "--data-dir")
    assert mnist.locate("mnist")[:2] == (roots["env"] / "mnist", "DNNBENCH_DATA_DIR")
    monkeypatch.delenv("DNNBENCH_DATA_DIR")
    assert mnist.locate("mnist")[:2] == (data_env / "mnist", "cache")
    assert mnist.status("mnist") == f"cached: {data_env / 'mnist'}"
    assert mnist.status("mnist", roots["arg"]) == f"found: {roots['arg'] / 'mnist'}"


def test_load_uses_data_dir_before_env(tmp_path, data_env, monkeypatch):
    roots, hashes = _roots(tmp_path)
    monkeypatch.setenv("DNNBENCH_DATA_DIR", str(roots["env"]))
    ds = mnist.load("mnist", data_dir=roots["arg"], download=False,
                    expected_hashes=hashes["arg"], n_val=10)
    assert ds.source == str(roots["arg"] / "mnist") and ds.hashes == hashes["arg"]


def test_folder_holding_files_directly(tmp_path, data_env, monkeypatch):
    hashes = make_mnist_files(tmp_path / "mine")
    assert mnist.locate("mnist", tmp_path / "mine")[0] == tmp_path / "mine"
    assert mnist.locate("fashion-mnist", tmp_path / "mine")[0] == tmp_path / "mine"
    # once these are known to be MNIST's files, the folder is not taken for Fashion-MNIST
    monkeypatch.setitem(SHA256, "mnist", hashes)
    folder, _, looked = mnist.locate("fashion-mnist", tmp_path / "mine")
    assert folder is None and any("holds mnist, not fashion-mnist" in s for s in looked)
    assert mnist.locate("mnist", tmp_path / "mine")[0] == tmp_path / "mine"


def test_incomplete_folder_falls_through(tmp_path, data_env):
    make_mnist_files(tmp_path / "arg" / "mnist")
    (tmp_path / "arg" / "mnist" / FILES[3]).unlink()
    make_mnist_files(data_env / "mnist")
    _, origin, looked = mnist.locate("mnist", tmp_path / "arg")
    assert origin == "cache"
    assert any("incomplete, lacks t10k-labels-idx1-ubyte.gz" in s for s in looked)


def test_unavailable_message(tmp_path, data_env):
    with pytest.raises(DataUnavailable) as e:
        mnist.load("mnist", data_dir=tmp_path / "nowhere", download=False)
    msg = str(e.value)
    for part in (str(tmp_path / "nowhere" / "mnist"), str(data_env / "mnist"), "--data-dir",
                 "DNNBENCH_DATA_DIR", "--dataset digits", "download disabled"):
        assert part in msg


# --- downloads -----------------------------------------------------------------------------------

@pytest.fixture
def served(tmp_path):
    hashes = make_mnist_files(tmp_path / "src")
    return {f: (tmp_path / "src" / f).read_bytes() for f in FILES}, hashes


MIRRORS = ("https://one.invalid/", "https://two.invalid/")


def test_fetch_falls_back_to_second_mirror(served, data_env):
    files, hashes = served
    opener = FakeOpener(files, broken=[MIRRORS[0]])
    dest = mnist.fetch("mnist", opener=opener, expected_hashes=hashes, mirrors=MIRRORS,
                       progress=False)
    assert dest == data_env / "mnist"
    assert sorted(os.listdir(dest)) == sorted(FILES)  # no temporary files left behind
    assert opener.calls == [m + f for f in FILES for m in MIRRORS]
    assert mnist.verified_hashes("mnist", dest, hashes) == hashes
    # a second fetch finds them and downloads nothing
    mnist.fetch("mnist", opener=opener, expected_hashes=hashes, mirrors=MIRRORS, progress=False)
    assert len(opener.calls) == 2 * len(FILES)


def test_fetch_rejects_bad_bytes_and_leaves_nothing(served, data_env):
    files, hashes = served
    corrupt = dict(files, **{FILES[0]: files[FILES[0]][:-5]})
    with pytest.raises(DataUnavailable) as e:
        mnist.fetch("mnist", opener=FakeOpener(corrupt, broken=[MIRRORS[0]]),
                    expected_hashes=hashes, mirrors=MIRRORS, progress=False)
    assert "one.invalid" in str(e.value) and "SHA-256 mismatch" in str(e.value)
    assert not (data_env / "mnist").exists() or os.listdir(data_env / "mnist") == []


def test_load_downloads_into_cache_when_allowed(served, data_env, monkeypatch):
    files, hashes = served
    monkeypatch.setattr(mnist, "MIRRORS", {"mnist": MIRRORS})
    with pytest.raises(DataUnavailable):
        mnist.load("mnist", download=False, expected_hashes=hashes)
    ds = mnist.load("mnist", download=True, opener=FakeOpener(files), expected_hashes=hashes,
                    n_val=10, progress=False)
    # recorded without the absolute path of this machine's cache
    assert ds.source == "the dnnbench cache (mnist)" and len(ds.y_train) == 50


def test_load_reports_failed_download(data_env, monkeypatch):
    monkeypatch.setattr(mnist, "MIRRORS", {"mnist": MIRRORS})
    with pytest.raises(DataUnavailable, match=r"could not download .*two\.invalid.*--dataset dig"):
        mnist.load("mnist", opener=FakeOpener({}, broken=MIRRORS), progress=False)


def test_decoded_arrays_are_kept_in_the_cache_and_never_trusted_blindly(tmp_path, data_env,
                                                                       monkeypatch):
    """The IDX files are decoded once; the next load reads the cache's copy of the arrays,
    named by the files' hashes (other files: another copy), and a damaged copy is decoded
    again."""
    folder = tmp_path / "files"
    hashes = make_mnist_files(folder, n_train=60, n_test=20)
    first = mnist.load_folder("mnist", folder, expected_hashes=hashes, n_val=10)
    (copy,) = (data_env / mnist.DECODED).glob("mnist-*.npz")
    monkeypatch.setattr(mnist, "read_idx", lambda *a, **k: pytest.fail("decoded again"))
    again = mnist.load_folder("mnist", folder, expected_hashes=hashes, n_val=10)
    for a in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(again, a), getattr(first, a))
        assert getattr(again, a).dtype == getattr(first, a).dtype
    monkeypatch.undo()
    copy.write_bytes(b"damaged")
    monkeypatch.setenv("XDG_CACHE_HOME", str(data_env.parent))
    third = mnist.load_folder("mnist", folder, expected_hashes=hashes, n_val=10)
    np.testing.assert_array_equal(third.x_train, first.x_train)
    assert copy.stat().st_size > 100  # written again
