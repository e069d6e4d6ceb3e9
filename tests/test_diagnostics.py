"""Issue 16: per-layer diagnostics on constructed networks whose values are known, the new lane
values (leaky slope, the initializer's scale) against separate programs, PReLU, alpha
dropout, and the claim forms on diagnostics (bounds, rankings, a claim's own reference)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from _lanes import LANE_ATOL, LANE_RTOL

from dnnbench import definition
from dnnbench.analysis.claims import check_claims
from dnnbench.data import load_dataset
from dnnbench.registry import DROPOUTS, INITIALIZERS
from dnnbench.run import plan
from dnnbench.spec import RunSpec, lane_values, structure_key
from dnnbench.train.arm import train_arm
from dnnbench.train.engine import DIAG_COLUMNS, make_program

COL = {c: i for i, c in enumerate(DIAG_COLUMNS)}


def _params(kernels: dict, head: np.ndarray, extra: dict | None = None) -> dict:
    p = {name: {"kernel": jnp.asarray(k, jnp.float32),
                "bias": jnp.zeros(np.shape(k)[1], jnp.float32)} for name, k in kernels.items()}
    p["head"] = {"kernel": jnp.asarray(head, jnp.float32),
                 "bias": jnp.zeros(head.shape[1], jnp.float32)}
    return p | (extra or {})


def _diagnose(spec: RunSpec, params: dict, x: np.ndarray, y: np.ndarray, n_classes: int):
    prog = make_program(spec, n_classes, n_train=spec.batch_size)
    data = {"x_eval": jnp.asarray(x, jnp.float32), "y_eval": jnp.asarray(y, jnp.int32)}
    return np.asarray(jax.jit(prog.diagnose)(params, {}, {"learning_rate": 0.1}, data))


def test_linear_net_with_identity_kernels_has_the_inputs_statistics_and_hand_gradients():
    """Identity kernels, zero biases, identity activation: every layer's pre-activations and
    activations are the inputs; the loss gradient w.r.t. every hidden kernel is x^T (g W^T),
    g = (softmax(x W) - onehot) / n, W the head's kernel (a hand computation)."""
    rng = np.random.default_rng(0)
    n, d, k = 8, 4, 3
    x = rng.normal(size=(n, d))
    y = rng.integers(0, k, n)
    head = rng.normal(size=(d, k))
    spec = RunSpec(widths=(d, d, d), activation="_plugins:identity", batch_size=n,
                   diagnostics=True)
    got = _diagnose(spec, _params({f"hidden_{i}": np.eye(d) for i in range(3)}, head), x, y, k)
    assert got.shape == (3, len(DIAG_COLUMNS))
    for c in ("pre_mean", "act_mean"):
        np.testing.assert_allclose(got[:, COL[c]], x.mean(), rtol=1e-5, atol=1e-6)
    for c in ("pre_std", "act_std"):
        np.testing.assert_allclose(got[:, COL[c]], x.std(), rtol=1e-5)
    assert np.isnan(got[:, COL["saturated"]]).all()  # a plug-in activation: no rule
    logits = x @ head
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g = (p - np.eye(k)[y]) / n
    want = np.linalg.norm(x.T @ (g @ head.T))
    np.testing.assert_allclose(got[:, COL["grad_norm"]], want, rtol=1e-5)


def test_relu_layer_with_a_known_dead_unit_and_sigmoid_saturation():
    """Positive inputs: a ReLU unit with a negative kernel column is dead on the whole batch
    (1 of 3 units); a sigmoid unit driven to +-50 is saturated, one at 0 is not (1/2 of the
    outputs); the dead unit gets no gradient, so the kernel's gradient is that of the others."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0.1, 1.0, size=(16, 2))
    y = rng.integers(0, 2, 16)
    relu = RunSpec(widths=(3,), activation="relu", batch_size=16, diagnostics=True)
    kernel = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]])
    got = _diagnose(relu, _params({"hidden_0": kernel}, rng.normal(size=(3, 2))), x, y, 2)
    assert got[0, COL["saturated"]] == pytest.approx(1 / 3)
    pre = x @ kernel
    np.testing.assert_allclose(got[0, COL["pre_std"]], pre.std(), rtol=1e-5)
    np.testing.assert_allclose(got[0, COL["act_mean"]], np.maximum(pre, 0).mean(), rtol=1e-5)
    alive = np.array([[1.0, 0.0], [0.0, 1.0]])  # the same net without its dead unit
    other = _diagnose(relu.replace(widths=(2,)), _params({"hidden_0": alive}, _params(
        {}, rng.normal(size=(3, 2)))["head"]["kernel"][:2]), x, y, 2)
    assert other[0, COL["saturated"]] == 0
    sigmoid = relu.replace(widths=(2,), activation="sigmoid")
    x_sig = np.concatenate([x, -x])
    k_sig = np.array([[50.0, 0.0], [50.0, 0.0]])
    got = _diagnose(sigmoid, _params({"hidden_0": k_sig}, np.ones((2, 2))), x_sig,
                    np.concatenate([y, y]), 2)
    assert got[0, COL["saturated"]] == pytest.approx(0.5)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_diagnostics_are_recorded_at_step_0_and_every_evaluation_and_change_no_number(digits):
    """The trace's first row is the diagnosis of the initial parameters; a program without
    diagnostics trains to the same numbers (and has none)."""
    spec = RunSpec(widths=(16, 16), activation="tanh", init="normal", batch_size=32,
                   max_steps=40, eval_every=20, target=0.0, diagnostics=True)
    with_diag = train_arm(spec, digits, [0, 1], timing=False)
    plain = train_arm(spec.replace(diagnostics=False), digits, [0, 1], timing=False)
    assert plain.trace.layers is None
    assert with_diag.trace.layers.shape == (2, 3, 2, len(DIAG_COLUMNS))
    assert np.isfinite(with_diag.trace.layers).all()
    for f in ("train_loss", "eval_loss", "eval_acc", "test_acc"):
        np.testing.assert_allclose(getattr(with_diag.trace, f), getattr(plain.trace, f),
                                   rtol=1e-6, err_msg=f)
    # saturation of tanh is a fraction; the step-0 row differs from the trained ones
    sat = with_diag.trace.layers[..., COL["saturated"]]
    assert ((sat >= 0) & (sat <= 1)).all()
    assert not np.allclose(with_diag.trace.layers[:, 0], with_diag.trace.layers[:, -1])


def test_initializer_scale_is_a_lane_where_distribution_and_fan_mode_agree():
    he, lecun = RunSpec(widths=(8,), init="he-normal"), RunSpec(widths=(8,), init="lecun-normal")
    glorot = RunSpec(widths=(8,), init="glorot-uniform")
    he_avg = RunSpec(widths=(8,), init="he-avg-uniform")
    assert structure_key(he) == structure_key(lecun)
    assert structure_key(glorot) == structure_key(he_avg)
    assert structure_key(he) != structure_key(glorot)
    assert structure_key(he) != structure_key(RunSpec(widths=(8,), init="normal"))
    assert lane_values(lecun)["init_scale"] == 1.0 and lane_values(he_avg)["init_scale"] == 2.0
    assert INITIALIZERS["he-avg-uniform"].multiplier(100, 300) == pytest.approx(
        (3 * 2 / 200) ** 0.5)
    # new settings at their defaults leave every earlier spec's dict (and hash) as it was
    spec = RunSpec(widths=(300, 100), activation="elu", dropout=0.2, eval_split="test")
    assert not {"leaky_slope", "dropout_kind", "diagnostics", "standardize"} & set(
        spec.to_dict())
    assert spec.hash == "ee1acc2dd649"  # computed by the code before these settings


def _frames(exp, data, seeds, **kwargs):
    parts = [u.compute() for u in plan.build_units(exp, data, seeds, timing=False,
                                                      **kwargs)]
    return pd.concat([p[0] for p in parts], ignore_index=True)


@pytest.mark.parametrize("family", ["fan_in", pytest.param("fan_avg", marks=pytest.mark.slow)])
def test_leaky_slope_and_init_scale_lanes_equal_separate_programs(family):
    """Leaky slopes and initializer scales of one structure are lanes of one program with the
    numbers of one program per arm (tests/_lanes.py tolerance), each told apart from the
    reference by the same tolerance (negative control)."""
    inits = {"fan_in": ("he-normal", "lecun-normal"),
             "fan_avg": ("glorot-uniform", "he-avg-uniform")}[family]
    changes = {"ref": {}, "slope": {"leaky_slope": 0.3}, "scale": {"init": inits[1]}}
    exp = definition.parse({
        "name": "lanes", "dataset": "synthetic",
        "base": {"widths": [16, 16], "activation": "leaky_relu", "init": inits[0],
                 "optimizer": "sgd", "learning_rate": 0.1, "batch_size": 50, "max_steps": 60,
                 "eval_every": 20, "target": 0.0, "stop_at_target": False},
        "factors": {"variant": changes}}, "<test>")
    data = load_dataset("synthetic", n_train=400, n_val=100, n_test=100, n_features=8,
                        n_classes=3)
    lanes = _frames(exp, data, (0, 1))
    assert lanes["program"].nunique() == 1
    alone = _frames(exp, data, (0, 1), one_program_per_arm=True)
    a, b = (t.sort_values(["arm", "seed"]).reset_index() for t in (lanes, alone))
    for col in ("final_train_loss", "final_eval_loss", "final_test_loss"):
        np.testing.assert_allclose(a[col], b[col], rtol=LANE_RTOL, atol=LANE_ATOL, err_msg=col)
    loss = a.pivot_table(index="seed", columns="variant", values="final_train_loss")
    for variant in ("slope", "scale"):
        assert not np.allclose(loss[variant], loss["ref"], rtol=LANE_RTOL, atol=LANE_ATOL)


def test_prelu_slope_starts_at_0_25_and_is_learned(digits):
    spec = RunSpec(widths=(16,), activation="prelu", batch_size=32, max_steps=20,
                   eval_every=20, target=0.0, learning_rate=0.05)
    r = train_arm(spec, digits, [0], timing=False, return_params=True)
    slope = float(r.trace.params["prelu_0"]["negative_slope"][0])
    assert slope != pytest.approx(0.25) and abs(slope - 0.25) < 0.25


def test_alpha_dropout_keeps_mean_0_and_variance_1_of_standardized_inputs():
    x = jax.random.normal(jax.random.PRNGKey(0), (400_000,))
    out = DROPOUTS["alpha"](x, 0.2, jax.random.PRNGKey(1))
    assert float(out.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(out.var()) == pytest.approx(1.0, abs=0.01)
    std = DROPOUTS["standard"](x, 0.2, jax.random.PRNGKey(1))
    assert float(std.var()) > 1.2  # inverted dropout inflates the variance
    np.testing.assert_array_equal(DROPOUTS["alpha"](x, 0.0, jax.random.PRNGKey(1)), x)


# ------------------------------------------------------------------------- the claim forms

CLAIMS_EXP = {
    "name": "claims", "dataset": "digits", "reference": {"init": "normal"},
    "base": {"widths": [8, 8], "diagnostics": True},
    "factors": {"activation": ["relu", "tanh", "sigmoid"], "init": ["normal", "default"]},
    "claims": [
        {"id": "bound", "text": "b", "compare": {"init": "default"}, "where": {"activation": "relu"},
         "metric": "layers.act_std", "statistic": "last/first", "at": "start",
         "expect": "within", "bounds": [0.5, 2.0]},
        {"id": "outside", "text": "o", "compare": {"init": "normal"}, "where": {"activation": "relu"},
         "metric": "layers.act_std", "statistic": "last/first", "at": "start",
         "expect": "outside", "bounds": [0.5, 2.0]},
        {"id": "range", "text": "r", "compare": {"init": "default"},
         "where": {"activation": "tanh"}, "metric": "layers.act_std", "statistic": "range",
         "at": "end", "expect": "within", "bounds": [0.8, 1.25]},
        {"id": "rank", "text": "k", "rank": {"activation": ["relu", "tanh", "sigmoid"]},
         "where": {"init": "default"}, "metric": "steps_to_target", "expect": "ranking"},
        {"id": "against", "text": "a", "compare": {"activation": "relu"}, "against": {"activation": "tanh"},
         "where": {"init": "default"}, "metric": "final_eval_accuracy", "expect": "higher"},
    ]}


def _table(exp):
    """Runs and layers of 5 seeds made up to give known verdicts: relu/default keeps the std
    (ratio ~1), relu/normal multiplies it by ~10; tanh's layers at the end range over
    [0.9, 1.1] except one layer at 3 (range claim contradicted); steps relu 100 < tanh 200 <
    sigmoid censored; relu more accurate than tanh by 0.05."""
    rows, layers = [], []
    for act, init in [(a, i) for a in ("relu", "tanh", "sigmoid") for i in ("normal", "default")]:
        arm = f"activation={act},init={init}"
        for seed in range(5):
            steps = {"relu": 100, "tanh": 200}[act] + seed if act != "sigmoid" else None
            rows.append({"arm": arm, "activation": act, "init": init, "seed": seed,
                         "reached": steps is not None, "steps_to_target": steps,
                         "steps_done": 1000, "diverged": False,
                         "final_eval_accuracy": {"relu": 0.95, "tanh": 0.9,
                                                 "sigmoid": 0.5}[act] + 0.001 * seed})
            ratio = 10.0 if (act, init) == ("relu", "normal") else 1.0
            for step in (0, 100):
                for layer in range(3):
                    std = 1 + 0.01 * seed + (ratio - 1) * layer / 2
                    if act == "tanh" and step == 100:
                        std = 3.0 if layer == 1 else 0.9 + 0.1 * layer
                    layers.append({"arm": arm, "seed": seed, "step": step, "layer": layer,
                                   "act_std": std})
    runs = pd.DataFrame(rows)
    runs["steps_to_target"] = runs["steps_to_target"].astype("Int64")
    return runs, pd.DataFrame(layers)


def test_claims_on_diagnostics_bounds_rankings_and_a_claims_own_reference():
    exp = definition.parse(CLAIMS_EXP, "<test>")
    runs, layers = _table(exp)
    out = check_claims(exp, runs, layers).set_index("id")
    assert out.loc["bound", "verdict"] == "supported"
    assert out.loc["outside", "verdict"] == "supported"
    assert out.loc["range", "verdict"] == "contradicted"  # one layer at 3 > 1.25
    assert out.loc["rank", "verdict"] == "supported"
    assert "Holm over 3: 3 of 3 as claimed, 0 the other way" in out.loc["rank", "effects"]
    assert out.loc["against", "verdict"] == "supported"
    assert "activation=relu,init=default" in out.loc["against", "effects"]
    # without diagnostics the layers claims are not tested; the others still are
    out = check_claims(exp, runs, None).set_index("id")
    assert (out.loc[["bound", "outside", "range"], "verdict"] == "not tested").all()
    assert out.loc["rank", "verdict"] == "supported"
    # the claims survive the round trip through the metadata's definition
    again = definition.parse(definition.to_doc(exp), "<doc>")
    assert again.claims == exp.claims


@pytest.mark.parametrize("change, message", [
    ({"metric": "layers.nope"}, "unknown layers column"),
    ({"bounds": None}, "needs bounds"),
    ({"statistic": "median"}, "statistic: unknown"),
    ({"expect": "ranking", "bounds": None}, "needs rank"),
])
def test_bad_diagnostics_claims_are_refused(change, message):
    doc = {**CLAIMS_EXP, "claims": [{**CLAIMS_EXP["claims"][0], **change}]}
    doc["claims"] = [{k: v for k, v in doc["claims"][0].items() if v is not None}]
    with pytest.raises(definition.ExperimentError, match=message):
        definition.parse(doc, "<test>")
    no_diag = {**CLAIMS_EXP, "base": {"widths": [8, 8]}, "claims": CLAIMS_EXP["claims"][:1]}
    with pytest.raises(definition.ExperimentError, match="needs diagnostics"):
        definition.parse(no_diag, "<test>")


def test_dead_units_are_those_whose_weights_get_no_gradient():
    """A unit whose pre-activation is negative on every example: a ReLU unit gets zero
    gradient (dead, and saturated by the pre-activation rule); a leaky unit still gets gradient
    (not dead by the gradient rule, though its pre-activation rule counts it)."""
    rng = np.random.default_rng(0)
    n, d, k = 16, 4, 3
    x = np.abs(rng.normal(size=(n, d)))  # positive inputs
    y = rng.integers(0, k, n)
    kernel = np.eye(d)
    kernel[:, :2] *= -1.0  # units 0 and 1: negative pre-activation on every example
    params = _params({"hidden_0": kernel}, rng.normal(size=(d, k)))
    for activation, dead in (("relu", 0.5), ("leaky_relu", 0.0)):
        spec = RunSpec(widths=(d,), activation=activation, batch_size=n, diagnostics=True)
        got = _diagnose(spec, params, x, y, k)
        assert got[0, COL["dead"]] == dead, activation
        assert got[0, COL["saturated"]] == 0.5, activation
