"""Pretraining as the transfer protocol's ``pretext`` (issue 30, F): model A learns the other
classes, reconstructs every image (an autoencoder: the loss ``reconstruction``, labels
unused) or predicts the quarter turns each image was given (an auxiliary task whose labels
come from the images), and B-on-A starts from its hidden layers. On constructed data: the
reconstruction loss against hand-computed values, an autoencoder that learns a
low-dimensional structure the per-feature mean cannot reproduce, the rotation task's images
and labels, and B-on-A starting from the autoencoder's trained encoder."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dnnbench import choices, definition, registry
from dnnbench.data import tasks
from dnnbench.data.base import Dataset
from dnnbench.definition.settings import PROTOCOL_SETTINGS
from dnnbench.run import transfer as exp
from dnnbench.spec import RunSpec
from dnnbench.train import arm as trainer
from dnnbench.train.engine import per_example


def test_the_reconstruction_loss_compares_the_outputs_with_the_inputs():
    out = np.array([[0.2, 0.5, 1.0], [0.0, 0.0, 0.0]], np.float32)
    x = np.array([[0.25, 0.5, 0.0], [0.0, 0.3, 0.05]], np.float32)
    labels = jnp.array([7, 3])  # never read
    loss, right = per_example(jnp.asarray(out), labels, "reconstruction", jnp.asarray(x))
    np.testing.assert_allclose(loss, ((out - x) ** 2).mean(-1), rtol=1e-6)
    # within 0.1 of the input: 2 of 3 features, then 2 of 3 (0.3 is off by 0.3)
    np.testing.assert_allclose(right, [2 / 3, 2 / 3], rtol=1e-6)
    grad = jax.grad(lambda o: per_example(o, labels, "reconstruction", jnp.asarray(x))[0].sum())(
        jnp.asarray(out))
    np.testing.assert_allclose(grad, 2 * (out - x) / 3, atol=1e-6)  # d/do mean (o - x)^2
    assert registry.LOSSES["reconstruction"].outputs(10, 784) == 784
    with pytest.raises(ValueError, match="needs the number of input features"):
        registry.LOSSES["reconstruction"].outputs(10)


def _low_rank(n: int, d: int = 16, rank: int = 2, seed: int = 0) -> np.ndarray:
    """Points in [0, 1]^d on a rank-``rank`` plane through 0.5 (plus tiny noise)."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, rank)))[0]
    z = rng.uniform(-0.6, 0.6, size=(n, rank))
    return np.clip(0.5 + z @ basis.T + 0.005 * rng.normal(size=(n, d)), 0, 1).astype(np.float32)


def test_an_autoencoder_learns_structure_the_mean_image_cannot_reproduce():
    """Data on a 2-d plane in 16 dimensions: the autoencoder's test reconstruction error
    (the engine's evaluation of the reconstruction loss) falls far below the error of the
    per-feature mean, the best constant output; a 2-unit bottleneck suffices in principle.
    Labels are random (and unused): the loss never reads them."""
    x = _low_rank(1500)
    y = np.random.default_rng(1).integers(0, 10, len(x)).astype(np.int32)
    data = Dataset("plane", x[:1000], y[:1000], x[1000:1250], y[1000:1250], x[1250:], y[1250:],
                   10, {}, "constructed")
    spec = RunSpec(widths=(32, 4, 32), activation="tanh", init="glorot-uniform",
                   loss="reconstruction", optimizer="adam", learning_rate=0.01, batch_size=50,
                   max_steps=600, eval_every=100, eval_split="val", target=0.0,
                   stop_at_target=False)
    res = trainer.train_arm(spec, data, range(3), timing=False, return_params=True)
    mean_error = float(((data.x_test - data.x_train.mean(0)) ** 2).mean())
    test_loss = np.asarray(res.trace.test_loss)
    assert test_loss.shape == (3,) and np.all(test_loss < 0.1 * mean_error), (
        test_loss, mean_error)
    head = res.trace.params["head"]["kernel"]
    assert head.shape == (3, 32, 16)  # one linear output per input feature
    assert np.all(np.asarray(res.trace.test_acc) > 0.9)  # features within 0.1


def test_the_rotation_task_turns_each_image_and_labels_its_quarter_turns():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 9)).astype(np.float32)  # 3x3 images
    y = rng.integers(0, 10, 40).astype(np.int32)
    data = Dataset("img", x[:20], y[:20], x[20:30], y[20:30], x[30:], y[30:], 10, {}, "c")
    task = tasks.rotation_task(data)
    assert task.n_classes == 4 and task.name == "img"
    for split in ("train", "val", "test"):
        xs, k = data.split(split)[0], task.split(split)[1]
        turned = task.split(split)[0]
        assert set(np.unique(k)) <= {0, 1, 2, 3}
        for img, t, q in zip(xs, turned, k, strict=True):
            np.testing.assert_array_equal(t.reshape(3, 3), np.rot90(img.reshape(3, 3), q))
    assert len(np.unique(task.y_train)) > 1  # a real task: several turns drawn
    again = tasks.rotation_task(data)  # the same draw in every run
    np.testing.assert_array_equal(again.y_train, task.y_train)
    flat = Dataset("flat", x[:20, :8], y[:20], x[20:30, :8], y[20:30], x[30:, :8], y[30:], 10,
                   {}, "c")
    with pytest.raises(ValueError, match="square images"):
        tasks.rotation_task(flat)


def test_the_pretexts_and_the_setting_name_the_same_tasks():
    assert tuple(exp.PRETEXTS) == choices.PRETEXTS
    assert PROTOCOL_SETTINGS["pretext"].names == choices.PRETEXTS
    assert registry.LOSSES[exp.PRETEXTS["autoencoder"].loss].reconstructs


PRE = """
name = "pre"
protocol = "transfer"
dataset = "digits"
[base]
widths = [16, 16]
optimizer = "adam"
learning_rate = 0.003
batch_size = 16
pair = "3v5"
epochs_a = 2
train_size = 32
reuse_layers = 2
freeze_epochs = 2
unfreeze_epochs = 0
[factors]
pretext = ["classes", "autoencoder", "rotation"]
stage = ["A", "B", "B-on-A"]
"""


def test_b_on_a_starts_from_the_autoencoders_trained_encoder(tmp_path):
    """One model A per pretext (each its own unit), trained on its own task: the classes
    outside the pair, every training image reconstructed (784 -> 64 here: digits' 8x8), every
    image's quarter turns; B-on-A's reused layers are A's trained hidden layers, and frozen
    throughout they stay A's."""
    from dnnbench.data import load_dataset

    data = load_dataset("digits")
    path = tmp_path / "pre.toml"
    path.write_text(PRE)
    e = definition.load(str(path))
    groups = exp.plan(e, data, range(2))
    assert [g.cfg.pretext for g in groups] == list(choices.PRETEXTS)
    assert len(exp.sources(groups)) == 3  # an A per pretext

    calls = []
    real = trainer.compile_arm

    class Recording:  # a compiled arm whose trainings are recorded
        def __init__(self, spec, task, seeds, **kwargs):
            self.spec, self.compiled = spec, real(spec, task, seeds, **kwargs)

        def train(self, *, data, init_params=None, **kwargs):
            result = self.compiled.train(data=data, init_params=init_params, **kwargs)
            calls.append((self.spec, data, {} if init_params is None else
                          {"init_params": init_params}, result))
            return result

    mp = pytest.MonkeyPatch()
    mp.setattr(trainer, "compile_arm", Recording)  # several units: shared programs
    try:
        frames = [u.compute() for u in exp.build_file_units(e, data, range(2), timing=False)]
    finally:
        mp.undo()
    a_calls = [c for c in calls if c[0].loss != "sigmoid"]
    assert [c[0].loss for c in a_calls] == ["softmax", "reconstruction", "softmax"]
    classes, auto, rotation = (c[1] for c in a_calls)
    assert classes.n_classes == 8  # without the pair's images
    assert len(classes.y_train) == (~np.isin(data.y_train, (3, 5))).sum()
    assert len(auto.y_train) == len(data.y_train) and auto.n_classes == 10  # every image
    assert rotation.n_classes == 4 and len(rotation.y_train) == len(data.y_train)
    assert a_calls[1][3].trace.params["head"]["kernel"].shape[-1] == data.n_features
    on_auto = next(c for c in calls[calls.index(a_calls[1]):] if "init_params" in c[2])
    for layer in ("hidden_0", "hidden_1"):  # the autoencoder's trained layers, per seed
        for leaf in ("kernel", "bias"):
            np.testing.assert_array_equal(on_auto[2]["init_params"][layer][leaf],
                                          a_calls[1][3].trace.params[layer][leaf])
    runs = {p: r for p, (r, _) in zip(choices.PRETEXTS, frames, strict=True)}
    a_rows = {p: r[r["stage"] == "A"].iloc[0] for p, r in runs.items()}
    assert a_rows["autoencoder"]["train_examples"] == len(data.y_train)
    assert a_rows["classes"]["train_examples"] < len(data.y_train)
    assert (runs["autoencoder"]["pretext"] == "autoencoder").all()


def test_rotation_needs_square_images(tmp_path):
    from dnnbench.data import load_dataset

    data = load_dataset("synthetic", n_train=300, n_val=60, n_test=60, n_features=8)
    path = tmp_path / "pre.toml"
    path.write_text(PRE.replace('"digits"', '"synthetic"'))
    with pytest.raises(definition.ExperimentError, match="pretext rotation needs square"):
        exp.plan(definition.load(str(path)), data, range(2))
