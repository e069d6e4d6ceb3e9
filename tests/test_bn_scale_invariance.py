"""BN's scale invariance (Ioffe & Szegedy 2015, sec. 3.3), with the project's model: in
training mode BN(a W x) = BN(W x) for a > 0, and the gradient with respect to W scales as
1/a (so larger weights take relatively smaller steps: the mechanism by which BN tolerates
larger learning rates and other initial scales); and the setting init_scale (variance =
init_scale / fan_in) that bn-init-scale.toml sweeps: the variance of the kernels it draws, and
its lanes in one program against one program per scale."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest
from _lanes import LANE_ATOL, LANE_RTOL

from dnnbench import definition
from dnnbench.data import load_dataset
from dnnbench.models.mlp import build_model, init_variables
from dnnbench.run import plan
from dnnbench.spec import INIT_SCALE, RunSpec, group_spec, lane_values, structure_key

SCALES = (0.1, 0.5, 3.0, 20.0)
# float32 forward and backward passes: BN divides by sqrt(a^2 var + eps); with eps 1e-8
# against unit pre-activation variances the identity is exact up to rounding (~1e-7 per
# operation); 1e-4 leaves a wide margin, and the negative controls move the numbers by far more
RTOL, ATOL = 1e-4, 1e-6


def _model_and_batch(norm: str, eps: float = 1e-8):
    spec = RunSpec(widths=(32, 16), norm=norm, norm_position="before", bn_epsilon=eps)
    model = build_model(spec, 10)
    x = jax.random.uniform(jax.random.PRNGKey(1), (64, 20))
    y = jax.random.randint(jax.random.PRNGKey(2), (64,), 0, 10)
    variables = init_variables(model, jax.random.PRNGKey(0), x)
    return model, variables, x, y


def _scaled(variables, layer: str, a: float):
    params = jax.tree_util.tree_map(lambda v: v, variables["params"])
    params[layer] = {**params[layer], "kernel": params[layer]["kernel"] * a}
    return {**variables, "params": params}


def _train_logits(model, variables, x):
    logits, _ = model.apply(variables, x, train=True, mutable=["batch_stats"])
    return logits


def _loss(model, variables, x, y):
    def loss(params):
        logits = _train_logits(model, {**variables, "params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss


@pytest.mark.parametrize("layer", ["hidden_0", "hidden_1"])
def test_bn_output_is_invariant_to_the_scale_of_the_kernel_before_it(layer):
    model, variables, x, _ = _model_and_batch("batch")
    assert "bias" not in variables["params"][layer]  # BN right after it: the bias is dropped
    ref = _train_logits(model, variables, x)
    for a in SCALES:
        np.testing.assert_allclose(_train_logits(model, _scaled(variables, layer, a), x), ref,
                                   rtol=RTOL, atol=ATOL, err_msg=f"a={a}")
    # negative control: without normalization (ReLU is positively homogeneous) the logits move
    plain, pv, _, _ = _model_and_batch("none")
    moved = _train_logits(plain, _scaled(pv, layer, 3.0), x)
    assert not np.allclose(moved, _train_logits(plain, pv, x), rtol=RTOL, atol=ATOL)
    # BN's epsilon breaks the identity where a^2 var is comparable to it: at the default 1e-3
    # a kernel scaled by 0.01 (pre-activation variance ~1e-4) changes the output
    bn3, v3, _, _ = _model_and_batch("batch", eps=1e-3)
    small = _train_logits(bn3, _scaled(v3, layer, 0.01), x)
    assert not np.allclose(small, _train_logits(bn3, v3, x), rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("layer", ["hidden_0", "hidden_1"])
def test_the_gradient_wrt_a_kernel_before_bn_scales_as_one_over_a(layer):
    model, variables, x, y = _model_and_batch("batch")
    loss = _loss(model, variables, x, y)
    g = jax.grad(loss)(variables["params"])[layer]["kernel"]
    assert float(jnp.abs(g).max()) > 1e-4  # a gradient to compare, not zeros
    for a in SCALES:
        scaled = _scaled(variables, layer, a)
        ga = jax.grad(_loss(model, scaled, x, y))(scaled["params"])[layer]["kernel"]
        np.testing.assert_allclose(ga * a, g, rtol=1e-3, atol=1e-6, err_msg=f"a={a}")
        assert float(loss(scaled["params"])) == pytest.approx(float(loss(variables["params"])),
                                                              rel=1e-5)
    # each unit's gradient is orthogonal to its weights (d/da L(aW) = 0 at a = 1)
    w = variables["params"][layer]["kernel"]
    cos = jnp.sum(w * g, axis=0) / (jnp.linalg.norm(w, axis=0) * jnp.linalg.norm(g, axis=0))
    assert float(jnp.abs(cos).max()) < 1e-3
    # negative control: without normalization the gradient does not scale as 1/a
    plain, pv, _, _ = _model_and_batch("none")
    g0 = jax.grad(_loss(plain, pv, x, y))(pv["params"])[layer]["kernel"]
    s = _scaled(pv, layer, 3.0)
    g3 = jax.grad(_loss(plain, s, x, y))(s["params"])[layer]["kernel"]
    assert not np.allclose(g3 * 3.0, g0, rtol=1e-3, atol=1e-6)


# ------------------------------------------------------------------------ the setting init_scale

def test_init_scale_sets_the_variance_of_the_hidden_kernels_not_the_heads():
    x = jnp.zeros((1, 400))
    for scale in (0.01, 2.0, 50.0):
        model = build_model(RunSpec(widths=(400, 300), init="he-normal", init_scale=scale), 10)
        params = init_variables(model, jax.random.PRNGKey(0), x)["params"]
        for layer in ("hidden_0", "hidden_1"):
            k = params[layer]["kernel"]
            assert float(jnp.var(k)) == pytest.approx(scale / k.shape[0], rel=0.03), layer
        head = params["head"]["kernel"]  # Glorot-uniform: variance 2 / (fan_in + fan_out)
        assert float(jnp.var(head)) == pytest.approx(2 / (300 + 10), rel=0.1)
    # 0: the initializer's own scale (He: 2), and a bare spec's hash is unchanged
    assert lane_values(RunSpec(widths=(8,)))[INIT_SCALE] == 2.0
    assert "init_scale" not in RunSpec(widths=(8,)).to_dict()
    assert lane_values(RunSpec(widths=(8,), init_scale=0.5))[INIT_SCALE] == 0.5


def test_init_scale_is_a_lane_and_the_programs_spec_keeps_the_initializers_own():
    specs = [RunSpec(widths=(8,), init_scale=s) for s in (0.01, 1.0, 100.0)]
    assert len({structure_key(s) for s in specs}) == 1
    spec, lanes = group_spec(specs)
    assert INIT_SCALE in lanes and spec.init_scale == 0.0  # the lanes' gains scale it
    # arms of one scale: no lane, the program's model draws at that scale itself
    spec, lanes = group_spec([specs[0], specs[0].replace(learning_rate=0.1)])
    assert INIT_SCALE not in lanes and spec.init_scale == 0.01


def _frames(exp, data, seeds, **kwargs):
    parts = [u.compute() for u in plan.build_units(exp, data, seeds, timing=False, **kwargs)]
    return pd.concat([p[0] for p in parts], ignore_index=True)


@pytest.mark.slow  # (22 s cold) init_scale lanes vs programs: test_diagnostics does it too
def test_init_scale_lanes_equal_one_program_per_scale():
    """Scales as lanes of one program give the numbers of one program per scale (where the
    model draws at the scale itself): tests/_lanes.py tolerance, with a negative control. (The
    two routes' initial kernels differ by an ulp, He's multiplier times the lane's gain
    against the scale's own multiplier; at much larger scales SGD amplifies that beyond the
    tolerance within 40 steps, so the largest scale here is 10.)"""
    exp = definition.parse({
        "name": "scales", "dataset": "synthetic",
        "base": {"widths": [16, 16], "init": "he-normal", "optimizer": "sgd",
                 "learning_rate": 0.05, "batch_size": 50, "max_steps": 40, "eval_every": 20,
                 "target": 0.0, "stop_at_target": False},
        "factors": {"init_scale": [0.1, 2.0, 10.0]}}, "<test>")
    data = load_dataset("synthetic", n_train=400, n_val=100, n_test=100, n_features=8,
                        n_classes=3)
    lanes = _frames(exp, data, (0, 1))
    assert lanes["program"].nunique() == 1 and "init_scale" in lanes.columns
    alone = _frames(exp, data, (0, 1), one_program_per_arm=True)
    a, b = (t.sort_values(["arm", "seed"]).reset_index() for t in (lanes, alone))
    for col in ("final_train_loss", "final_eval_loss", "final_test_loss"):
        np.testing.assert_allclose(a[col], b[col], rtol=LANE_RTOL, atol=LANE_ATOL, err_msg=col)
    loss = a.pivot_table(index="seed", columns="init_scale", values="final_train_loss")
    assert not np.allclose(loss[0.1], loss[2.0], rtol=LANE_RTOL, atol=LANE_ATOL)
    assert not np.allclose(loss[10.0], loss[2.0], rtol=LANE_RTOL, atol=LANE_ATOL)
