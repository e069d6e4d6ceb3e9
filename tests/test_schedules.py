"""Learning-rate schedules as data (values against their formulas, parameters as lane values,
the recorded learning rate) and the learning-rate range test (`dnnbench lr-find`)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest
from _lanes import assert_lanes_differ, assert_lanes_match
from typer.testing import CliRunner

from dnnbench import choices, definition
from dnnbench.cli import app
from dnnbench.data import load_dataset
from dnnbench.registry import OPTIMIZERS, SCHEDULES
from dnnbench.run import lr_find as lrf
from dnnbench.run import plan
from dnnbench.spec import SCHEDULE_PREFIX, RunSpec, group_spec, lane_values, structure_key
from dnnbench.train.arm import train_arm
from dnnbench.train.optim import learning_rate_at, make_tx

runner = CliRunner()


def rate(name, lr, steps, params, ts):
    """The learning rate of schedule ``name`` at the counts ``ts``, its ``params`` as lane
    values (numbers or traced)."""
    spec = RunSpec(widths=(1,), schedule=name, learning_rate=lr, max_steps=steps)
    return learning_rate_at(spec, {SCHEDULE_PREFIX + k: v for k, v in params.items()}, ts)


def values(name, lr, steps, params, ts):
    return np.array([float(rate(name, lr, steps, params, jnp.int32(t))) for t in ts])


def optimizer(name, lr, schedule, steps):
    return make_tx(RunSpec(widths=(1,), optimizer=name, learning_rate=lr, schedule=schedule,
                           max_steps=steps))


# ---------------------------------------------------------------- values against the formula

def test_power_halves_at_s_and_is_a_third_at_2s():
    np.testing.assert_allclose(values("power", 0.2, 10_000, {"decay_steps": 500},
                                      [0, 500, 1000]), [0.2, 0.1, 0.2 / 3], rtol=1e-6)
    # exponent c: (1 + t/s)^-c
    np.testing.assert_allclose(values("power", 1.0, 10_000, {"decay_steps": 500, "exponent": 2},
                                      [500]), [0.25], rtol=1e-6)


def test_exponential_is_a_tenth_at_s_and_a_hundredth_at_2s():
    np.testing.assert_allclose(values("exponential", 0.3, 10_000, {"decay_steps": 700},
                                      [0, 350, 700, 1400]),
                               [0.3, 0.3 / 10 ** 0.5, 0.03, 0.003], rtol=1e-5)


def test_piecewise_pieces_at_fractions_of_the_budget():
    got = values("piecewise", 1.0, 1000, {"boundary1": 0.2, "boundary2": 0.6, "scale1": 0.5,
                                          "scale2": 0.05}, [0, 199, 200, 599, 600, 999])
    np.testing.assert_allclose(got, [1, 1, 0.5, 0.5, 0.05, 0.05], rtol=1e-6)


def test_onecycle_peak_and_end_and_equal_to_optax():
    steps, peak = 1000, 0.1
    got = values("1cycle", peak, steps, {}, [0, 450, 900, 1000])
    # eta0/10 at the start, eta0 at 45%, eta0/10 at 90%, eta0/10/1000 at the end (the
    # end is a difference of two nearly equal numbers in float32: absolute tolerance)
    np.testing.assert_allclose(got, [peak / 10, peak, peak / 10, peak / 1e4], rtol=1e-5,
                               atol=1e-7 * peak * 10)
    reference = optax.linear_onecycle_schedule(steps, peak, 0.45, 0.9, 10.0, 1000.0)
    ts = np.arange(0, steps + 1, 7)
    np.testing.assert_allclose(values("1cycle", peak, steps, {}, ts),
                               [float(reference(t)) for t in ts], rtol=1e-5, atol=1e-7)


def test_onecycle_cycles_the_momentum_of_optimizers_that_have_one():
    tx = optimizer("momentum", 0.1, "1cycle", 100)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    seen = []  # the momentum used by the update of each count
    for _ in range(100):
        _, state = tx.update({"w": jnp.ones(3)}, state, params)
        seen.append(float(state.hyperparams["momentum"]))
    # 0.95 at the start, 0.85 at the learning rate's peak (45%), 0.95 again from 90%
    np.testing.assert_allclose([seen[0], seen[45], seen[90], seen[99]],
                               [0.95, 0.85, 0.95, 0.95], rtol=1e-6)
    # Adam's b1 is cycled; plain SGD and RMSProp have no momentum to cycle
    adam = optimizer("adam", 0.1, "1cycle", 100).init(params)
    assert float(adam.hyperparams["b1"]) == pytest.approx(0.95)
    for name in ("sgd", "rmsprop"):
        plain = optimizer(name, 0.1, "1cycle", 100).init(params)
        assert not hasattr(plain, "hyperparams")


def test_existing_schedules_keep_their_values():
    """cosine and warmup-cosine are the optax schedules they were (committed results)."""
    ts = [0, 10, 50, 99, 100]
    np.testing.assert_allclose(values("cosine", 0.1, 100, {}, ts),
                               [float(optax.cosine_decay_schedule(0.1, 100)(t)) for t in ts])
    ref = optax.warmup_cosine_decay_schedule(0.0, 0.1, warmup_steps=5, decay_steps=100)
    np.testing.assert_allclose(values("warmup-cosine", 0.1, 100, {}, ts),
                               [float(ref(t)) for t in ts])


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_every_parameter_may_be_traced(name):
    """Parameters as traced scalars (lane values) give the values of the static ones."""
    params = SCHEDULES[name].params
    ts = jnp.arange(0, 1001, 50)
    static = rate(name, 0.1, 1000, params, ts)
    traced = jax.jit(lambda p: rate(name, 0.1, 1000, p, ts))(
        {k: jnp.float32(v) for k, v in params.items()})
    np.testing.assert_allclose(traced, static, rtol=1e-5, atol=1e-9)


def test_schedule_parameters_do_not_collide_with_optimizer_coefficients():
    coefficients = {k for o in OPTIMIZERS.values() for k in o.defaults}
    for name, s in SCHEDULES.items():
        assert not set(s.params) & coefficients, name
    assert choices.SCHEDULES == tuple(SCHEDULES)


# ---------------------------------------------------------------------- specs and lanes

def test_spec_hash_unchanged_without_schedule_params_and_lane_names():
    spec = RunSpec(widths=(8,), schedule="power")
    assert "schedule_params" not in spec.to_dict()
    set_ = spec.replace(schedule_params=(("decay_steps", 50.0),))
    assert set_.to_dict()["schedule_params"] == [["decay_steps", 50.0]]
    assert set_.hash != spec.hash and structure_key(set_) == structure_key(spec)
    lanes = lane_values(set_)
    assert lanes["sched.decay_steps"] == 50.0 and lanes["sched.exponent"] == 1.0
    _, names = group_spec([spec, set_])
    assert names == ("learning_rate", "sched.decay_steps")


def test_schedule_params_as_lanes_equal_separate_programs():
    """Two power schedules (and two 1cycle peaks) as lanes of one program train exactly as
    separate programs do (float32 tolerance of tests/_lanes.py), and the curves record each
    lane's learning rate; a different parameter is told apart (negative control)."""
    data = load_dataset("synthetic", n_train=400, n_val=100, n_test=100, n_features=8,
                        n_classes=3)
    base = RunSpec(widths=(16,), optimizer="momentum", schedule="power", batch_size=50,
                   max_steps=60, eval_every=10, eval_split="val", target=0.0,
                   stop_at_target=False, learning_rate=0.2)
    arms = [base.replace(schedule_params=(("decay_steps", s),)) for s in (5.0, 500.0)]
    spec, lanes = group_spec(arms)
    assert "sched.decay_steps" in lanes
    hps = {k: [lane_values(a)[k] for a in arms for _ in (0, 1)] for k in lanes}
    together = train_arm(spec, data, (0, 1, 0, 1), hps=hps, timing=False).trace
    alone = [train_arm(a, data, (0, 1), timing=False).trace for a in arms]
    n = base.n_evals
    for i, a in enumerate(alone):
        lane = jax.tree_util.tree_map(lambda x, i=i: x[2 * i:2 * i + 2], together)
        assert_lanes_match(lane, a, n, f"decay_steps arm {i}")
        # the recorded learning rate: the schedule's at the last step before each evaluation
        s = dict(arms[i].schedule_params)["decay_steps"]
        np.testing.assert_allclose(lane.lr[0], 0.2 / (1 + (np.arange(1, n + 1) * 10 - 1) / s),
                                   rtol=1e-6)
    assert_lanes_differ(alone[0], alone[1], n, "decay_steps 5 vs 500")


def test_a_constant_learning_rate_is_recorded_at_every_evaluation():
    data = load_dataset("synthetic", n_train=200, n_val=50, n_test=50, n_features=4,
                        n_classes=2)
    spec = RunSpec(widths=(4,), optimizer="sgd", batch_size=50, max_steps=40, eval_every=10,
                   target=0.0, stop_at_target=False, learning_rate=0.05)
    trace = train_arm(spec, data, (0, 1, 2), hps={"learning_rate": [0.05, 0.1, 0.2]},
                      timing=False).trace
    np.testing.assert_allclose(trace.lr, np.repeat([[0.05], [0.1], [0.2]], 4, axis=1),
                               rtol=1e-7)


def test_plateau_rule_equals_optax_reduce_on_plateau():
    """The plateau rule on a constructed loss sequence: falls, stalls, falls, stalls."""
    from optax import contrib

    from dnnbench.registry import plateau_start, plateau_step

    losses = [1.0, 0.8, 0.8, 0.80001, 0.9, 0.7, 0.7, 0.7, 0.7, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6]
    rop = contrib.reduce_on_plateau(factor=0.5, patience=3, rtol=1e-4)
    ref_state = rop.init(jnp.zeros(1))
    ours = plateau_start(())
    scales, ref = [], []
    for loss in losses:
        _, ref_state = rop.update(jnp.zeros(1), ref_state, value=jnp.float32(loss))
        ours = plateau_step(ours, jnp.float32(loss), factor=0.5, patience=3.0,
                            threshold=1e-4, min_scale=0.0)
        scales.append(float(ours.scale))
        ref.append(float(ref_state.scale))
    assert scales == ref
    # three evaluations without improvement halve the rate (0.80001 is no improvement)
    assert scales == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125]


def test_plateau_scales_the_learning_rate_of_the_program_and_its_lanes():
    """threshold 1 never counts an improvement: patience 1 halves the rate at every
    evaluation, patience 1000 never; as lanes of one program, as separate programs."""
    data = load_dataset("synthetic", n_train=400, n_val=100, n_test=100, n_features=8,
                        n_classes=3)
    base = RunSpec(widths=(16,), optimizer="momentum", schedule="plateau", batch_size=50,
                   max_steps=60, eval_every=10, eval_split="val", target=0.0,
                   stop_at_target=False, learning_rate=0.2)
    arms = [base.replace(schedule_params=(("patience", p), ("threshold", 1.0)))
            for p in (1.0, 1000.0)]
    spec, lanes = group_spec(arms)
    assert "sched.patience" in lanes
    hps = {k: [lane_values(a)[k] for a in arms for _ in (0, 1)] for k in lanes}
    together = train_arm(spec, data, (0, 1, 0, 1), hps=hps, timing=False).trace
    alone = [train_arm(a, data, (0, 1), timing=False).trace for a in arms]
    n = base.n_evals
    expected = [0.2 * 0.5 ** np.arange(n), np.full(n, 0.2)]
    for i, a in enumerate(alone):
        lane = jax.tree_util.tree_map(lambda x, i=i: x[2 * i:2 * i + 2], together)
        assert_lanes_match(lane, a, n, f"patience arm {i}")
        np.testing.assert_allclose(lane.lr[1], expected[i], rtol=1e-6)
        np.testing.assert_allclose(a.lr[0], expected[i], rtol=1e-6)
    assert_lanes_differ(alone[0], alone[1], n, "patience 1 vs 1000")


# ---------------------------------------------------------------------- experiment files

BAD = """
name = "x"
[base]
schedule = "power"
{line}
"""


@pytest.mark.parametrize("line,message", [
    ("decay_step = 10", "schedule power has the parameters decay_steps, exponent"),
    ("decay_steps = 0", "decay_steps (a parameter of schedule power) must be > 0"),
    ("decay_steps = -3", "decay_steps must be a finite number >= 0"),
])
def test_bad_schedule_parameters_exit_2_with_one_line(tmp_path, line, message):
    path = tmp_path / "x.toml"
    path.write_text(BAD.format(line=line))
    r = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert message in r.output, r.output


def test_schedule_params_from_a_file_are_lanes_columns_and_curves(tmp_path):
    exp = definition.parse({
        "name": "sched", "dataset": "synthetic",
        "base": {"widths": [8], "optimizer": "momentum", "schedule": "exponential",
                 "batch_size": 50, "max_steps": 40, "eval_every": 10, "target": 0.0},
        "factors": {"decay_steps": [20, 2000]}}, "<test>")
    data = load_dataset("synthetic", n_train=200, n_val=50, n_test=50, n_features=4,
                        n_classes=2)
    parts = [u.compute() for u in plan.build_units(exp, data, (0,), timing=False)]
    assert len(parts) == 1  # one program
    runs, curves = parts[0]
    assert sorted(runs["decay_steps"]) == [20.0, 2000.0]
    last = curves[curves["step"] == 40].set_index("arm")["learning_rate"]
    np.testing.assert_allclose(last["decay_steps=20"], 0.01 * 0.1 ** (39 / 20), rtol=1e-5)
    np.testing.assert_allclose(last["decay_steps=2000"], 0.01 * 0.1 ** (39 / 2000), rtol=1e-5)


# ------------------------------------------------------------------ the range test (lr-find)

def test_suggestion_is_a_tenth_of_the_turning_point_of_a_constructed_curve():
    lr = np.logspace(-5, 1, 300)
    rng = np.random.default_rng(0)
    # falls until lr = 0.1, then climbs; noise of the size of a step's loss noise
    loss = 0.3 + (np.log10(lr) + 1) ** 2 / 4 + rng.normal(0, 0.05, (3, 300))
    s = lrf.suggest(lr, loss)
    assert s.turning_lr == pytest.approx(0.1, rel=0.25)
    assert s.suggested_lr == pytest.approx(s.turning_lr / 10)
    assert s.climbed


def test_suggestion_ends_at_divergence_and_says_when_the_loss_never_climbed():
    lr = np.logspace(-4, 0, 200)
    falling = 2.0 - 0.1 * (np.log10(lr) + 4)
    assert not lrf.suggest(lr, falling).climbed  # still falling at --max-lr
    assert lrf.suggest(lr, falling).turning_lr == pytest.approx(lr[-1])
    diverging = np.where(np.arange(200) < 150, 2.0 - np.arange(200) / 200, np.nan)
    s = lrf.suggest(lr, diverging)
    assert s.climbed and s.steps == 150 and s.turning_lr <= lr[149]
    with pytest.raises(ValueError, match="lower --min-lr"):
        lrf.suggest(lr, np.full(200, np.nan))


def test_range_spec_replaces_the_arms_schedule_by_the_ramp():
    spec = lrf.range_spec({"schedule": "power", "decay_steps": 100.0, "epochs": 3}, 1000,
                          min_lr=1e-4, max_lr=1.0, steps=50, where="<test>")
    assert spec.schedule == lrf.RAMP and spec.max_steps == 50 and spec.eval_every == 1
    assert dict(spec.schedule_params) == {"max_ratio": pytest.approx(1e4)}
    ts = np.array([0, 49])
    np.testing.assert_allclose(values(lrf.RAMP, 1e-4, 50, {"max_ratio": 1e4}, ts),
                               [1e-4, 1.0], rtol=1e-5)


def test_lr_find_end_to_end_on_digits(tmp_path):
    r = runner.invoke(app, ["lr-find", "optimizer-comparison", "--set", "optimizer=momentum",
                            "--dataset", "digits", "--seeds", "2", "--steps", "120",
                            "--out", str(tmp_path), "--plot"])
    assert r.exit_code == 0, r.output
    curves = pd.read_csv(tmp_path / "lr-find-optimizer-comparison-digits-curves.csv")
    runs = pd.read_csv(tmp_path / "lr-find-optimizer-comparison-digits-runs.csv")
    meta = json.loads((tmp_path / "lr-find-optimizer-comparison-digits-meta.json").read_text())
    assert list(curves.columns) == lrf.CURVE_COLUMNS and set(curves["seed"]) == {0, 1}
    first = curves[curves["step"] == 1]["learning_rate"]
    np.testing.assert_allclose(first, 1e-5, rtol=1e-5)  # the ramp starts at --min-lr
    last = curves[(curves["seed"] == 0)].sort_values("step")
    if len(last) == 120:  # ends at --max-lr when not diverged
        assert last["learning_rate"].iloc[-1] == pytest.approx(10.0, rel=1e-4)
    assert len(runs) == 2 and meta["rule"] == lrf.RULE
    assert meta["suggested_lr"] == pytest.approx(meta["turning_lr"] / 10)
    assert 1e-5 < meta["suggested_lr"] < 1.0
    line = " ".join(r.output.split())
    assert "Suggested learning rate" in line and "/ 10" in line
    assert "Tested arm: 3 x 100 relu" in line and "momentum, constant schedule" in line
    assert (tmp_path / "lr-find-optimizer-comparison-digits-loss-vs-lr.png").exists()
    # the report has a section for it: the arm, the suggestion, the table and the figure
    from dnnbench.report.html import build_report, render_html

    report = build_report(tmp_path)
    (section,) = report.sections
    assert section.title == "Learning-rate range test: optimizer-comparison — digits"
    assert section.bullets[0].startswith("Tested arm: 3 x 100 relu")
    assert f"{meta['suggested_lr']:.3g}" in section.bullets[1]
    assert len(section.figures) == 1 and section.figures[0].png[:4] == b"\x89PNG"
    assert "Per seed (2 seeds)" in render_html(report)


@pytest.mark.parametrize("args,message", [
    (["--min-lr", "0"], "--min-lr must be a positive"),
    (["--min-lr", "1", "--max-lr", "0.1"], "must be above --min-lr"),
    (["--steps", "3"], "--steps must be at least 10"),
    (["--set", "learning_rate=0.1,0.2"], "one value per key"),
    (["--set", "momentum=2x"], "unknown setting"),
])
def test_lr_find_bad_input_exit_2_one_line(tmp_path, args, message):
    r = runner.invoke(app, ["lr-find", "schedules", "--dataset", "digits", *args,
                            "--out", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()) and "Traceback" not in r.output


def test_run_plot_draws_learning_rate_curves_and_speed_vs_quality(tmp_path):
    # the settings of the catalogue contract test (tests/test_experiment_files.py): the same
    # programs, so whichever of the two runs second loads them from the compilation cache
    r = runner.invoke(app, ["run", "schedules", "--quick", "--dataset", "digits", "--out",
                            str(tmp_path), "--set", "max_steps=60", "--set", "eval_every=20",
                            "--set", "target=0.5", "--plot"])
    assert r.exit_code == 0, r.output
    curves = pd.read_csv(tmp_path / "schedules-digits-curves.csv")
    lr = curves.groupby("arm")["learning_rate"]
    assert lr.nunique()["schedule=constant"] == 1 and lr.nunique()["schedule=power"] > 1
    for figure in ("learning-rate", "speed-vs-quality", "steps-to-target"):
        assert (tmp_path / f"schedules-digits-{figure}.png").exists(), figure
