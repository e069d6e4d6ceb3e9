"""The loss registry (issue 30): cross-entropy, the binary logistic head and the quadratic
cost, their gradients against hand-computed values, two-class softmax as logistic
regression; momentum's terminal velocity; an arm trained with the quadratic cost."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest
from typer.testing import CliRunner

from dnnbench import choices, definition, registry
from dnnbench.cli import app
from dnnbench.train.engine import per_example

LOGITS = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]], np.float32)
LABELS = np.array([0, 2])


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _grad(kind):
    return np.asarray(jax.grad(lambda z: per_example(z, jnp.asarray(LABELS), kind)[0].sum())(
        jnp.asarray(LOGITS)))


def test_the_registry_and_the_setting_name_the_same_losses():
    assert choices.LOSSES == tuple(registry.LOSSES)
    assert definition.SETTINGS["loss"].names == choices.LOSSES


def test_cross_entropy_gradient_is_y_hat_minus_y():
    p = _softmax(LOGITS.astype(np.float64))
    loss = per_example(jnp.asarray(LOGITS), jnp.asarray(LABELS), "softmax")[0]
    np.testing.assert_allclose(loss, -np.log(p[[0, 1], LABELS]), rtol=1e-6)
    np.testing.assert_allclose(_grad("softmax"), p - np.eye(3)[LABELS], atol=1e-6)


def test_quadratic_cost_and_its_gradient_through_the_softmax():
    p, t = _softmax(LOGITS.astype(np.float64)), np.eye(3)[LABELS]
    loss = per_example(jnp.asarray(LOGITS), jnp.asarray(LABELS), "mse")[0]
    np.testing.assert_allclose(loss, ((p - t) ** 2).mean(-1), rtol=1e-6)
    # d/dz of mean_k (p_k - t_k)^2 = (2 / K) J^T (p - t), J = diag(p) - p p^T (symmetric)
    expected = np.stack([(2 / 3) * (np.diag(pi) - np.outer(pi, pi)) @ (pi - ti)
                         for pi, ti in zip(p, t, strict=True)])
    np.testing.assert_allclose(_grad("mse"), expected, atol=1e-6)
    # the quadratic cost's gradient vanishes where the softmax saturates on the wrong class,
    # cross-entropy's does not: the textbook's reason why cross-entropy learns faster
    wrong = jnp.array([[0.0, 12.0, 0.0]])
    g = {k: float(jnp.abs(jax.grad(lambda z, k=k: per_example(z, jnp.array([0]), k)[0].sum())(
        wrong)).max()) for k in ("softmax", "mse")}
    assert g["mse"] < 1e-4 and g["softmax"] > 0.9


def test_two_class_softmax_is_logistic_regression():
    z = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32) * 3
    y = np.random.default_rng(1).integers(0, 2, 50)
    ce, right = per_example(jnp.asarray(z), jnp.asarray(y), "softmax")
    # one sigmoid unit on z1 - z0, the label "class 1" as positive
    lo, right_lo = per_example(jnp.asarray(z[:, 1:] - z[:, :1]), jnp.asarray(y), "sigmoid")
    np.testing.assert_allclose(ce, lo, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(right, right_lo)
    assert registry.LOSSES["sigmoid"].outputs(2) == 1 and registry.LOSSES["mse"].outputs(10) == 10


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_momentum_reaches_its_terminal_velocity(name):
    """On a constant gradient g, momentum's step tends to lr * g / (1 - beta)."""
    lr, beta, g = 0.01, 0.9, jnp.array([2.0, -0.5])
    opt = registry.get_optimizer(name)
    tx = opt.factory(lr, momentum=opt.defaults["momentum"])
    assert opt.defaults["momentum"] == beta
    state, params = tx.init(jnp.zeros(2)), jnp.zeros(2)
    for _ in range(200):  # beta^200 ~ 7e-10
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(updates, -lr * g / (1 - beta), rtol=1e-5)
    first = tx.update(g, tx.init(jnp.zeros(2)), jnp.zeros(2))[0]
    assert float(jnp.abs(first).max()) < float(jnp.abs(updates).max()) / 5  # it builds up


def test_an_arm_trains_with_the_quadratic_cost(tmp_path):
    exp = tmp_path / "loss.toml"
    exp.write_text('name = "loss"\ndataset = "synthetic"\nseeds = 2\n[base]\nwidths = [16]\n'
                   'batch_size = 50\nmax_steps = 60\neval_every = 20\ntarget = 0.99\n'
                   'learning_rate = 0.01\n[factors]\nloss = ["softmax", "mse"]\n')
    r = CliRunner().invoke(app, ["run", str(exp), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    runs = pd.read_csv(tmp_path / "out" / "loss-synthetic-runs.csv")
    assert set(runs["loss"]) == {"softmax", "mse"} and runs["program"].nunique() == 2
    curves = pd.read_csv(tmp_path / "out" / "loss-synthetic-curves.csv")
    mse = curves[curves["arm"] == "loss=mse"].groupby("step")["train_loss"].mean()
    # 10 classes: chance is 0.1
    assert mse.iloc[-1] < mse.iloc[0] and (runs["final_eval_accuracy"] > 0.25).all()
