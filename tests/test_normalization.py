"""Normalizations (issue 17): each one against a hand computation, weight normalization's
effective weights, BN statistics at evaluation, BN folding, the model summary, BN momentum as
lanes, and bad values on the command line."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from _lanes import LANE_ATOL, LANE_RTOL
from typer.testing import CliRunner

from dnnbench import choices, definition
from dnnbench.cli import app
from dnnbench.data import load_dataset
from dnnbench.models.fold import fold_batch_norm
from dnnbench.models.mlp import build_model, init_variables
from dnnbench.models.norms import NORMALIZATIONS
from dnnbench.models.summary import layer_rows, totals
from dnnbench.run import plan
from dnnbench.spec import RunSpec
from dnnbench.train.engine import make_program, to_device

runner = CliRunner()
EPS = 1e-3  # RunSpec.bn_epsilon
# float32 forward passes of a few units against float64 by hand: a few ulps (~1e-7) per
# operation; 1e-5 relative leaves a wide margin, and each test changes one number by far more
# (a negative control) to show the comparison can fail.
RTOL, ATOL = 1e-5, 1e-6


def test_choices_name_the_registry():
    assert choices.NORMALIZATIONS == tuple(NORMALIZATIONS)
    assert definition.SETTINGS["norm"].names == choices.NORMALIZATIONS


# ----------------------------------------------------------------- hand computations, one batch

def _random_variables(model, x, seed=0):
    """The model's variables with every leaf drawn at random (scales around 1, running
    variances positive), so that no normalization parameter is at a trivial value."""
    variables = init_variables(model, jax.random.PRNGKey(seed), x)
    leaves, tree = jax.tree_util.tree_flatten_with_path(variables)
    rng = np.random.default_rng(seed)
    out = []
    for path, leaf in leaves:
        name = path[-1].key
        value = rng.normal(size=leaf.shape)
        if name == "var" or name.endswith("scale"):
            value = rng.uniform(0.5, 2.0, size=leaf.shape)
        out.append(jnp.asarray(value, jnp.float32))
    return jax.tree_util.tree_unflatten(tree, out)


def _np(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


def _standardize(h, axis, eps=EPS):
    mean = h.mean(axis=axis, keepdims=True)
    var = h.var(axis=axis, keepdims=True)
    return (h - mean) / np.sqrt(var + eps)


def _hand_logits(norm, position, p, stats, x, train, input_norm=False, groups=2):
    """The MLP (widths (6,), relu) computed by hand in float64."""
    relu = lambda h: np.maximum(h, 0)
    if input_norm:
        bn = p["bn_input"]
        xs = _standardize(x, 0) if train else \
            (x - stats["bn_input"]["mean"]) / np.sqrt(stats["bn_input"]["var"] + EPS)
        x = xs * bn["scale"] + bn["bias"]
    kernel = p["hidden_0"]["kernel"]
    if norm == "weight":  # w = g v / ||v||, per unit (column)
        g = p["wn_0"]["hidden_0/kernel/scale"]
        kernel = g * kernel / np.linalg.norm(kernel, axis=0)
    h = x @ kernel + p["hidden_0"].get("bias", 0.0)

    def normalize(h):
        if norm == "batch":
            s = p["bn_0"]
            hs = _standardize(h, 0) if train else \
                (h - stats["bn_0"]["mean"]) / np.sqrt(stats["bn_0"]["var"] + EPS)
            return hs * s["scale"] + s["bias"]
        if norm == "layer":
            return _standardize(h, 1) * p["ln_0"]["scale"] + p["ln_0"]["bias"]
        if norm == "group":
            n, units = h.shape
            hs = _standardize(h.reshape(n, groups, units // groups), 2).reshape(n, units)
            return hs * p["gn_0"]["scale"] + p["gn_0"]["bias"]
        return h

    if position == "before":
        h = relu(normalize(h))
    else:
        h = normalize(relu(h))
    return h @ p["head"]["kernel"] + p["head"]["bias"]


CASES = [("none", "before", False), ("batch", "before", False), ("batch", "after", False),
         ("batch", "before", True), ("layer", "before", False), ("layer", "after", False),
         ("group", "before", False), ("group", "after", False), ("weight", "before", False)]


@pytest.mark.parametrize(("norm", "position", "input_norm"), CASES)
@pytest.mark.parametrize("train", [True, False])
def test_each_normalization_matches_a_hand_computation(norm, position, input_norm, train):
    spec = RunSpec(widths=(6,), norm=norm, norm_position=position, input_norm=input_norm,
                   norm_groups=2)
    model = build_model(spec, 3)
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    variables = _random_variables(model, jnp.asarray(x))
    if train:
        logits, _ = model.apply(variables, x, train=True, mutable=["batch_stats"])
    else:
        logits = model.apply(variables, x, train=False)
    v = _np(variables)
    expected = _hand_logits(norm, position, v["params"], v.get("batch_stats", {}),
                            x.astype(np.float64), train, input_norm)
    np.testing.assert_allclose(np.asarray(logits), expected, rtol=RTOL, atol=ATOL)
    if norm != "none":  # negative control: the same comparison without the normalization
        plain = _hand_logits("none", position, v["params"] | {"hidden_0": {
            "kernel": v["params"]["hidden_0"]["kernel"], "bias": 0.0}}, {},
            x.astype(np.float64), train)
        assert not np.allclose(np.asarray(logits), plain, rtol=RTOL, atol=ATOL)


def test_batch_norm_updates_its_running_averages_with_the_momentum():
    spec = RunSpec(widths=(6,), norm="batch", bn_momentum=0.8)
    model = build_model(spec, 3)
    x = np.random.default_rng(2).normal(size=(7, 4)).astype(np.float32)
    variables = _random_variables(model, jnp.asarray(x))
    _, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    v = _np(variables)
    h = x.astype(np.float64) @ v["params"]["hidden_0"]["kernel"]  # no bias before BN
    new = _np(updates["batch_stats"])["bn_0"]
    old = v["batch_stats"]["bn_0"]
    np.testing.assert_allclose(new["mean"], 0.8 * old["mean"] + 0.2 * h.mean(0), rtol=RTOL)
    np.testing.assert_allclose(new["var"], 0.8 * old["var"] + 0.2 * h.var(0), rtol=RTOL)


def test_weight_norm_effective_weights():
    """w = g v / ||v|| per unit: the layer's output is x w + b; every column of w has norm g
    whatever v's scale; at initialization g = ||v||, so w = v (the plain net's function)."""
    spec = RunSpec(widths=(6,), norm="weight")
    model = build_model(spec, 3)
    x = jnp.asarray(np.random.default_rng(3).normal(size=(5, 4)), jnp.float32)
    start = init_variables(model, jax.random.PRNGKey(0), x)
    plain = build_model(spec.replace(norm="none"), 3)
    p0 = start["params"]
    np.testing.assert_allclose(
        model.apply(start, x),
        plain.apply({"params": {k: p0[k] for k in ("hidden_0", "head")}}, x), rtol=RTOL,
        atol=ATOL)
    variables = _random_variables(model, x)
    p = _np(variables["params"])
    v, g = p["hidden_0"]["kernel"], p["wn_0"]["hidden_0/kernel/scale"]
    w = g * v / np.linalg.norm(v, axis=0)
    np.testing.assert_allclose(np.linalg.norm(w, axis=0), g, rtol=RTOL)
    head = {"kernel": p["head"]["kernel"], "bias": p["head"]["bias"]}
    eff = {"params": {"hidden_0": {"kernel": w, "bias": p["hidden_0"]["bias"]}, "head": head}}
    np.testing.assert_allclose(model.apply(variables, x), plain.apply(eff, x), rtol=RTOL,
                               atol=ATOL)
    scaled = jax.tree_util.tree_map_with_path(  # scaling v changes nothing
        lambda path, a: a * 7.0 if path[-1].key == "kernel" and path[-2].key == "hidden_0"
        else a, variables)
    np.testing.assert_allclose(model.apply(scaled, x), model.apply(variables, x), rtol=RTOL,
                               atol=ATOL)


# ----------------------------------------------------------------- trained nets: eval, folding

@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _trained(spec, data, steps=40):
    """(model, variables) of ``spec`` after ``steps`` steps on ``data`` (seed 0)."""
    program = make_program(spec, data.n_classes, len(data.y_train))
    dev = to_device(data, spec)
    hp = {"learning_rate": jnp.float32(spec.learning_rate)}
    state = program.init(jax.random.PRNGKey(0), hp, dev)
    state, _ = jax.jit(program.train_chunk, static_argnums=4)(state, 0, hp, dev, steps)
    return program, dev, {"params": state.params, "batch_stats": state.batch_stats}


BN_SPEC = RunSpec(widths=(32, 16), norm="batch", batch_size=32, learning_rate=0.01,
                  max_steps=40, eval_every=20)


def _accuracy(model, variables, x, y, train=False):
    if train:
        logits = model.apply(variables, x, train=True, mutable=["batch_stats"])[0]
    else:
        logits = model.apply(variables, x, train=False)
    return float(np.mean(np.argmax(np.asarray(logits), -1) == np.asarray(y)))


def test_bn_eval_running_population_and_batch_statistics(digits):
    """The three statistics at evaluation, each against a direct computation: running
    averages (apply in eval mode), population statistics (the training split in one block:
    its own statistics), and each evaluated batch's statistics (apply in train mode, batch by
    batch)."""
    x, y = jnp.asarray(digits.x_test), jnp.asarray(digits.y_test)
    results = {}
    for mode, batch in (("running", 0), ("population", 0), ("batch", 50), ("batch", 1)):
        spec = BN_SPEC.replace(bn_eval=mode, bn_eval_batch=batch)
        program, dev, variables = _trained(spec, digits)
        model = build_model(spec, digits.n_classes)
        _, acc = program.evaluate(variables["params"], variables["batch_stats"], x, y)
        if mode == "running":
            expected = _accuracy(model, variables, x, y)
        elif mode == "population":  # < 2,000 training examples: one block, its statistics
            stats = model.clone(bn_momentum=0.0).apply(
                variables, dev["x_train"], train=True, mutable=["batch_stats"])[1]
            expected = _accuracy(model, variables | stats, x, y)
            assert expected != results["running"]  # negative control
        else:
            cuts = range(0, len(y), batch)
            expected = np.mean(np.concatenate([  # the remainder: one smaller batch
                np.argmax(np.asarray(model.apply(variables, x[i:i + batch], train=True,
                                                 mutable=["batch_stats"])[0]), -1)
                == np.asarray(y[i:i + batch]) for i in cuts]))
        results[mode, batch] = float(acc)
        results.setdefault(mode, float(acc))
        assert float(acc) == pytest.approx(expected, abs=1.5 / len(y)), mode
    # one example per batch: every unit of a BN layer is its shift; the logits are the same
    # for every example, so one class is predicted for all
    assert results["batch", 1] < 0.2 < results["batch", 50]


def test_bn_eval_population_in_training_reports_its_steps(digits):
    """bn_eval is a setting of the run: the engine evaluates with it at every evaluation (so
    the steps to target are those of that choice), and the generic CSV records it."""
    exp = definition.parse({
        "name": "bn-eval", "dataset": "digits",
        "base": {"widths": [32, 16], "norm": "batch", "batch_size": 32, "max_steps": 40,
                 "eval_every": 20, "target": 0.0, "stop_at_target": False,
                 "bn_eval_batch": 0},
        "factors": {"bn_eval": ["running", "population", "batch"]}},
        "<test>")
    parts = [u.compute() for u in plan.build_units(exp, digits, (0,), timing=False)]
    runs = pd.concat([p[0] for p in parts], ignore_index=True)
    assert list(runs["bn_eval"]) == ["running", "population", "batch"]
    assert list(runs["bn_eval_batch"]) == [0, 0, 32]  # 0: the training batch size
    assert runs["final_eval_loss"].nunique() == 3  # the same weights, three evaluations


@pytest.mark.parametrize(("position", "input_norm", "bn_logits"),
                         [("before", False, False), ("before", True, True),
                          ("after", True, False), ("after", False, True)])
def test_folding_batch_norm_leaves_the_logits_unchanged(digits, position, input_norm,
                                                        bn_logits):
    """A trained net and its folded copy (no BN layer left) give the same logits. Tolerance:
    both are float32 forward passes that round differently (gamma/sqrt(var+eps) multiplies the
    kernel before the product instead of its result); the difference is of the order of the
    float32 rounding of a logit: measured 2.1e-7 to 2.4e-7 of the largest logit on these four
    nets (2 CPU cores); 1e-5 of the largest logit leaves a 40x margin, and moving one running
    variance by 1% exceeds it (negative control)."""
    spec = BN_SPEC.replace(norm_position=position, input_norm=input_norm, bn_logits=bn_logits)
    _, _, variables = _trained(spec, digits)
    model = build_model(spec, digits.n_classes)
    plain, folded = fold_batch_norm(model, variables)
    assert "batch_stats" not in folded and not any(k.startswith("bn") for k in folded["params"])
    x = jnp.asarray(digits.x_test)
    logits = np.asarray(model.apply(variables, x))
    tol = 1e-5 * np.abs(logits).max()
    np.testing.assert_allclose(np.asarray(plain.apply(folded, x)), logits, rtol=0, atol=tol)
    bad = jax.tree_util.tree_map_with_path(
        lambda path, a: a.at[0].multiply(1.01) if path[-1].key == "var"
        and path[-2].key == "bn_0" else a, variables)
    assert np.abs(np.asarray(plain.apply(fold_batch_norm(model, bad)[1], x))
                  - logits).max() > tol


def test_folding_refuses_other_normalizations():
    model = build_model(RunSpec(widths=(4,), norm="layer"), 3)
    with pytest.raises(ValueError, match="only batch norm"):
        fold_batch_norm(model, {"params": {}})


# ----------------------------------------------------------------------------- the summary

KERAS = RunSpec(widths=(300, 100), activation="elu", norm="batch", norm_position="after",
                input_norm=True)


def test_summary_counts_match_the_keras_model():
    """Flatten, BN, Dense 300, BN, Dense 100, BN, Dense 10: Keras counts 271,346 parameters,
    268,978 trainable and 2,368 non-trainable (BN's moving mean and variance)."""
    rows = layer_rows(build_model(KERAS, 10), 784)
    assert [r.kind for r in rows] == ["Flatten", "BatchNormalization", "Dense",
                                      "BatchNormalization", "Dense", "BatchNormalization",
                                      "Dense"]
    assert [r.params for r in rows if r.kind == "Dense"] == [235_500, 30_100, 1_010]
    assert [r.params for r in rows if r.kind == "BatchNormalization"] == [3_136, 1_200, 400]
    assert totals(rows) == {"params": 271_346, "trainable": 268_978, "non_trainable": 2_368}


def test_summary_command():
    r = runner.invoke(app, ["summary", "--widths", "300,100", "--activation", "elu",
                            "--norm", "batch", "--norm-position", "after", "--input-norm"])
    assert r.exit_code == 0, r.output
    for number in ("271,346", "268,978", "2,368", "235,500", "3,136"):
        assert number in r.output
    r = runner.invoke(app, ["summary", "--experiment", "normalization", "--arm",
                            "batch_size=8,norm=group"])
    assert r.exit_code == 0, r.output
    assert "GroupNormalization" in r.output and "gn_4" in r.output


# ------------------------------------------------------------------------------------ lanes

@pytest.mark.slow  # 4 programs (~17 s cold); BN momentum lanes are in the default tier in
# tests/test_experiment_files.py::test_vectorized_lanes_equal_separate_programs
def test_bn_momentum_lanes_equal_separate_programs_with_input_norm_after():
    """BN momentum as a lane value (BN on the inputs and after the activation): one program
    gives the numbers of one program per arm (tests/_lanes.py tolerance); the momenta are
    told apart by the evaluation with running averages (negative control)."""
    exp = definition.parse({
        "name": "momentum", "dataset": "synthetic",
        "base": {"widths": [16, 16], "norm": "batch", "norm_position": "after",
                 "input_norm": True, "batch_size": 50, "max_steps": 60, "eval_every": 20,
                 "target": 0.0, "stop_at_target": False},
        "factors": {"bn_momentum": [0.5, 0.9, 0.99]}}, "<test>")
    data = load_dataset("synthetic", n_train=400, n_val=100, n_test=100, n_features=8,
                        n_classes=3)

    def frames(**kw):
        parts = [u.compute() for u in plan.build_units(exp, data, (0, 1), timing=False,
                                                          **kw)]
        return pd.concat([p[0] for p in parts]).sort_values(["arm", "seed"])

    lanes, alone = frames(), frames(one_program_per_arm=True)
    assert lanes["program"].nunique() == 1 and alone["program"].nunique() == 3
    assert list(lanes["input_norm"].unique()) == [True]
    for col in ("final_train_loss", "final_eval_loss", "final_test_loss"):
        np.testing.assert_allclose(lanes[col], alone[col], rtol=LANE_RTOL, atol=LANE_ATOL,
                                   err_msg=col)
    by = lanes.pivot_table(index="seed", columns="bn_momentum", values="final_eval_loss")
    assert not np.allclose(by[0.5], by[0.99], rtol=LANE_RTOL, atol=LANE_ATOL)


# ------------------------------------------------------------------------------- bad values

@pytest.mark.parametrize(("setting", "message"), [
    ("norm=batchy", "norm: unknown value 'batchy'"),
    ("bn_eval=median", "bn_eval: unknown value 'median'"),
    ("norm_groups=7", "norm_groups 7 does not divide the width 100"),
    ("bn_eval_batch=-1", "bn_eval_batch must be in"),
    ("input_norm=2", "input_norm must be true or false"),
])
def test_bad_normalization_values_are_one_line_errors(setting, message, tmp_path):
    args = ["run", "normalization", "--quick", "--dataset", "digits", "--out", str(tmp_path),
            "--set", setting]
    if setting.startswith("norm_groups"):
        args += ["--set", "norm=group"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert message in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_bad_summary_options_are_one_line_errors():
    for args, message in ((["--norm", "foo"], "norm: unknown value 'foo'"),
                          (["--widths", "3x"], "--widths must be integers"),
                          (["--experiment", "normalization", "--arm", "nope"], "no arm 'nope'")):
        r = runner.invoke(app, ["summary", *args])
        assert r.exit_code == 2 and message in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1, r.output


# ------------------------------------------------------------------------ input scaling

def test_input_scalings():
    """inputs = raw: the loaded features x 255 (MNIST's stored pixel values); standardized:
    the train split's mean 0 and std 1 per feature (std floored), the same shift and scale on
    the other splits; unit: as loaded."""
    from dnnbench.data import INPUT_SCALINGS, STD_FLOOR

    assert choices.INPUTS == tuple(INPUT_SCALINGS)
    assert definition.SETTINGS["inputs"].names == choices.INPUTS
    data = load_dataset("synthetic", n_train=200, n_val=50, n_test=50, n_features=5,
                        n_classes=3)
    spec = RunSpec(widths=(4,), eval_split="val")
    unit = to_device(data, spec)
    raw = to_device(data, spec.replace(inputs="raw"))
    std = to_device(data, spec.replace(inputs="standardized"))
    np.testing.assert_array_equal(unit["x_train"], data.x_train)
    np.testing.assert_allclose(raw["x_eval"], data.x_val * 255, rtol=1e-7)
    x = np.asarray(data.x_train, np.float64)
    mean, sd = x.mean(0), np.maximum(x.std(0), STD_FLOOR)
    np.testing.assert_allclose(std["x_train"].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(std["x_test"], (data.x_test - mean) / sd, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="unknown inputs"):
        to_device(data, spec.replace(inputs="pixels"))
    # the arrays an arm places on device are kept for the next arm of the same data: per
    # scaling (arms of other scalings in one run get their own)
    from dnnbench.train.arm import _placed_data

    placed = {k: _placed_data(data, spec.replace(inputs=k), None)["x_train"]
              for k in ("unit", "raw", "unit")}
    np.testing.assert_allclose(placed["raw"], data.x_train * 255, rtol=1e-7)
    np.testing.assert_array_equal(placed["unit"], data.x_train)
