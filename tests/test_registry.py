"""Contract tests over every registered name: each entry builds and behaves."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dnnbench.models import build_model
from dnnbench.registry import (
    ACTIVATIONS,
    DEFAULT_INIT,
    INITIALIZERS,
    OPTIMIZERS,
    SCHEDULES,
    lookup,
)
from dnnbench.spec import RunSpec
from dnnbench.train.optim import make_tx


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_is_elementwise_nonlinear_and_finite(name):
    f = ACTIVATIONS[name]
    x = jnp.linspace(-3, 3, 13)
    y = f(x)
    assert y.shape == x.shape and bool(jnp.all(jnp.isfinite(y)))
    # not linear: a second difference is non-zero somewhere
    h = 0.5
    assert float(jnp.max(jnp.abs(f(x + h) - 2 * f(x) + f(x - h)))) > 1e-3
    assert name in DEFAULT_INIT


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_initializer_scale(name):
    w = INITIALIZERS[name]()(jax.random.PRNGKey(0), (400, 300))
    std = float(jnp.std(w))
    expected = {"normal": 1.0, "he-normal": np.sqrt(2 / 400), "he-uniform": np.sqrt(2 / 400),
                "lecun-normal": np.sqrt(1 / 400), "glorot-normal": np.sqrt(2 / 700),
                "glorot-uniform": np.sqrt(2 / 700), "he-avg-uniform": np.sqrt(2 / 350)}[name]
    assert abs(std - expected) / expected < 0.1


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_every_optimizer_and_schedule_builds_and_steps(opt, schedule):
    tx = make_tx(RunSpec(widths=(1,), optimizer=opt, learning_rate=0.1, schedule=schedule,
                         max_steps=100, clip_norm=1.0))
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    updates, _ = tx.update({"w": jnp.ones(3)}, state, params)
    if schedule == "warmup-cosine":  # starts at lr 0
        return
    assert float(jnp.sum(updates["w"])) < 0  # a descent direction


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("norm,position", [("none", "before"), ("batch", "before"),
                                           ("batch", "after")])
def test_model_builds_for_every_activation_and_norm(act, norm, position):
    spec = RunSpec(widths=(8, 4), activation=act, norm=norm, norm_position=position,
                   dropout=0.1, bn_logits=norm == "batch")
    model = build_model(spec, 3)
    v = model.init(jax.random.PRNGKey(0), jnp.ones((5, 6)))
    out = model.apply(v, jnp.ones((5, 6)))
    assert out.shape == (5, 3) and bool(jnp.all(jnp.isfinite(out)))
    params = v["params"]
    assert ("bias" in params["hidden_0"]) == (not (norm == "batch" and position == "before"))
    assert ("batch_stats" in v) == (norm == "batch")


def test_lookup_error_names_choices():
    with pytest.raises(ValueError, match="relu"):
        lookup(ACTIVATIONS, "nope", "activation")


@pytest.mark.parametrize("init", list(INITIALIZERS))
def test_flat_init_matches_initializer_distribution(init):
    """init_variables draws all kernels at once; each layer must still have its scale."""
    from dnnbench.models import init_variables

    spec = RunSpec(widths=(300, 200), init=init, head_init=init, norm="batch")
    model = build_model(spec, 10)
    v = init_variables(model, jax.random.PRNGKey(0), jnp.ones((1, 400)))
    ref = model.init(jax.random.PRNGKey(0), jnp.ones((1, 400)))
    assert jax.tree_util.tree_structure(v) == jax.tree_util.tree_structure(ref)
    for layer in ("hidden_0", "hidden_1", "head"):
        k, r = v["params"][layer]["kernel"], ref["params"][layer]["kernel"]
        assert k.shape == r.shape
        assert abs(float(jnp.std(k)) / float(jnp.std(r)) - 1) < 0.15
    assert float(jnp.max(jnp.abs(v["params"]["hidden_0"]["kernel"]))) > 0
    np.testing.assert_array_equal(v["batch_stats"]["bn_0"]["var"], 1.0)
    # different layers are not copies of one another
    a = v["params"]["hidden_1"]["kernel"][:10, 0]
    b = v["params"]["hidden_0"]["kernel"][:10, 0]
    assert not np.allclose(a, b)
