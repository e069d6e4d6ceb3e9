"""A user's own model (issue 31): a plug-in factory returning a Flax module (the shipped small
CNN of examples/cnn.py), trained by the engine with seeds and learning rates as lanes of ONE
compiled program; settings of the built-in MLP and broken plug-ins refused with one line
before any training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dnnbench.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FAST = ["--set", "max_steps=20", "--set", "eval_every=10", "--set", "batch_size=16"]


def _images(path: Path, side: int = 8, n: int = 300, classes: int = 3) -> None:
    """Square one-channel images whose class is a bright pixel at a class's place."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, classes, n)
    x = 0.3 * rng.random((n, side * side), dtype=np.float32)
    x[np.arange(n), y * (side * side // classes)] += 3.0
    np.savez(path, x=x, y=y)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A user's folder: the example files copied in, image data beside them."""
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    (tmp_path / "bad.py").write_text(
        "import flax.linen as nn\n"
        "def raises(n):\n    raise RuntimeError('needs a GPU')\n"
        "def not_a_module(n):\n    return 3\n"
        "class Five(nn.Module):\n"
        "    @nn.compact\n"
        "    def __call__(self, x, train=False):\n        return nn.Dense(5)(x)\n"
        "def five(n):\n    return Five()\n")
    _images(tmp_path / "img.npz")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_cnn_plugin_trains_three_learning_rates_in_one_program(folder):
    r = runner.invoke(app, ["run", "examples/cnn-mnist.toml", "--dataset", "img.npz",
                            "--out", "out", *FAST])
    assert r.exit_code == 0, r.output
    runs = pd.read_csv(folder / "out" / "cnn-mnist-img-runs.csv")
    assert len(runs) == 3 * 3 and runs["learning_rate"].nunique() == 3
    assert runs["program"].nunique() == 1 and set(runs["program_lanes"]) == {9}
    assert set(runs["model"]) == {"examples/cnn.py:small_cnn"}
    assert not {"widths", "depth", "activation", "dropout"} & set(runs.columns)  # the MLP's
    assert runs["final_test_accuracy"].between(0, 1).all()
    # the bright pixel gives the class away: the best rate learns it in 20 steps, far from
    # chance (1/3); an engine that did not train the module would stay there
    assert runs.groupby("learning_rate")["final_eval_accuracy"].mean().max() > 0.8
    meta = json.loads((folder / "out" / "cnn-mnist-img-meta.json").read_text())
    plugin = meta["plugins"]["examples/cnn.py:small_cnn"]
    assert plugin["source"] and meta["compiled_programs"] == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "widths=[10]"], ("widths is a setting of the built-in MLP; the model plug-in "
                               "examples/cnn.py:small_cnn does not take it")),
    (["--set", "dropout=0.1"], "dropout is a setting of the built-in MLP"),
    (["--set", "model=bad.py:raises"], ("model plug-in 'bad.py:raises' failed when called as "
                                      "factory(2): RuntimeError: needs a GPU")),
    (["--set", "model=bad.py:not_a_module"], "returned int, not a flax.linen Module"),
    (["--set", "model=bad.py:five"], ("returned logits of shape (2, 5) for a batch of 2, not "
                                     "(2, 3)")),
    (["--dataset", "flat.npz"], ("failed on a batch of inputs of shape (batch, 50): ValueError: "
                                "small_cnn takes square one-channel images, got 50 features")),
    (["--set", "model=bad.py:missing"], "bad.py has no attribute 'missing'"),
])
def test_bad_models_are_refused_with_one_line_before_training(folder, args, message):
    rng = np.random.default_rng(1)
    np.savez(folder / "flat.npz", x=rng.random((200, 50), dtype=np.float32),
             y=rng.integers(0, 10, 200))
    data = [] if "--dataset" in args else ["--dataset", "img.npz"]
    r = runner.invoke(app, ["run", "examples/cnn-mnist.toml", *data, "--out", "out", *FAST,
                            *args])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.output
    assert not (folder / "out").exists()  # nothing trained, nothing written
