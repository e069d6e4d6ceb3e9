"""The training engine: compile-once, learning, BN inference mode, target detection, divergence."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dnnbench.data import load_dataset
from dnnbench.spec import RunSpec
from dnnbench.train.arm import train_arm
from dnnbench.train.engine import first_reach, make_program, seed_keys, to_device
from dnnbench.train.optim import make_tx


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", n_train=512, n_val=128, n_test=128, n_features=16)


def small_spec(**kw) -> RunSpec:
    base = {"widths": (32, 32), "batch_size": 64, "max_steps": 60, "eval_every": 10,
            "learning_rate": 0.01, "target": 0.0, "stop_at_target": False}
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
        return make_tx(spec, lr)

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
    # the program's float32 accuracy of 4,500 of 5,000 is float32(0.9) < float64 0.9: the
    # program stops the seed there (it compares in float32), and so must this
    # (the callers read the curves as float64 arrays of those float32 values)
    exact = np.array([0.89, 4500 / 5000], np.float32).astype(float)
    assert exact[1] < 0.9 and first_reach(steps[:2], exact, 2, 0.9) == 20


def test_diverging_seed_stops_and_others_continue(data):
    spec = small_spec(optimizer="sgd")
    tr = train_arm(spec, data, seeds=[0, 1], hps={"learning_rate": [0.05, 1e12]}, timing=False).trace
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


def test_final_test_evaluation_is_the_last_one_when_evaluating_on_test(data):
    """With eval_split="test" the last evaluation already saw the final parameters, so the
    engine reuses it; it must equal a fresh evaluation of those parameters."""
    spec = small_spec(eval_split="test", max_steps=400, target=0.6, stop_at_target=True)
    res = train_arm(spec, data, seeds=[0, 1], timing=False, return_params=True)
    tr = res.trace
    prog = make_program(spec, data.n_classes, len(data.y_train))
    x, y = jnp.asarray(data.x_test), jnp.asarray(data.y_test)
    for i in range(2):
        n = int(tr.n_done[i])
        assert n < spec.n_evals  # stopped early, so the final state is the stop state
        assert tr.test_acc[i] == tr.eval_acc[i, n - 1]
        params = jax.tree_util.tree_map(lambda a, i=i: a[i], tr.params)
        loss, acc = prog.evaluate(params, {}, x, y)
        np.testing.assert_allclose(float(acc), tr.test_acc[i], rtol=1e-6)
        np.testing.assert_allclose(float(loss), tr.test_loss[i], rtol=1e-5)


@pytest.mark.parametrize("n", [7, 4999])
def test_blocked_evaluation_equals_one_pass(n):
    """evaluate() walks the examples in blocks (and a remainder); the means are the same."""
    from dnnbench.models import build_model

    d = load_dataset("synthetic", n_train=256, n_val=16, n_test=n, n_features=8)
    spec = small_spec(widths=(8,), batch_size=32)
    prog = make_program(spec, d.n_classes, len(d.y_train))
    state = prog.init(jax.random.PRNGKey(1), 0.01, to_device(d, spec))
    x, y = jnp.asarray(d.x_test), jnp.asarray(d.y_test)
    loss, acc = prog.evaluate(state.params, state.batch_stats, x, y)
    logits = build_model(spec, d.n_classes).apply({"params": state.params}, x, train=False)
    ref_loss = float(jnp.mean(
        jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, y[:, None], -1)[:, 0]))
    ref_acc = float(jnp.mean(jnp.argmax(logits, -1) == y))
    np.testing.assert_allclose(float(loss), ref_loss, rtol=1e-5)
    assert float(acc) == pytest.approx(ref_acc, abs=1e-6)


def test_initial_draws_made_ahead_equal_draws_made_inside(data):
    """seed_inputs draws the initial kernels (rounded-up counts) in a shared program; the
    parameters must be bit for bit those that init draws by itself."""
    spec = small_spec(widths=(24, 12), norm="batch")
    prog = make_program(spec, data.n_classes, len(data.y_train))
    dev = to_device(data, spec)
    keys = seed_keys([3, 4])
    pre = prog.seed_inputs(keys, dev)
    for i in range(2):
        inside = prog.init(keys[i], 0.01, dev)
        ahead = prog.init(keys[i], 0.01, dev,
                          pre=jax.tree_util.tree_map(lambda a, i=i: a[i], pre))
        for a, b in zip(jax.tree_util.tree_leaves(inside), jax.tree_util.tree_leaves(ahead),
                        strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_one_seed_run_equals_its_row_of_a_batch(data):
    """run(key) is run_seeds on a batch of one: the same numbers as row i of a batch."""
    spec = small_spec(max_steps=40)
    prog = make_program(spec, data.n_classes, len(data.y_train))
    dev = to_device(data, spec)
    keys = seed_keys([0, 1])
    batch = jax.jit(prog.run_seeds)(keys, jnp.full((2,), 0.01), dev)
    one = jax.jit(prog.run)(keys[1], jnp.float32(0.01), dev)
    np.testing.assert_allclose(np.asarray(one.train_loss), np.asarray(batch.train_loss[1]),
                               rtol=1e-5)
    assert int(one.n_done) == int(batch.n_done[1]) == spec.n_evals


def test_seeds_split_over_devices_only_where_it_pays(monkeypatch):
    from dnnbench.train import devices

    cpus = [type("D", (), {"platform": "cpu"})()] * 2
    monkeypatch.setattr(devices.jax, "devices", lambda: cpus)
    assert devices.seed_shards(16, 2e7) == 2  # small steps: both devices
    assert devices.seed_shards(5, 2e7) == 2  # 3 + 3 (one padded) beats 5 on one device
    assert devices.seed_shards(1, 2e7) == 1
    assert devices.seed_shards(16, 2.4e9) == 1  # a big step already fills both cores
    monkeypatch.setattr(devices.jax, "devices", lambda: cpus[:1])
    assert devices.seed_shards(16, 2e7) == 1


def test_a_split_arm_gives_the_numbers_of_an_unsplit_one(data, monkeypatch):
    """The seed axis split over two CPU devices (padded to an even count) must not change
    any seed's numbers."""
    if len(jax.devices()) < 2:
        pytest.skip("one device only (DNNBENCH_CPU_DEVICES=1 or a 1-core machine)")
    from dnnbench.train import arm as arm_module

    spec = small_spec(norm="batch")
    split = arm_module.compile_arm(spec, data, [0, 1, 2])
    assert split.shards == 2 and split.n_pad == 4
    monkeypatch.setattr(arm_module, "seed_shards", lambda n, f: 1)
    whole = arm_module.compile_arm(spec, data, [0, 1, 2])
    assert whole.shards == 1
    a, b = split.train(timing=False).trace, whole.train(timing=False).trace
    assert a.train_loss.shape == b.train_loss.shape == (3, spec.n_evals)
    np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=1e-5)
    np.testing.assert_allclose(a.test_acc, b.test_acc, rtol=1e-6)


def test_padded_data_orders_draw_every_real_row_once_per_epoch():
    from dnnbench.train.engine import data_orders

    perms = np.asarray(data_orders(seed_keys([0, 1]), 3, 20, jnp.int32(13)))
    assert perms.shape == (2, 3, 20)
    for row in perms.reshape(-1, 20):
        assert sorted(row[:13]) == list(range(13))  # the real rows first, each once
        assert sorted(row[13:]) == list(range(13, 20))  # padding last


def test_padded_evaluation_equals_the_unpadded_one(data):
    """Zero rows with weight 0 (padding) must not change the loss or the accuracy."""
    from dnnbench.train.engine import Rows

    spec = small_spec(widths=(16,))
    prog = make_program(spec, data.n_classes, len(data.y_train))
    plain = to_device(data, spec)
    padded = to_device(data, spec, Rows(600, 200, 4100))
    assert padded["x_test"].shape[0] == 4100 and int(padded["n_train"]) == 512
    state = prog.init(jax.random.PRNGKey(0), 0.01, plain)
    ref = prog.evaluate(state.params, {}, plain["x_test"], plain["y_test"])
    got = prog.evaluate(state.params, {}, padded["x_test"], padded["y_test"],
                        padded["w_test"])
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-5)


def test_seed_groups_fit_the_cache_and_pad_the_fewest(monkeypatch):
    from dnnbench.train import devices

    monkeypatch.setattr(devices.jax, "default_backend", lambda: "cpu")
    monkeypatch.setattr(devices, "CPU_SEED_GROUP_BYTES", 4 << 20)
    mb = 1 << 20
    assert devices.seed_chunk(10, 2e7, lambda: 2 * mb) == 2  # 5 groups of 2 fit
    assert devices.seed_chunk(10, 2e7, lambda: mb // 2) == 5  # 8 would fit; 2 x 5 pads nothing
    assert devices.seed_chunk(3, 2e7, lambda: 2 * mb) == 1  # 2 + 2 would pad one seed
    assert devices.seed_chunk(10, 2e7, lambda: 100) == 10  # everything fits
    assert devices.seed_chunk(10, 2e7, lambda: 64 * mb) == 1  # nothing fits: one by one
    assert devices.seed_chunk(3, 2.4e9, lambda: 64 * mb) == 3  # large steps: vmapped together
    monkeypatch.setattr(devices.jax, "default_backend", lambda: "gpu")
    assert devices.seed_chunk(10, 2e7, lambda: 2 * mb) == 10


def test_seeds_trained_in_groups_give_the_numbers_of_one_batch(data, monkeypatch):
    """Groups of seeds in sequence (``lax.map``), each stopping when its own seeds are done,
    must give every seed the numbers it gets in one vmapped batch (here with early stopping at
    different evaluations, a padded last group, and BN)."""
    from dnnbench.train import arm as arm_module

    monkeypatch.setattr(arm_module, "seed_shards", lambda n, f: 1)
    spec = small_spec(norm="batch", max_steps=300, target=0.75, stop_at_target=True,
                      eval_split="val")
    seeds = [0, 1, 2, 3, 4]
    grouped = arm_module.compile_arm(spec, data, seeds, chunk=2)
    whole = arm_module.compile_arm(spec, data, seeds, chunk=5)
    assert (grouped.chunk, grouped.n_pad, whole.chunk, whole.n_pad) == (2, 6, 5, 5)
    a, b = grouped.train(timing=False).trace, whole.train(timing=False).trace
    assert a.train_loss.shape == b.train_loss.shape == (5, spec.n_evals)
    assert len(set(np.asarray(b.n_done).tolist())) > 1  # the seeds stopped at different times
    np.testing.assert_array_equal(a.n_done, b.n_done)
    np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=1e-5)
    np.testing.assert_allclose(a.eval_acc, b.eval_acc, rtol=1e-6)
    np.testing.assert_allclose(a.test_acc, b.test_acc, rtol=1e-6)


def test_a_loss_far_above_its_initial_value_is_divergence_though_finite(data):
    """lr 10 and 30 blow the loss up to 29 and 6e6 in the first period (finite): with
    divergence_factor 10 those seeds diverge (and freeze); without it they count as trained."""
    spec = small_spec(optimizer="sgd")
    hps = {"learning_rate": [0.05, 3.0, 10.0, 30.0]}
    off = train_arm(spec, data, seeds=[0, 1, 2, 3], hps=hps, timing=False).trace
    on = train_arm(spec.replace(divergence_factor=10.0), data, seeds=[0, 1, 2, 3], hps=hps,
                   timing=False).trace
    assert not off.diverged.any() and np.isfinite(off.train_loss).all()
    assert off.train_loss[3, 0] > 10 * 2.5  # (the initial loss of 10 classes is ~2.3)
    assert list(on.diverged) == [False, False, True, True]
    assert (on.n_done[2:] == 1).all() and np.isnan(on.test_acc[2:]).all()
    np.testing.assert_array_equal(on.train_loss[:2], off.train_loss[:2])  # the others as before
