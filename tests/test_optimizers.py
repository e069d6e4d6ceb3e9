"""`dnnbench optimizers`: registry contract, optimizer identities, vectorized lr sweep, relative
target and finalize, measured stars, the command end to end and its bad-input handling."""

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

from dnnbench.cli import app
from dnnbench.data import load_dataset
from dnnbench.experiments import optimizers as exp
from dnnbench.registry import OPTIMIZERS, make_optimizer
from dnnbench.train.arm import train_arm

runner = CliRunner()

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
        tx = make_optimizer(name, lr)

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


def test_textbook_table_covers_the_registry():
    assert set(exp.TEXTBOOK_STARS) == set(OPTIMIZERS)
    assert exp.TEXTBOOK_STARS["sgd"] == (1, 3) and exp.TEXTBOOK_STARS["adagrad"] == (3, 1)
    assert all(1 <= s <= 3 and 1 <= q <= 3 for s, q in exp.TEXTBOOK_STARS.values())


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
    mom = _updates(make_optimizer("momentum", lr), params, grads)
    nes = _updates(make_optimizer("nesterov", lr), params, grads)
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
    reg_adam = _updates(make_optimizer("adam", lr), params, grads[:1])[0]
    reg_adamw = _updates(make_optimizer("adamw", lr), params, grads[:1])[0]
    for k in params:
        diff = np.asarray(reg_adamw[k]) - np.asarray(reg_adam[k])
        assert np.abs(diff).max() > 0
        np.testing.assert_allclose(diff, -lr * 1e-5 * np.asarray(params[k]), rtol=1e-3,
                                   atol=1e-10)


# ------------------------------------------------------------------ vectorized lr sweep

def test_sweep_flattening_is_lr_major():
    seeds, lrs = exp.sweep_lrs((0, 1, 2), (0.1, 0.01))
    assert seeds == (0, 1, 2, 0, 1, 2)
    assert lrs == (0.1, 0.1, 0.1, 0.01, 0.01, 0.01)


def test_vectorized_lr_sweep_matches_separate_runs():
    """Seeds x lrs flattened in one program == one separate run per lr, up to float32
    reassociation (see conftest.LANE_RTOL); a run at a 10% different lr is told apart.

    The protocol is the one of the `--quick` command test below (synthetic data, 2 epochs,
    2 seeds, 2 lrs), so the persistent compilation cache serves both tests' programs."""
    data = load_dataset("synthetic")
    cfg = exp.OptimizersConfig(optimizers=("adam",), epochs=2, eval_every=31, seeds=(0, 1))
    lrs = (0.003, 0.03)
    spec = exp.make_spec(cfg, "adam", lrs[0], len(data.y_train))
    sweep = exp.train_lr_sweep(spec, data, cfg.seeds, lrs, timing=False).trace
    n_eval = len(data.y_val)
    for j, lr in enumerate(lrs):
        alone = train_arm(spec.replace(learning_rate=lr), data, cfg.seeds, timing=False).trace
        block = slice(j * len(cfg.seeds), (j + 1) * len(cfg.seeds))
        lane = jax.tree_util.tree_map(lambda a, block=block: a[block], sweep)
        assert_lanes_match(lane, alone, n_eval, f"lr={lr}")
    wrong = train_arm(spec.replace(learning_rate=lrs[1] * 1.1), data, cfg.seeds,
                      timing=False).trace
    assert_lanes_differ(lane, wrong, n_eval, "lr 0.03 vs 0.033")


# ------------------------------------------------------------------ finalize and targets

def _raw(arm, optimizer, lr_source, lr, finals, steps_per_eval=10, n_evals=4, compile_s=1.0,
         step_ms=2.0):
    """Raw unit frames of one block of seeds whose val accuracy rises linearly to ``finals``."""
    rows, curves = [], []
    for seed, final in enumerate(finals):
        acc = np.linspace(final / n_evals, final, n_evals)
        rows.append({c: None for c in exp.RAW_COLUMNS} | {
            "experiment": exp.EXPERIMENT, "dataset": "synthetic", "arm": arm,
            "optimizer": optimizer, "learning_rate": lr, "lr_source": lr_source, "seed": seed,
            "max_steps": steps_per_eval * n_evals, "diverged": False,
            "final_val_accuracy": final, "best_val_accuracy": final, "final_val_loss": 1 - final,
            "final_test_accuracy": final, "compile_s": compile_s, "step_ms": step_ms,
            "eval_ms": 0.5, "spec_hash": "x"})
        steps = np.arange(1, n_evals + 1) * steps_per_eval
        curves.append(pd.DataFrame({"arm": arm, "optimizer": optimizer, "learning_rate": lr,
                                    "seed": seed, "step": steps, "epoch": steps / 10.0,
                                    "train_loss": 1 - acc, "val_loss": 1 - acc,
                                    "val_accuracy": acc}))
    return pd.DataFrame(rows)[exp.RAW_COLUMNS], pd.concat(curves)[exp.CURVE_COLUMNS]


def test_relative_target_is_a_fraction_of_the_best_median():
    runs = pd.concat([_raw("a/default", "adam", "default", 1e-3, [0.5, 0.9, 0.8])[0],
                      _raw("s/default", "sgd", "default", 1e-3, [0.7, 0.6, float("nan")])[0]])
    # medians: a 0.8; s: a diverged (NaN) run counts as 0 -> median 0.6
    assert exp.relative_target(runs, 0.98) == pytest.approx(0.98 * 0.8)
    runs["final_val_accuracy"] = float("nan")
    assert np.isnan(exp.relative_target(runs, 0.98))


def test_finalize_picks_the_tuned_lr_and_derives_steps_to_target():
    cfg = exp.OptimizersConfig(optimizers=("sgd", "adam"), seeds=(0, 1, 2), tune=True,
                               tune_grid=(0.01, 0.1))
    parts = [_raw("sgd/default", "sgd", "default", 1e-3, [0.4, 0.5, 0.6], compile_s=3.0),
             _raw("adam/default", "adam", "default", 1e-3, [0.8, 0.8, 0.8], step_ms=5.0),
             _raw("sgd/sweep", "sgd", "sweep", 0.01, [0.6, 0.6, 0.6], compile_s=9.0,
                  step_ms=float("nan")),
             _raw("sgd/sweep", "sgd", "sweep", 0.1, [0.7, 0.75, 0.2], compile_s=9.0,
                  step_ms=float("nan")),
             _raw("adam/sweep", "adam", "sweep", 0.01, [1.0, 0.96, 0.3], compile_s=9.0),
             _raw("adam/sweep", "adam", "sweep", 0.1, [0.1, 0.1, 0.1], compile_s=9.0)]
    raw_runs = pd.concat([p[0] for p in parts], ignore_index=True)
    raw_curves = pd.concat([p[1] for p in parts], ignore_index=True)
    runs, curves, info = exp.finalize(cfg, raw_runs, raw_curves)

    assert list(runs.columns) == exp.RUN_COLUMNS and list(curves.columns) == exp.CURVE_COLUMNS
    assert info["tuning"]["sgd"]["chosen_lr"] == 0.1  # median 0.7 beats 0.6
    assert info["tuning"]["adam"]["chosen_lr"] == 0.01
    assert list(runs["arm"].unique()) == ["sgd/default", "sgd/tuned", "adam/default",
                                          "adam/tuned"]
    assert set(curves["arm"]) == set(runs["arm"])
    tuned = runs[runs["arm"] == "adam/tuned"]
    assert (tuned["lr_source"] == "tuned").all() and (tuned["learning_rate"] == 0.01).all()
    # tuned rows carry the default arm's timing (same compiled program)
    assert (tuned["step_ms"] == 5.0).all() and (tuned["compile_s"] == 1.0).all()
    assert (runs.loc[runs["arm"] == "sgd/tuned", "compile_s"] == 3.0).all()
    # relative target: best median final val acc is adam/tuned's 0.96
    assert info["target_kind"] == "relative"
    assert runs["target"].iloc[0] == pytest.approx(0.98 * 0.96)
    assert runs["steps_to_target"].dtype == "Int64"
    t = runs.set_index(["arm", "seed"])
    # adam/tuned seed 0 rises 0.25, 0.5, 0.75, 1.0 -> first >= 0.9408 at step 40
    assert t.loc[("adam/tuned", 0), "steps_to_target"] == 40
    assert bool(t.loc[("adam/tuned", 0), "reached"])
    assert t.loc[("adam/tuned", 0), "time_to_target_s"] == pytest.approx(40 * 5.0 / 1e3)
    assert t.loc[("adam/tuned", 1), "steps_to_target"] == 40  # its last point, 0.96
    assert not t.loc[("adam/tuned", 2), "reached"]  # final 0.3: censored
    assert pd.isna(t.loc[("sgd/default", 0), "steps_to_target"])
    assert not runs.loc[runs["optimizer"] == "sgd", "reached"].any()

    absolute = exp.finalize(exp.OptimizersConfig(optimizers=("sgd", "adam"), target=0.5,
                                                 tune=True), raw_runs, raw_curves)[0]
    assert (absolute["target_kind"] == "absolute").all() and (absolute["target"] == 0.5).all()
    a = absolute.set_index(["arm", "seed"])
    assert a.loc[("sgd/default", 2), "steps_to_target"] == 40  # 0.15, 0.3, 0.45, 0.6
    assert a.loc[("adam/default", 0), "steps_to_target"] == 30  # 0.2, 0.4, 0.6, 0.8


# ------------------------------------------------------------------ summary and stars

def _finished(arm, optimizer, steps, accs, max_steps=1000):
    rows = []
    for seed, (s, acc) in enumerate(zip(steps, accs, strict=True)):
        rows.append({"arm": arm, "optimizer": optimizer, "learning_rate": 1e-3,
                     "lr_source": "default", "seed": seed, "max_steps": max_steps,
                     "reached": s is not None, "steps_to_target": s, "diverged": False,
                     "final_val_accuracy": acc, "final_test_accuracy": acc, "compile_s": 1.0,
                     "step_ms": 1.0})
    df = pd.DataFrame(rows)
    df["steps_to_target"] = df["steps_to_target"].astype("Int64")
    return df


def test_measured_stars_on_constructed_runs():
    n = 6
    runs = pd.concat([
        _finished("sgd/default", "sgd", [None] * n, [0.50, 0.52, 0.48, 0.51, 0.49, 0.50]),
        _finished("momentum/default", "momentum", [400, 410, 390, 420, 380, 400],
                  [0.90, 0.91, 0.89, 0.90, 0.905, 0.895]),
        _finished("adam/default", "adam", [100, 110, 90, 100, 105, 95],
                  [0.95, 0.96, 0.94, 0.95, 0.955, 0.945]),
        _finished("rmsprop/default", "rmsprop", [200, 210, 190, 200, 205, 195],
                  [0.951, 0.959, 0.941, 0.949, 0.956, 0.944]),
    ], ignore_index=True)
    s = exp.summarize(runs).set_index("optimizer")
    assert list(s.index) == ["adam", "rmsprop", "momentum", "sgd"]  # by KM median steps
    assert s.loc["adam", "median_steps"] == 100 and s.loc["rmsprop", "median_steps"] == 200
    # speed: paired ratio to the fastest (adam): rmsprop x2 (2 stars), momentum x4 (1 star)
    assert s.loc["rmsprop", "speed_ratio"] == pytest.approx(2.0)
    assert s["speed_stars"].to_dict() == {"adam": 3, "rmsprop": 2, "momentum": 1, "sgd": 1}
    # quality: rmsprop tied with adam, momentum < halfway to sgd, sgd the worst
    assert s["quality_stars"].to_dict() == {"adam": 3, "rmsprop": 3, "momentum": 2, "sgd": 1}
    assert s.loc["sgd", "book_speed"] == 1 and s.loc["adam", "book_quality"] == 2
    # vs SGD: SGD never reaches -> no ratio; adam reached first in all 6 pairs (sign test)
    assert np.isnan(s.loc["adam", "sgd_ratio"]) and s.loc["adam", "sgd_pairs_faster"] == n
    assert s.loc["adam", "sgd_ratio_verdict"] == "fewer steps"
    assert s.loc["adam", "sgd_diff"] == pytest.approx(0.45, abs=1e-6)
    assert s.loc["adam", "sgd_diff_verdict"] == "more accurate"
    assert s.loc["sgd", "sgd_ratio_verdict"] == ""


def test_table_states_seeds_and_textbook_stars():
    from rich.console import Console

    from dnnbench.report.optimizers import optimizers_table

    runs = pd.concat([_finished("sgd/default", "sgd", [300, 320, 310], [0.8, 0.81, 0.79]),
                      _finished("adam/default", "adam", [100, 90, 95], [0.9, 0.91, 0.89])])
    console = Console(width=200, record=True)
    console.print(optimizers_table(exp.summarize(runs), "synthetic", 0.88, "relative",
                                   epochs=10, batch_size=32))
    text = console.export_text()
    assert "3 seeds per arm" in text and "88.0%" in text
    first_cells = [ln.split("│")[1].strip() for ln in text.splitlines() if ln.startswith("│")]
    assert [c for c in first_cells if c] == ["adam", "sgd"]  # sorted by speed
    assert "★★★|★★☆" in text  # adam: speed measured 3 | textbook 3; quality 3 | 2


# ------------------------------------------------------------------ the command

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One optimizer keeps this fast (each arm compiles its programs); the paired columns and
    stars between optimizers are tested on constructed runs above."""
    out = tmp_path_factory.mktemp("opt")
    args = ["optimizers", "--quick", "--dataset", "synthetic", "--optimizer", "adam",
            "--lr", "0.5", "--lr", "adam=0.002", "--tune", "--tune-grid", "0.003,0.03",
            "--out", str(out)]
    return out, args, runner.invoke(app, args)


def test_quick_writes_the_documented_files(quick_run):
    out, _, result = quick_run
    assert result.exit_code == 0, result.output
    runs = pd.read_csv(out / "optimizers-synthetic-runs.csv")
    curves = pd.read_csv(out / "optimizers-synthetic-curves.csv")
    meta = json.loads((out / "optimizers-synthetic-meta.json").read_text())
    assert list(runs.columns) == exp.RUN_COLUMNS
    assert list(curves.columns) == exp.CURVE_COLUMNS
    assert len(runs) == 2 * 2  # (default, tuned) x 2 seeds (--quick)
    assert list(runs["arm"]) == ["adam/default"] * 2 + ["adam/tuned"] * 2
    assert list(runs["seed"]) == [0, 1, 0, 1]
    assert (runs.loc[runs["lr_source"] == "default", "learning_rate"] == 0.002).all()
    tuned_lr = meta["tuning"]["adam"]["chosen_lr"]
    assert tuned_lr in (0.003, 0.03)
    assert (runs.loc[runs["lr_source"] == "tuned", "learning_rate"] == tuned_lr).all()
    assert meta["target_kind"] == "relative" and (runs["target_kind"] == "relative").all()
    best = runs.groupby("arm")["final_val_accuracy"].median().max()
    assert runs["target"].iloc[0] == pytest.approx(0.98 * best)
    assert runs["epochs"].iloc[0] == 2 and (runs["steps_to_target"].dropna() > 0).all()
    # steps_to_target is empty exactly when censored, and agrees with the curves
    assert runs.loc[~runs["reached"], "steps_to_target"].isna().all()
    for _, r in runs.iterrows():
        c = curves[(curves["arm"] == r["arm"]) & (curves["seed"] == r["seed"])]
        assert c["step"].max() == r["max_steps"]  # the full budget is trained
        hit = c.loc[c["val_accuracy"] >= r["target"], "step"]
        assert (hit.min() if len(hit) else None) == (r["steps_to_target"] if r["reached"]
                                                     else None)
    assert runs["reached"].any()  # the best arm reaches 98% of its own median
    assert "2 seeds per arm" in result.stdout and "Optimizers on synthetic" in result.stdout
    assert "adam (tuned)" in result.stdout


def test_same_command_resumes_with_identical_results(quick_run):
    out, args, first = quick_run
    assert first.exit_code == 0
    before = (out / "optimizers-synthetic-runs.csv").read_text()
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "2/2 units already saved" in again.stderr
    assert (out / "optimizers-synthetic-runs.csv").read_text() == before


@pytest.mark.parametrize("args, needle", [
    (["--optimizer", "adamx"], "choose from: sgd, momentum, nesterov"),
    (["--lr", "adam=abc"], "is not a number"),
    (["--lr", "adam="], "NAME=VALUE"),
    (["--lr", "adamx=0.1"], "unknown value 'adamx'"),
    (["--lr", "-1"], "positive"),
    (["--lr", "0"], "positive"),
    (["--lr", "0.1", "--lr", "0.2"], "one plain value"),
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
