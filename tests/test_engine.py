"""The training engine: compile-once, learning, BN inference mode, target detection, divergence."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dnnbench.data import load_dataset
from dnnbench.spec import RunSpec
from dnnbench.train.arm import train_arm
from dnnbench.train.engine import default_tx, first_reach, make_program, seed_keys, to_device


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", n_train=512, n_val=128, n_test=128, n_features=16)


def small_spec(**kw) -> RunSpec:
    base = dict(widths=(32, 32), batch_size=64, max_steps=60, eval_every=10, learning_rate=0.01,
                target=0.0, stop_at_target=False)
    return RunSpec(**{**base, **kw})


def test_loss_decreases_and_accuracy_rises(data):
    res = train_arm(small_spec(max_steps=200), data, seeds=[0, 1], timing=False)
    tr = res.trace
    assert tr.train_loss.shape == (2, 20)
    for i in range(2):
        assert tr.train_loss[i, -1] < 0.6 * tr.train_loss[i, 0]
        assert tr.eval_acc[i, -1] > 0.6  # chance is 0.1
    assert not tr.diverged.any()
    assert np.all(tr.n_done == 20)


def test_train_step_compiles_once_per_arm(data):
    """Tracing calls make_tx; a second call with new seeds must not trace (or compile) again."""
    calls = []

    def counting_tx(spec, lr):
        calls.append(1)
        return default_tx(spec, lr)

    spec = small_spec()
    prog = make_program(spec, data.n_classes, len(data.y_train), make_tx=counting_tx)
    run = jax.jit(jax.vmap(prog.run, in_axes=(0, 0, None)))
    dev = to_device(data, spec)
    lrs = jnp.full((2,), 0.01)
    run(seed_keys([0, 1]), lrs, dev)
    traced = len(calls)
    assert traced > 0
    run(seed_keys([5, 6]), lrs, dev)
    run(seed_keys([7, 8]), lrs * 0.5, dev)
    assert len(calls) == traced
    assert run._cache_size() == 1


def test_early_stop_at_target(data):
    spec = small_spec(max_steps=400, target=0.5, stop_at_target=True)
    tr = train_arm(spec, data, seeds=[0, 1, 2], timing=False).trace
    for i in range(3):
        n = int(tr.n_done[i])
        assert n < 40  # stopped early
        assert tr.eval_acc[i, n - 1] >= 0.5
        assert np.all(tr.eval_acc[i, : n - 1] < 0.5)
        assert np.all(np.isnan(tr.eval_acc[i, n:]))  # padding after the stop
        assert first_reach(tr.steps[i], tr.eval_acc[i], n, 0.5) == 10 * n


def test_first_reach_on_constructed_trace():
    steps = np.array([10, 20, 30, 40, 50])
    acc = np.array([0.5, 0.89, 0.9, 0.95, np.nan])
    assert first_reach(steps, acc, 4, 0.9) == 30
    assert first_reach(steps, acc, 2, 0.9) is None  # only the first two evaluations happened
    assert first_reach(steps, acc, 4, 0.99) is None


def test_diverging_seed_stops_and_others_continue(data):
    spec = small_spec(optimizer="sgd")
    tr = train_arm(spec, data, seeds=[0, 1], lrs=[0.05, 1e12], timing=False).trace
    assert not tr.diverged[0] and tr.diverged[1]
    assert tr.n_done[0] == spec.n_evals
    assert tr.n_done[1] < spec.n_evals
    assert np.isnan(tr.test_acc[1]) and np.isfinite(tr.test_acc[0])


def test_bn_evaluation_uses_running_averages(data):
    """A constant shift of the inputs is removed exactly by batch statistics (BN follows a
    bias-free Dense), but not by the running averages: the eval loss must change."""
    spec = small_spec(norm="batch", widths=(16,))
    prog = make_program(spec, data.n_classes, len(data.y_train))
    state = prog.init(jax.random.PRNGKey(0), 0.01, to_device(data, spec))
    x, y = jnp.asarray(data.x_test), jnp.asarray(data.y_test)
    loss, _ = prog.evaluate(state.params, state.batch_stats, x, y)
    loss_shifted, _ = prog.evaluate(state.params, state.batch_stats, x + 3.0, y)
    assert abs(float(loss_shifted) - float(loss)) > 1e-2


def test_pairing_same_seed_same_data_order(data):
    """Seed i of two different arms gets the same data order (common random numbers)."""
    a = make_program(small_spec(), data.n_classes, len(data.y_train))
    b = make_program(small_spec(norm="batch", optimizer="sgd"), data.n_classes,
                     len(data.y_train))
    dev = to_device(data, small_spec())
    key = jax.random.PRNGKey(3)
    sa, sb = a.init(key, 0.01, dev), b.init(key, 0.01, dev)
    np.testing.assert_array_equal(np.asarray(sa.perms), np.asarray(sb.perms))
    other = a.init(jax.random.PRNGKey(4), 0.01, dev)
    assert not np.array_equal(np.asarray(sa.perms), np.asarray(other.perms))


def test_timing_is_reported_separately(data):
    spec = small_spec(widths=(256, 256), batch_size=256, eval_every=100, max_steps=200)
    res = train_arm(spec, data, seeds=[0, 1], timing=True)
    t = res.timing
    assert t.compile_s > 0 and t.run_s > 0 and t.step_ms > 0
    assert np.isfinite(t.eval_ms) and t.eval_ms >= 0  # tiny evals can time as ~0
