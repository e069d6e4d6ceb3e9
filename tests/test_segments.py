"""A unit's training in segments (progress between calls, issue 31): the numbers of one call."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from dnnbench.data import load_dataset
from dnnbench.spec import RunSpec
from dnnbench.train import arm as arm_mod
from dnnbench.train.arm import compile_arm


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", n_train=256, n_val=64, n_test=64, n_features=8)


def _same(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


SPECS = {
    # seeds stop at the target at different steps: some groups end before others
    "early stop": RunSpec(widths=(16,), learning_rate=0.05, batch_size=32, max_steps=200,
                          eval_every=10, target=0.8, eval_split="val"),
    # the whole budget, BN and diagnostics (the carry's optional parts)
    "budget": RunSpec(widths=(8, 8), norm="batch", learning_rate=0.01, batch_size=32,
                      max_steps=60, eval_every=5, target=0.0, stop_at_target=False,
                      diagnostics=True, eval_split="test"),
}


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("chunk", [None, 2])
def test_segments_of_any_length_give_the_numbers_of_one_call(data, name, chunk):
    spec = SPECS[name]
    arm = compile_arm(spec, data, list(range(4)), chunk=chunk)
    whole = arm.train(timing=False).trace
    for every in (1, 3, spec.n_evals):
        seen = []
        parts = arm.train(timing=False, progress=lambda i, n, seen=seen: seen.append((i, n)),
                          segment_evals=every).trace
        _same(whole, parts)
        assert seen and all(n == spec.n_evals for _, n in seen)
        assert [i for i, _ in seen] == sorted(i for i, _ in seen)  # never backwards


def test_without_progress_one_call_and_no_segment_program(data, monkeypatch):
    spec = SPECS["early stop"]
    arm = compile_arm(spec, data, [0, 1])
    calls = []
    monkeypatch.setattr(arm_mod.CompiledArm, "_segments", lambda *a, **k: calls.append(1))
    arm.train(timing=False)
    assert not calls

