"""Regularization (issue 19): penalties, decoupled weight decay vs l2, dropout and its
placement, MC dropout, max-norm, early stopping, calibration, and the claim forms the
regularization experiment uses (against, versus, same, not-lower)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from dnnbench import definition
from dnnbench.analysis.claims import check_claims
from dnnbench.data import load_dataset
from dnnbench.models.mlp import MLP, dropout, max_norm
from dnnbench.run import plan
from dnnbench.spec import RunSpec, group_spec, lane_values
from dnnbench.stats import calibration
from dnnbench.train.engine import (
    make_program,
    penalty,
    seed_keys,
    to_device,
)
from dnnbench.train.optim import make_tx

SEEDS = (0, 1)


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", n_train=200, n_val=100, n_test=100, n_features=8,
                        n_classes=3)


def train(specs, data, **kwargs):
    """Every spec (one structure) x SEEDS as lanes of one program: (trace, group spec)."""
    spec, lanes = group_spec(specs)
    values = [lane_values(s) for s in specs]
    hps = {k: jnp.asarray([v[k] for v in values for _ in SEEDS], jnp.float32) for k in lanes}
    prog = make_program(spec, data.n_classes, len(data.y_train), **kwargs)
    keys = seed_keys(SEEDS * len(specs))
    trace = jax.jit(prog.run_seeds)(keys, hps, to_device(data, spec))
    return jax.tree_util.tree_map(np.asarray, trace), spec, prog


# ------------------------------------------------------------------ penalties and max-norm

def test_penalty_is_l1_and_l2_of_the_kernels_only():
    params = {"hidden_0": {"kernel": jnp.array([[1.0, -2.0], [0.5, 0.0]]),
                           "bias": jnp.array([3.0, -3.0])},
              "head": {"kernel": jnp.array([[-1.0], [2.0]]), "bias": jnp.array([5.0])}}
    spec = RunSpec(widths=(2,), l1=0.1, l2=0.01)
    # by hand: sum |k| = 1 + 2 + 0.5 + 0 + 1 + 2 = 6.5; sum k^2 = 1 + 4 + 0.25 + 1 + 4 = 10.25
    assert float(penalty(spec, {}, params)) == pytest.approx(0.1 * 6.5 + 0.01 * 10.25)
    # lane values replace the spec's coefficients; a setting the program does not apply is 0
    assert float(penalty(spec, {"l1": 0.0, "l2": 1.0}, params)) == pytest.approx(10.25)
    assert penalty(RunSpec(widths=(2,)), {}, params) == 0.0


def test_max_norm_rescales_each_units_incoming_weights():
    kernel = jnp.array([[0.3, 3.0, 0.0], [0.4, 4.0, 0.0]])  # column norms 0.5, 5, 0
    params = {"hidden_0": {"kernel": kernel, "bias": jnp.array([9.0, 9.0, 9.0])}}
    out = max_norm(params, 2.0)["hidden_0"]
    np.testing.assert_allclose(np.linalg.norm(out["kernel"], axis=0), [0.5, 2.0, 0.0],
                               rtol=1e-6)
    np.testing.assert_allclose(out["kernel"][:, 1], [1.2, 1.6], rtol=1e-6)  # same direction
    np.testing.assert_array_equal(out["bias"], params["hidden_0"]["bias"])
    np.testing.assert_array_equal(max_norm(params, jnp.inf)["hidden_0"]["kernel"], kernel)
    # max_norm_params "hidden": the output layer's kernel is left free, the hidden ones capped
    both = {**params, "head": {"kernel": kernel, "bias": jnp.zeros(3)}}
    hidden = max_norm(both, 2.0, "hidden")
    np.testing.assert_array_equal(hidden["head"]["kernel"], kernel)
    np.testing.assert_allclose(hidden["hidden_0"]["kernel"], out["kernel"], rtol=1e-6)
    np.testing.assert_allclose(max_norm(both, 2.0)["head"]["kernel"], out["kernel"], rtol=1e-6)


# ------------------------------------------------------------------------------- dropout

def test_dropout_keeps_1_minus_rate_and_scales_by_its_inverse():
    x = jnp.ones((200, 500))
    y = np.asarray(dropout(x, 0.3, jax.random.PRNGKey(0)))
    kept = y != 0
    # 100,000 Bernoulli(0.7) draws: sd of the fraction 0.0014; 5 sd
    assert abs(kept.mean() - 0.7) < 0.0075
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert float(y.mean()) == pytest.approx(1.0, abs=0.015)  # inverted dropout: unbiased
    np.testing.assert_array_equal(dropout(x, jnp.float32(0.0), jax.random.PRNGKey(0)), x)


@pytest.mark.parametrize("inputs", [False, True])
def test_dropout_placement_dense_drops_the_inputs_too(inputs):
    model = MLP(widths=(6,), n_out=2, dropout=0.5, dropout_inputs=inputs)
    x = jnp.arange(1.0, 7.0)[None]
    variables = model.init(jax.random.PRNGKey(0), x)
    eye = {"kernel": jnp.eye(6), "bias": jnp.zeros(6)}
    variables = {"params": {**variables["params"], "hidden_0": eye}}
    _, seen = model.apply(variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(3)},
                          capture_intermediates=True)
    first = np.asarray(seen["intermediates"]["hidden_0"]["__call__"][0])[0]
    if inputs:  # the first layer (identity) sees x dropped: 0 or x / keep, some of each
        assert set(np.flatnonzero(first == 0)) and np.all(
            (first == 0) | np.isclose(first, 2 * np.arange(1.0, 7.0)))
    else:
        np.testing.assert_array_equal(first, np.arange(1.0, 7.0))


# ---------------------------------------------------------------- SGD: l2 = weight decay

def test_sgd_l2_equals_decoupled_weight_decay_at_twice_the_coefficient(data):
    """l2 * sum(k^2) adds 2 * l2 * k to the gradient: SGD's update w -= lr (g + 2 l2 w) is
    SGD with decoupled decay wd = 2 l2 on the kernels. Negative controls: wd = l2 (not
    mapped), and wd on all parameters (biases decayed too), differ. The same program also
    trains a max-norm lane: its kernels' columns end within the radius."""
    base = RunSpec(widths=(16,), optimizer="sgd", learning_rate=0.1, batch_size=20,
                   max_steps=40, eval_every=20, target=0.0, decay_params="kernels")
    specs = [base.replace(l2=0.01), base.replace(optimizer_params=(("weight_decay", 0.02),)),
             base.replace(optimizer_params=(("weight_decay", 0.01),)),
             base.replace(max_norm=0.3)]
    trace, _, _ = train(specs, data, return_params=True)
    flat = np.stack([np.concatenate([np.ravel(leaf[i]) for leaf in
                                     jax.tree_util.tree_leaves(trace.params)])
                     for i in range(len(specs) * len(SEEDS))])
    l2, wd, unmapped = flat[0:2], flat[2:4], flat[4:6]
    np.testing.assert_allclose(l2, wd, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(trace.eval_loss[0:2], trace.eval_loss[2:4], rtol=1e-4)
    assert np.abs(l2 - unmapped).max() > 100 * np.abs(l2 - wd).max()
    for layer in trace.params.values():
        norms = np.linalg.norm(layer["kernel"][6:8], axis=1)  # (seeds, units)
        assert norms.max() <= 0.3 * (1 + 1e-5) and norms.max() > 0.29
    # decay on every parameter (the biases too) is another update: one step from the same
    # parameters moves the biases only then
    params = jax.tree_util.tree_map(lambda a: a[0], trace.params)
    grads = jax.tree_util.tree_map(jnp.zeros_like, params)
    hp = {"learning_rate": 0.1, "opt.weight_decay": 0.02}
    for decay, moved in (("kernels", False), ("all", True)):
        tx = make_tx(base.replace(decay_params=decay), hp)
        step, _ = tx.update(grads, tx.init(params), params)
        assert bool(jnp.any(step["head"]["bias"] != 0)) == moved
        assert bool(jnp.all(step["head"]["kernel"] != 0))


# -------------------------------------------------- MC dropout, eval_train, early stopping

@pytest.fixture(scope="module")
def small():
    """40 training examples: a net overfits them within the budget (early stopping stops)."""
    return load_dataset("synthetic", n_train=40, n_val=100, n_test=100, n_features=8,
                        n_classes=3)


@pytest.fixture(scope="module")
def mc_run(small):
    """One program: MC dropout, the training split evaluated, early stopping; dropout lanes
    0 and 0.5."""
    base = RunSpec(widths=(32,), learning_rate=0.05, batch_size=20, max_steps=200,
                   eval_every=5, eval_split="val", target=0.0, eval_train=True,
                   mc_samples=16, early_stopping=3)
    return train([base.replace(dropout=0.0), base.replace(dropout=0.5)], small,
                 return_params=True)


def test_mc_dropout_at_rate_0_is_the_deterministic_prediction(mc_run):
    trace, _, _ = mc_run
    mc = trace.extra["mc"]
    zero, half = slice(0, 2), slice(2, 4)
    for name in ("conf", "correct", "nll"):
        np.testing.assert_allclose(mc[f"mc_{name}"][zero], mc[f"det_{name}"][zero],
                                   rtol=1e-5, atol=1e-6)
        assert not np.allclose(mc[f"mc_{name}"][half], mc[f"det_{name}"][half])  # control
    np.testing.assert_allclose(mc["mc_std"][zero], 0.0, atol=1e-6)
    assert mc["mc_std"][half].mean() > 0.01
    # the deterministic prediction's accuracy is the run's test accuracy
    np.testing.assert_allclose(mc["det_correct"].mean(axis=1), trace.test_acc, atol=1e-6)


def test_eval_train_gives_the_training_split_without_dropout(mc_run):
    trace, _, _ = mc_run
    extra = trace.extra
    assert extra["clean_train_loss"].shape == trace.train_loss.shape
    # dropout 0.5 inflates the training loss of the steps over the net's loss without it
    for j in (2, 3):
        n = int(trace.n_done[j])
        assert np.all(trace.train_loss[j, 2:n] > extra["clean_train_loss"][j, 2:n])
    exp = definition.parse({"name": "t", "base": {"widths": [32]}}, "<test>")
    cols = plan.regularization_columns(exp, mc_run[1], trace, 2)
    assert cols["generalization_gap"] == pytest.approx(
        float(extra["final_train_accuracy"][2] - trace.test_acc[2]))
    assert 0 <= cols["mc_test_ece"] <= 1 and "calibration_bins" in cols


def test_early_stopping_stops_after_patience_and_restores_the_lowest_loss(mc_run, small):
    trace, spec, prog = mc_run
    stopped = 0
    for j in range(len(trace.n_done)):
        n = int(trace.n_done[j])
        best = int(np.argmin(trace.eval_loss[j, :n]))
        assert trace.extra["restored_step"][j] == trace.steps[j, best]
        if n < spec.n_evals:  # stopped early: patience evaluations after the best
            stopped += 1
            assert n == best + 1 + spec.early_stopping
    assert stopped  # 40 training examples at lr 0.05 overfit within the budget
    # the returned (restored) parameters are the ones the final evaluations used
    dev = to_device(small, spec)
    for j in range(len(trace.n_done)):
        params = jax.tree_util.tree_map(lambda a, j=j: a[j], trace.params)
        loss, _ = prog.evaluate(params, {}, dev["x_test"], dev["y_test"])
        assert float(loss) == pytest.approx(float(trace.test_loss[j]), rel=1e-5)
        _, train_acc = prog.evaluate(params, {}, dev["x_train"], dev["y_train"])
        assert float(train_acc) == pytest.approx(
            float(trace.extra["final_train_accuracy"][j]), abs=1e-6)


# ---------------------------------------------------------------------------- calibration

def test_ece_of_constructed_predictions():
    # 10 predictions at confidence 0.9, 9 right: calibrated
    assert calibration(np.full(10, 0.9), np.arange(10) < 9).ece == pytest.approx(0.0)
    # always sure and always wrong: ECE 1
    assert calibration(np.ones(4), np.zeros(4)).ece == pytest.approx(1.0)
    # two bins: 0.95 (2 right of 2: gap 0.05) and 0.55 (0 right of 2: gap 0.55) -> 0.3
    cal = calibration([0.95, 0.95, 0.55, 0.55], [1, 1, 0, 0])
    assert cal.ece == pytest.approx(0.5 * 0.05 + 0.5 * 0.55)
    assert cal.count.sum() == 4 and cal.count[14] == 2 and cal.count[8] == 2
    assert np.isnan(cal.accuracy[0])  # an empty bin
    assert calibration([1 / 15], [1]).count[0] == 1  # right edge inclusive: bin 0


# -------------------------------------------------------------------------- claim forms

def test_claims_against_the_best_level_versus_another_metric_and_margins():
    exp = definition.parse({
        "name": "c", "reference": {"reg": "none"},
        "factors": {"reg": {"none": {}, "a1": {"l2": 1e-4}, "a2": {"l2": 1e-3},
                            "b1": {"max_norm": 1.0}, "b2": {"max_norm": 2.0}}},
        "claims": [
            {"id": "best", "text": "t", "compare": {"reg": ["b1", "b2"]},
             "against": {"reg": ["a1", "a2"]}, "metric": "final_test_accuracy",
             "expect": "not-lower", "margin": 0.002},
            {"id": "same", "text": "t", "compare": {"reg": "b1"}, "against": {"reg": "a1"},
             "metric": "final_test_accuracy", "expect": "same", "margin": 0.001},
            {"id": "versus", "text": "t", "where": {"reg": ["a1", "a2"]},
             "metric": "mc_test_ece", "versus": "det_test_ece", "expect": "lower"}]},
        "<test>")
    rng = np.random.default_rng(0)
    acc = {"none": 0.90, "a1": 0.93, "a2": 0.92, "b1": 0.9305, "b2": 0.91}
    rows = [{"arm": f"reg={r}", "reg": r, "seed": s, "reached": True, "steps_to_target": 100,
             "steps_done": 200, "final_test_accuracy": a + 1e-4 * rng.standard_normal(),
             "det_test_ece": 0.05, "mc_test_ece": 0.03 + 1e-3 * s}
            for r, a in acc.items() for s in range(5)]
    out = check_claims(exp, pd.DataFrame(rows)).set_index("id")
    # b1 (the better of b1/b2) against a1 (the better of a1/a2): +0.0005, within 0.002
    assert out.loc["best", "verdict"] == "supported"
    assert "reg=b1 vs reg=a1" in out.loc["best", "effects"]
    assert out.loc["same", "verdict"] == "supported"
    assert out.loc["versus", "verdict"] == "supported" and out.loc["versus", "arms"] == 2
    # a real difference is not "the same"
    far = pd.DataFrame(rows).assign(final_test_accuracy=lambda d: d["final_test_accuracy"]
                                    + np.where(d["reg"] == "b1", 0.01, 0.0))
    assert check_claims(exp, far).set_index("id").loc["same", "verdict"] == \
        "contradicted"
    # (the forms' own cases, inconclusive and contradicted ones: tests/test_forms.py)


# ----------------------------------------------------------- lanes vs separate programs

@pytest.mark.slow
def test_regularization_lanes_equal_separate_programs(data):
    """The lane settings this issue adds or first varies as lanes (max-norm, l1, dropout
    before every dense layer, with the training split evaluated and MC dropout): all arms in
    one program give the numbers of one program per arm (see tests/_lanes.py), and each
    changed arm is told apart from the reference (negative control)."""
    from _lanes import LANE_ATOL, LANE_RTOL

    changes = {"ref": {}, "max_norm": {"max_norm": 0.5}, "l1": {"l1": 1e-3},
               "dropout": {"dropout": 0.3}}
    exp = definition.parse({
        "name": "lanes", "dataset": "synthetic",
        "base": {"widths": [16, 16], "optimizer": "adam", "learning_rate": 0.01,
                 "batch_size": 20, "max_steps": 60, "eval_every": 20, "eval_split": "val",
                 "target": 0.0, "stop_at_target": False, "dropout_placement": "dense",
                 "eval_train": True, "mc_samples": 8},
        "factors": {"variant": changes}}, "<test>")

    def frames(**kwargs):
        parts = [u.compute() for u in plan.build_units(exp, data, SEEDS, timing=False,
                                                          **kwargs)]
        return pd.concat([p[0] for p in parts], ignore_index=True).sort_values(
            ["arm", "seed"]).reset_index(drop=True)

    lanes, alone = frames(), frames(one_program_per_arm=True)
    assert lanes["program"].nunique() == 1 and alone["program"].nunique() == len(changes)
    for col in ("final_train_loss", "final_eval_loss", "final_test_loss",
                "final_train_loss_clean", "mc_test_nll"):
        np.testing.assert_allclose(lanes[col], alone[col], rtol=LANE_RTOL, atol=LANE_ATOL,
                                   err_msg=col)
    loss = lanes.pivot_table(index="seed", columns="variant", values="final_eval_loss")
    for variant in changes:
        if variant != "ref":
            assert not np.allclose(loss[variant], loss["ref"], rtol=LANE_RTOL,
                                   atol=LANE_ATOL), variant


# --------------------------------------------------------------------- l1 sparsity

def test_kernel_sparsity_counts_the_kernels_small_weights_only():
    from dnnbench.train.engine import kernel_sparsity

    params = {"hidden_0": {"kernel": jnp.array([[1e-4, -2.0], [0.5, 0.0]]),
                           "bias": jnp.zeros(2)},  # biases are not counted
              "head": {"kernel": jnp.array([[-5e-4], [2.0]]), "bias": jnp.zeros(1)}}
    # by hand: |w| < 1e-3 for 1e-4, 0.0 and -5e-4: 3 of the 6 kernel weights
    assert float(kernel_sparsity(params, 1e-3)) == pytest.approx(0.5)
    assert float(kernel_sparsity(params, 1e-5)) == pytest.approx(1 / 6)


def test_l1_makes_more_kernel_weights_vanish_than_l2(data):
    """Lanes of one program at equal coefficients: the l1 penalty's constant pull drives
    weights to 0 (Adam, a strong coefficient); l2's pull shrinks with the weight, so fewer fall
    below the threshold; without a penalty almost none do."""
    base = RunSpec(widths=(32,), learning_rate=0.01, batch_size=50, max_steps=200,
                   eval_every=50, eval_split="val", target=0.0, sparsity_threshold=1e-3,
                   l1=0.0, l2=0.0)
    trace, spec, _ = train([base, base.replace(l1=0.01), base.replace(l2=0.01)], data)
    s = trace.extra["kernel_sparsity"].reshape(3, len(SEEDS))
    assert np.all(s[1] > 0.3) and np.all(s[1] > 2 * s[2]) and np.all(s[2] > s[0])
    assert np.all(s[0] < 0.05)
    exp = definition.parse({"name": "t", "base": {"widths": [32], "sparsity_threshold": 1e-3}},
                           "<test>")
    assert plan.regularization_columns(exp, spec, trace, 2)["kernel_sparsity"] == \
        pytest.approx(float(s[1, 0]))
