"""`dnnbench optimizers`: registry contract, optimizer identities, the preset over
optimizer-comparison.toml end to end (the common schema, tuned arms), its speed-vs-quality
figure, and its bad-input handling."""

from __future__ import annotations

import inspect
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest
from typer.testing import CliRunner

from dnnbench import definition
from dnnbench.cli import app
from dnnbench.data import load_dataset
from dnnbench.definition import optimizers as exp
from dnnbench.registry import OPTIMIZERS
from dnnbench.spec import RunSpec
from dnnbench.train.engine import make_program
from dnnbench.train.optim import learning_rate_at, make_tx

runner = CliRunner()


def optimizer(name, lr, **settings):
    """The optimizer of a run of ``name`` with ``settings``, ``lr`` a lane value (a number or
    traced), by the one route."""
    return make_tx(RunSpec(widths=(1,), optimizer=name, **settings), {"learning_rate": lr})

# ------------------------------------------------------------------ registry contract

CONTRACT_LR = {"sgd": 0.3, "momentum": 0.1, "nesterov": 0.1, "adagrad": 0.1}  # others: 0.01


@pytest.fixture(scope="module")
def contract_losses():
    """Loss before/after 50 full-batch steps of a tiny ReLU MLP, for every registered optimizer:
    2 seeds vmapped, lr a traced input (as in the engine); one compiled program for all."""
    data = load_dataset("synthetic", n_train=128, n_val=8, n_test=8, n_features=8, n_classes=3)
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)

    def loss(p):
        logits = jax.nn.relu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def init(key):
        k1, k2 = jax.random.split(key)
        he = jax.nn.initializers.he_normal()
        return {"w1": he(k1, (8, 16)), "b1": jnp.zeros(16),
                "w2": jax.nn.initializers.glorot_uniform()(k2, (16, 3)), "b2": jnp.zeros(3)}

    def train(name, key, lr):
        params = init(key)
        tx = optimizer(name, lr)

        def step(_, carry):
            p, s = carry
            u, s = tx.update(jax.grad(loss)(p), s, p)
            return optax.apply_updates(p, u), s

        final, _ = jax.lax.fori_loop(0, 50, step, (params, tx.init(params)))
        return loss(params), loss(final)

    def all_optimizers(keys):
        return {name: jax.vmap(lambda k, lr, n=name: train(n, k, lr))(
            keys, jnp.full((2,), CONTRACT_LR.get(name, 0.01))) for name in OPTIMIZERS}

    keys = jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)])
    return jax.device_get(jax.jit(all_optimizers)(keys))


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_registered_optimizer_reduces_the_loss(name, contract_losses):
    before, after = contract_losses[name]
    assert np.all(np.isfinite(after))
    assert np.all(after < 0.8 * before), (name, before, after)


# ------------------------------------------------------------------ optimizer identities

def _updates(tx, params, grads_seq):
    state, out = tx.init(params), []
    for g in grads_seq:
        u, state = tx.update(g, state, params)
        params = optax.apply_updates(params, u)
        out.append(u)
    return out


def _problem(seed=0, n=3, scale=1.0):
    rng = np.random.default_rng(seed)
    params = {"w": jnp.asarray(scale * rng.normal(size=(4, 3)), jnp.float32),
              "b": jnp.asarray(scale * rng.normal(size=(3,)), jnp.float32)}
    grads = [jax.tree_util.tree_map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32),
                                    params) for _ in range(n)]
    return params, grads


def test_nesterov_differs_from_momentum():
    params, grads = _problem()
    lr = 0.1
    mom = _updates(optimizer("momentum", lr), params, grads)
    nes = _updates(optimizer("nesterov", lr), params, grads)
    # first step: momentum -lr g, Nesterov looks ahead: -lr (g + 0.9 g)
    np.testing.assert_allclose(mom[0]["w"], -lr * grads[0]["w"], rtol=1e-6)
    np.testing.assert_allclose(nes[0]["w"], -lr * 1.9 * grads[0]["w"], rtol=1e-6)
    for m, n in zip(mom, nes, strict=True):
        assert not np.allclose(m["w"], n["w"], rtol=1e-3)


def test_adamw_equals_adam_without_weight_decay_and_differs_with_it():
    params, grads = _problem(seed=1, n=5)
    lr = 0.01
    adam = _updates(optax.adam(lr, b1=0.9, b2=0.999), params, grads)
    adamw0 = _updates(optax.adamw(lr, b1=0.9, b2=0.999, weight_decay=0.0), params, grads)
    for a, w in zip(adam, adamw0, strict=True):
        for k in a:
            np.testing.assert_allclose(w[k], a[k], rtol=1e-6, atol=1e-9)
    # the registry's adamw (weight decay 1e-5) adds exactly -lr * wd * params on the first step
    # (large params, so that the difference stands far above float32 rounding)
    params, grads = _problem(seed=2, n=1, scale=1000.0)
    reg_adam = _updates(optimizer("adam", lr), params, grads[:1])[0]
    reg_adamw = _updates(optimizer("adamw", lr), params, grads[:1])[0]
    for k in params:
        diff = np.asarray(reg_adamw[k]) - np.asarray(reg_adam[k])
        assert np.abs(diff).max() > 0
        np.testing.assert_allclose(diff, -lr * 1e-5 * np.asarray(params[k]), rtol=1e-3,
                                   atol=1e-10)


# ------------------------------------------------------------------ the one route

ADAM = {"b1": 0.9, "b2": 0.999, "eps": 1e-8}


@pytest.mark.parametrize("name, settings, alias", [
    ("sgd", {}, lambda lr: optax.sgd(lr)),
    ("momentum", {}, lambda lr: optax.sgd(lr, momentum=0.9)),
    ("adam", {}, lambda lr: optax.adam(lr, **ADAM)),
    ("adamw", {}, lambda lr: optax.adamw(lr, **ADAM, weight_decay=1e-5)),
    ("adam", {"optimizer_params": {"weight_decay": 0.01}}, lambda lr: optax.chain(
        optax.scale_by_adam(**ADAM), optax.add_decayed_weights(0.01),
        optax.scale_by_learning_rate(lr))),
    ("sgd", {"schedule": "cosine", "max_steps": 4},
     lambda lr: optax.sgd(optax.cosine_decay_schedule(lr, 4))),
    ("momentum", {"clip": "global_norm", "clip_norm": 1.0},
     lambda lr: optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(lr, momentum=0.9))),
], ids=["sgd", "momentum", "adam", "adamw", "adam-decay", "sgd-cosine", "momentum-clip"])
def test_the_run_optimizer_is_the_optax_chain_of_its_settings(name, settings, alias):
    """make_tx of a spec (clipping, direction, decoupled decay, rate or schedule) is the chain
    that optax's aliases build of the same settings: on the parameter tree, the same updates
    bit for bit; raveled into one vector (the engine's), the same up to float32 rounding."""
    params, grads = _problem(seed=3, n=4)
    spec = RunSpec(widths=(1,), optimizer=name, **settings)
    theirs = _updates(alias(0.01), params, grads)
    on_tree = _updates(make_tx(spec, {"learning_rate": 0.01}, flat=False), params, grads)
    raveled = _updates(make_tx(spec, {"learning_rate": 0.01}), params, grads)
    for a, b, c in zip(on_tree, raveled, theirs, strict=True):
        for k in c:
            np.testing.assert_array_equal(a[k], c[k])
            np.testing.assert_allclose(b[k], c[k], rtol=1e-6, atol=1e-9)


def test_every_lane_value_is_an_argument_of_one_structure():
    """Runs that differ in one lane value (the rate, a coefficient, the clipping threshold, a
    schedule parameter, the decay) build the same computation, whose updates differ; the
    engine's default optimizer is this one."""
    spec = RunSpec(widths=(1,), optimizer="momentum", schedule="power", clip="norm",
                   clip_norm=1.0, optimizer_params={"weight_decay": 1e-3})
    params, grads = _problem(seed=4, n=2, scale=0.5)
    base = {"learning_rate": 0.1, "opt.momentum": 0.9, "opt.weight_decay": 1e-3,
            "clip_norm": 1.0, "sched.decay_steps": 2.0, "sched.exponent": 1.0}

    def updates(hp):
        return _updates(make_tx(spec, hp), params, grads)[-1]

    def lanes(hp):
        return {k: jnp.float32(v) for k, v in hp.items()}

    program = str(jax.make_jaxpr(updates)(lanes(base)))
    reference = jax.jit(updates)(lanes(base))
    for name, value in base.items():
        other = lanes({**base, name: value * 0.5})
        assert str(jax.make_jaxpr(updates)(other)) == program, name
        assert not np.allclose(jax.jit(updates)(other)["w"], reference["w"]), name
    assert inspect.signature(make_program).parameters["make_tx"].default is make_tx


def test_the_recorded_learning_rate_is_the_rate_of_the_update():
    spec = RunSpec(widths=(1,), optimizer="sgd", learning_rate=0.1, schedule="power",
                   schedule_params={"decay_steps": 2.0})
    params, grads = _problem(seed=5, n=4)
    for t, u in enumerate(_updates(make_tx(spec), params, grads)):
        rate = float(learning_rate_at(spec, {}, t))
        assert rate == pytest.approx(0.1 / (1 + t / 2))
        np.testing.assert_allclose(u["w"], -rate * grads[t]["w"], rtol=1e-6)


# ------------------------------------------------------------------ the command

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One optimizer keeps this fast (each optimizer compiles its program); the paired
    comparisons are the file layer's (tests/test_experiment_files.py)."""
    out = tmp_path_factory.mktemp("opt")
    args = ["optimizers", "--quick", "--dataset", "synthetic", "--optimizer", "adam",
            "--learning-rate", "0.5", "--learning-rate", "adam=0.002", "--tune", "--tune-grid", "0.003,0.03",
            "--out", str(out)]
    return out, args, runner.invoke(app, args)


def test_quick_writes_the_common_schema_with_tuned_arms(quick_run):
    out, _, result = quick_run
    assert result.exit_code == 0, result.output
    runs = pd.read_csv(out / "optimizers-synthetic-runs.csv")
    curves = pd.read_csv(out / "optimizers-synthetic-curves.csv")
    meta = json.loads((out / "optimizers-synthetic-meta.json").read_text())
    # the file layer's schema: every factor and setting a column, the common metrics
    for column in ("experiment", "dataset", "arm", "optimizer", "lr_source", "learning_rate",
                   "widths", "batch_size", "epochs", "max_steps", "eval_split", "seed",
                   "reached", "steps_to_target", "final_eval_accuracy", "best_eval_accuracy",
                   "final_test_accuracy", "step_ms", "program"):
        assert column in runs.columns, column
    assert list(curves.columns[:6]) == ["arm", "seed", "step", "train_loss", "eval_loss",
                                        "eval_accuracy"]
    recorded = definition.parse(json.loads(meta["experiment_definition"]), "meta")
    assert recorded.name == "optimizers" and recorded.tune.grid == {
        "learning_rate": (0.003, 0.03)}
    assert meta["compiled_programs"] == 1  # the sweep: lanes of the optimizer's program
    assert len(runs) == 2 * 2  # (default, tuned) x 2 seeds (--quick)
    assert list(runs["arm"]) == ["optimizer=adam,lr_source=default"] * 2 + \
        ["optimizer=adam,lr_source=tuned"] * 2
    assert list(runs["seed"]) == [0, 1, 0, 1] and (runs["eval_split"] == "val").all()
    assert (runs.loc[runs["lr_source"] == "default", "learning_rate"] == 0.002).all()
    tuning = meta["tuning"]["optimizer=adam,lr_source=tuned"]
    tuned_lr = tuning["chosen"]["learning_rate"]
    assert tuned_lr == [0.003, 0.03][int(np.argmax(tuning["median"]))]
    assert (runs.loc[runs["lr_source"] == "tuned", "learning_rate"] == tuned_lr).all()
    assert meta["target_kind"] == "relative" and meta["target_fraction"] == 0.98
    best = runs.groupby("arm")["final_eval_accuracy"].median().max()
    assert runs["target"].iloc[0] == pytest.approx(0.98 * best)
    assert runs["epochs"].iloc[0] == 2 and (runs["steps_to_target"].dropna() > 0).all()
    # steps_to_target is empty exactly when censored, and agrees with the curves
    assert runs.loc[~runs["reached"], "steps_to_target"].isna().all()
    for _, r in runs.iterrows():
        c = curves[(curves["arm"] == r["arm"]) & (curves["seed"] == r["seed"])]
        assert c["step"].max() == r["max_steps"]  # the full budget is trained
        hit = c.loc[c["eval_accuracy"] >= r["target"], "step"]
        assert (hit.min() if len(hit) else None) == (r["steps_to_target"] if r["reached"]
                                                     else None)
    assert runs["reached"].any()  # the best arm reaches 98% of its own median
    assert "2 seeds per arm" in result.stdout and "optimizers on synthetic" in result.stdout
    assert "tuned" in result.stdout


def test_preset_is_the_packaged_file_with_the_command_options():
    """Without options: the file's arms, budget and claims (SGD the reference), untuned;
    --learning-rate NAME=VALUE makes named levels; an absolute target replaces the relative one."""
    packaged = definition.load("optimizer-comparison")
    plain = exp.experiment(tuple(OPTIMIZERS))
    assert plain.factors == {"optimizer": tuple(OPTIMIZERS), "lr_source": ("default",)}
    assert plain.base == packaged.base and plain.relative_target == 0.98
    assert plain.reference == {"optimizer": "sgd"} and plain.name == "optimizers"
    # (the file's own claims on the tuned arms are left out of an untuned run: no such arms)
    assert [c.id for c in plain.claims] == [c.id for c in packaged.claims
                                            if c.checks]
    custom = exp.experiment(("sgd", "adam"), learning_rate=0.01, lr_overrides={"adam": 0.002},
                            epochs=3, eval_every=7, target=0.9, tune=True)
    arms = {a.name: a.settings for a in definition.expand(custom)}
    assert arms["optimizer=adam,lr_source=default"]["learning_rate"] == 0.002
    assert arms["optimizer=sgd,lr_source=default"]["learning_rate"] == 0.01
    assert set(arms) == {f"optimizer={o},lr_source={s}" for o in ("sgd", "adam")
                         for s in ("default", "tuned")}
    assert custom.relative_target is None and custom.base["target"] == 0.9
    assert custom.base["epochs"] == 3 and custom.base["eval_every"] == 7
    # without SGD there is no reference: the file's paired claim is left out, not refused
    alone = exp.experiment(("adam",))
    assert alone.reference == {} and all(c.checks for c in alone.claims)


def test_speed_vs_quality_figure_of_the_fixture():
    """The speed-vs-quality kind (any file with a target) on the optimizers fixture: one marker per
    arm at its KM median steps and mean final eval accuracy; an arm that never reached its
    median sits at the budget; tuned arms dashed; every marker named."""
    from pathlib import Path

    from dnnbench.analysis.summary import summarize
    from dnnbench.report.figures import FigureInput
    from dnnbench.report.plots import DODGE, speed_quality_figure
    from dnnbench.results.io import read_results

    runs, meta = read_results(Path(__file__).parent / "fixtures" / "results" /
                              "optimizers-digits-runs.csv")
    recorded = definition.parse(json.loads(meta["experiment_definition"]), "fixture")
    fig = speed_quality_figure(FigureInput(recorded, runs, dataset="digits"))
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert "3 seeds per arm" in fig._suptitle.get_text().replace("\n", " ")
    s = summarize(recorded, runs)
    assert len(ax.containers) == len(s) == 8  # 4 optimizers x (default, tuned)
    assert "Kaplan-Meier median" in ax.get_xlabel() and "validation accuracy" in ax.get_xlabel()
    assert "final eval acc." in ax.get_ylabel()
    budget = runs["max_steps"].max()
    for _, r in s.iterrows():
        name = f"{r['optimizer']}, {r['lr_source']}"
        (bar,) = [b for b in ax.containers if b.get_label().startswith(name + " (")]
        x, y = bar.lines[0].get_data()
        at = budget if np.isnan(r["median_steps"]) else r["median_steps"]
        assert x[0] == pytest.approx(at, abs=4 * DODGE * budget)
        assert y[0] == pytest.approx(r["final_eval_accuracy"])
        dashed = all(dashes is not None for line in bar[2]
                     for _, dashes in line.get_linestyle())
        assert dashed == (r["lr_source"] == "tuned")
    fig.canvas.draw()  # no marker hides another
    pts = np.array([ax.transData.transform([b.lines[0].get_xdata()[0],
                                            b.lines[0].get_ydata()[0]]) for b in ax.containers])
    gaps = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.eye(len(pts)) * 1e9
    assert gaps.min() > 5
    assert len(ax.texts) == len(s)
    # no target, no figure
    assert speed_quality_figure(FigureInput(recorded, runs.assign(target=0.0))) is None


def test_same_command_resumes_with_identical_results(quick_run):
    out, args, first = quick_run
    assert first.exit_code == 0
    before = (out / "optimizers-synthetic-runs.csv").read_text()
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "1/1 units already saved" in again.stderr
    assert (out / "optimizers-synthetic-runs.csv").read_text() == before


@pytest.mark.parametrize("args, needle", [
    (["--optimizer", "adamx"], "choose from: sgd, momentum, nesterov"),
    (["--learning-rate", "adam=abc"], "is not a number"),
    (["--learning-rate", "adam="], "NAME=VALUE"),
    (["--learning-rate", "adamx=0.1"], "unknown value 'adamx'"),
    (["--learning-rate", "-1"], "positive"),
    (["--learning-rate", "0"], "positive"),
    (["--learning-rate", "0.1", "--learning-rate", "0.2"], "one plain value"),
    (["--epochs", "0"], "--epochs"),
    (["--target", "1.5"], "--target must be in (0, 1]"),
    (["--target", "0"], "--target must be in (0, 1]"),
    (["--seeds", "0"], "--seeds"),
    (["--tune", "--tune-grid", "1e-1:1e-4:3"], "LO < HI"),
])
def test_bad_input_exits_2_with_one_line(args, needle, tmp_path):
    result = runner.invoke(app, ["optimizers", "--dataset", "synthetic", *args,
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not any(tmp_path.iterdir())  # no partial output
