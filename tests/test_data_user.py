"""A user's own data (issue 31): an .npz file (six arrays, or x and y split with seed 0) or a
plug-in returning arrays, checked on load with one line, named and hashed in the metadata."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dnnbench.cli import app
from dnnbench.data import load_dataset
from dnnbench.data.user import SPLIT_FRACTIONS

runner = CliRunner()
TINY = """
name = "tiny"
dataset = "{dataset}"
[base]
widths = [8]
batch_size = 20
max_steps = 30
eval_every = 10
target = 0.5
[factors]
learning_rate = [0.01, 0.1]
"""


def _arrays(n=200, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def test_an_npz_file_is_split_with_a_fixed_seed_and_named_by_its_stem(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y = _arrays()
    np.savez("mine.npz", x=x, y=y, class_names=np.array(["neg", "pos"]))
    ds = load_dataset("mine.npz")
    assert ds.name == "mine" and ds.n_classes == 2 and ds.class_names == ("neg", "pos")
    n = [len(ds.y_train), len(ds.y_val), len(ds.y_test)]
    assert n == [round(200 * f) for f in SPLIT_FRACTIONS] and ds.x_train.dtype == np.float32
    again = load_dataset("mine.npz")
    np.testing.assert_array_equal(again.x_val, ds.x_val)  # the same split every time
    assert set(ds.hashes) == {"mine.npz"}
    # the experiment file names it; the run records it
    (tmp_path / "e.toml").write_text(TINY.format(dataset="mine.npz"))
    r = runner.invoke(app, ["run", "e.toml", "--seeds", "2", "--out", "out"])
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "out" / "tiny-mine-meta.json").read_text())
    assert meta["dataset"]["name"] == "mine" and meta["dataset"]["n_train"] == 160
    assert meta["dataset"]["hashes"]["mine.npz"] == ds.hashes["mine.npz"]
    assert len(pd.read_csv(tmp_path / "out" / "tiny-mine-runs.csv")) == 4


def test_a_plugin_gives_the_arrays(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mydata.py").write_text(
        "import numpy as np\n"
        "def load():\n"
        "    rng = np.random.default_rng(1)\n"
        "    x = rng.normal(size=(100, 4))\n"
        "    return dict(x_train=x[:60], y_train=(x[:60, 0] > 0).astype(int),\n"
        "                x_val=x[60:80], y_val=(x[60:80, 0] > 0).astype(int),\n"
        "                x_test=x[80:], y_test=(x[80:, 0] > 0).astype(int))\n")
    for spec in ("mydata:load", "mydata.py:load"):
        ds = load_dataset(spec)
        assert ds.name == "mydata.load" and len(ds.y_train) == 60 and ds.n_features == 4
        assert ds.hashes["plugin"] == spec and len(ds.hashes["arrays"]) == 16


@pytest.mark.parametrize("arrays, said", [
    ({"x_train": np.zeros((5, 2))}, "missing arrays y_train"),
    ({"x": np.zeros((20, 2)), "y": np.zeros(19)}, "x holds 20 examples but y 19 labels"),
    ({"x": np.full((20, 2), np.nan), "y": np.arange(20) % 2}, "NaN or infinite"),
    ({"x": np.zeros((20, 2)), "y": np.arange(20) % 2 - 1}, "class numbers 0, 1, 2"),
    ({"x": np.zeros((20, 2)), "y": np.full(20, 0.5)}, "class numbers 0, 1, 2"),
    ({"x": np.zeros((20, 2)), "y": np.zeros(20)}, "needs 2 or more"),
    ({"x": np.zeros((4, 2)), "y": np.arange(4) % 2}, "at least 10"),
    ({"x": np.zeros(20), "y": np.arange(20) % 2}, "must be (examples, features...)"),
])
def test_bad_arrays_are_refused_in_one_line(tmp_path, monkeypatch, arrays, said):
    monkeypatch.chdir(tmp_path)
    np.savez("bad.npz", **arrays)
    (tmp_path / "e.toml").write_text(TINY.format(dataset="digits"))
    r = runner.invoke(app, ["run", "e.toml", "--dataset", "bad.npz", "--out", "out"])
    assert r.exit_code == 2, r.output
    assert said in " ".join(r.output.split()) and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_file_bad_plugin_and_bad_name_are_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "e.toml").write_text(TINY.format(dataset="digits"))
    (tmp_path / "p.py").write_text("def load():\n    return [1, 2]\ndef boom():\n    raise OSError('x')\n")
    for ds, said in (("none.npz", "no such file"), ("p.py:load", "returned a list"),
                     ("p.py:boom", "raised OSError"), ("p.py:nope", "has no attribute")):
        r = runner.invoke(app, ["run", "e.toml", "--dataset", ds, "--out", "out"])
        assert r.exit_code == 2 and said in r.output and "Traceback" not in r.output, r.output
    (tmp_path / "f.toml").write_text(TINY.format(dataset="mnst"))
    r = runner.invoke(app, ["run", "f.toml", "--out", "out"])
    assert r.exit_code == 2 and "a file.npz" in " ".join(r.output.split())
