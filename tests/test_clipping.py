"""Gradient clipping kinds (issue 16): by value, each tensor by its own norm (Keras clipnorm),
by the global norm; thresholds as lane values; the divergence-rate metric of claims."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from dnnbench import choices, definition
from dnnbench.analysis.claims import check_claims
from dnnbench.analysis.summary import summarize
from dnnbench.registry import CLIPPINGS, make_clipping
from dnnbench.spec import RunSpec, lane_values
from dnnbench.train.optim import make_tx


def clipped(kind: str, threshold, grads):
    tx = make_clipping(kind, threshold)
    return tx.update(grads, tx.init(grads))[0]


def test_textbook_example():
    """Gradient (0.9, 100), threshold 1.0: by value (0.9, 1.0); by norm (0.00899964,
    0.9999595) (Géron, chapter 11)."""
    g = {"w": jnp.array([0.9, 100.0])}
    np.testing.assert_allclose(clipped("value", 1.0, g)["w"], [0.9, 1.0], rtol=1e-7)
    np.testing.assert_allclose(clipped("norm", 1.0, g)["w"], [0.00899964, 0.9999595],
                               rtol=1e-6)


def test_each_tensor_by_its_own_norm_vs_the_global_norm():
    g = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([0.3, 0.4])}  # norms 5 and 0.5
    per_tensor = clipped("norm", 1.0, g)
    np.testing.assert_allclose(per_tensor["a"], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(per_tensor["b"], [0.3, 0.4], rtol=1e-7)  # below: unchanged
    glob = clipped("global_norm", 1.0, g)
    scale = 1 / math.sqrt(25 + 0.25)
    for k, value in g.items():
        np.testing.assert_allclose(glob[k], np.asarray(value) * scale, rtol=1e-6)
    np.testing.assert_allclose(clipped("value", 0.35, g)["b"], [0.3, 0.35], rtol=1e-7)


@pytest.mark.parametrize("kind", ["value", "norm", "global_norm"])
def test_threshold_is_a_lane_value_and_inf_is_off(kind):
    """Thresholds vmapped as lanes equal each threshold alone; inf (a lane's "off") leaves the
    gradients unchanged, zero gradients stay zero (no 0/0)."""
    g = {"a": jnp.array([3.0, -4.0]), "b": jnp.array([0.0, 0.0])}
    thresholds = jnp.array([0.5, 2.0, jnp.inf])
    lanes = jax.vmap(lambda t: clipped(kind, t, g))(thresholds)
    for i, t in enumerate(thresholds):
        alone = clipped(kind, float(t), g)
        for k in g:
            np.testing.assert_allclose(lanes[k][i], alone[k], rtol=1e-6)
    for k, value in g.items():
        np.testing.assert_array_equal(lanes[k][2], value)
    assert not np.allclose(lanes["a"][0], g["a"])  # the finite thresholds clip (control)


def test_no_clipping_is_no_transformation():
    assert make_clipping("none", 1.0) is None
    assert make_clipping("norm", 0.0) is None
    with pytest.raises(ValueError, match="unknown clip 'abs'"):
        make_clipping("abs", 1.0)
    assert choices.CLIPPINGS == tuple(CLIPPINGS)
    assert definition.SETTINGS["clip"].names == choices.CLIPPINGS


def test_engine_clips_the_gradient_tree_before_the_flattened_optimizer():
    """The engine's optimizer runs on one raveled vector; clipping by each tensor's norm must
    still see the tensors (on the raveled vector it would be the global norm)."""
    params = {"a": jnp.zeros(2), "b": jnp.zeros(2)}
    g = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([0.3, 0.4])}
    for kind, want in (("norm", {"a": [0.6, 0.8], "b": [0.3, 0.4]}),
                       ("global_norm", {k: np.asarray(v) / math.sqrt(25.25)
                                        for k, v in g.items()})):
        spec = RunSpec(widths=(4,), optimizer="sgd", learning_rate=1.0, clip=kind,
                       clip_norm=1.0)
        hp = {k: jnp.float32(v) for k, v in lane_values(spec).items()}
        tx = make_tx(spec, hp)
        updates = tx.update(g, tx.init(params), params)[0]
        for k, value in want.items():  # sgd at lr 1: the update is minus the clipped gradient
            np.testing.assert_allclose(-updates[k], value, rtol=1e-6, err_msg=kind)


def test_defaults_keep_every_earlier_spec_hash():
    spec = RunSpec(widths=(100,))
    assert "clip" not in spec.to_dict() and "inputs" not in spec.to_dict()
    assert spec.replace(clip="norm").hash != spec.hash
    none = definition.make_spec({"clip": "none", "clip_norm": 1.0}, n_train=None)
    assert none.clip_norm == 0.0  # no threshold without clipping


def _claims_runs(diverged_none, diverged_clip):
    rows = []
    for clip, div in (("none", diverged_none), ("norm", diverged_clip)):
        for seed, d in enumerate(div):
            rows.append({"arm": f"clip={clip}", "clip": clip, "seed": seed, "diverged": d,
                         "reached": not d, "steps_to_target": None if d else 100,
                         "steps_done": 100, "step_ms": 1.0, "compile_s": 1.0,
                         "final_test_accuracy": math.nan if d else 0.9})
    return pd.DataFrame(rows)


def test_divergence_rate_metric_in_summary_and_claims():
    exp = definition.parse({
        "name": "clip", "reference": {"clip": "none"},
        "show": ["divergence_rate", "final_test_accuracy"],
        "factors": {"clip": {"none": {"clip": "none"}, "norm": {"clip": "norm",
                                                                "clip_norm": 1.0}}},
        "claims": [{"text": "clipping prevents divergence", "compare": {"clip": "norm"},
                    "metric": "divergence_rate", "expect": "lower"},
                   {"text": "clipping converges", "compare": {"clip": "norm"},
                    "metric": "steps_to_target", "expect": "fewer"}]}, "<test>")
    runs = _claims_runs([True] * 5, [False] * 5)
    summary = summarize(exp, runs).set_index("arm")
    assert summary.loc["clip=none", "divergence_rate"] == 1.0
    assert summary.loc["clip=norm", "divergence_rate"] == 0.0
    assert summary.loc["clip=norm", "diff"] == -1.0
    claims = check_claims(exp, runs)
    # divergence is a paired 0/1 outcome: McNemar's exact test, which 5 seeds cannot pass at
    # 2.5% even when every unclipped seed diverges and no clipped one does (p = 1/32) ...
    assert claims["verdict"].iloc[0] == "inconclusive"
    assert "lower in 5 of 5 pairs" in claims["effects"].iloc[0]
    # ... and 10 seeds can (p = 1/1024)
    ten = check_claims(exp, _claims_runs([True] * 10, [False] * 10))
    assert ten["verdict"].iloc[0] == "supported" and ten["effect"].iloc[0] == -1.0
    # steps when one median is not reached (5/5 vs 0/5): the log-rank test decides
    assert claims["verdict"].iloc[1] == "supported", claims["effects"].iloc[1]
    mixed = _claims_runs([True, False, True, False, False], [False, False, True, False, True])
    assert check_claims(exp, mixed)["verdict"].iloc[0] == "inconclusive"
    worse = _claims_runs([False] * 10, [True] * 10)
    claims = check_claims(exp, worse)
    assert claims["verdict"].iloc[0] == "contradicted"
    # steps when a median is not reached: the effect says how many reached, not "xnan"
    assert "clip=norm: a median not reached; one-sided log-rank" in claims["effects"].iloc[1]
    assert "reached 0/10 vs 10/10; diverged: 10 of 10 vs 0 of 10" in claims["effects"].iloc[1]
