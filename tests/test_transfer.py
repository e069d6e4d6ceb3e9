"""`dnnbench transfer`: the task split, bitwise freezing, the fresh paired head, the statistics,
the CLI end to end (three files, exact columns, verdict) and its bad-input handling."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest
from typer.testing import CliRunner

from dnnbench.cli import app
from dnnbench.data import load_dataset
from dnnbench.data.base import Dataset
from dnnbench.experiments import transfer as exp
from dnnbench.models import build_model, init_variables
from dnnbench.train.engine import make_program, split_key, to_device

runner = CliRunner()


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", n_train=600, n_val=150, n_test=150, n_features=8)


def bits(a) -> np.ndarray:
    return np.asarray(a, np.float32).view(np.uint32)


def same_bits(a, b) -> bool:
    return all(np.array_equal(bits(x), bits(y)) for x, y in
               zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True))


# ----------------------------------------------------------------------------- the split

def test_split_relabels_task_a_and_binarizes_task_b(data):
    pos, neg = 2, 7
    task_a, task_b = exp.split_tasks(data, pos, neg, train_size=40)
    a_classes = [0, 1, 3, 4, 5, 6, 8, 9]
    assert task_a.n_classes == 8 and task_b.n_classes == 2
    assert task_a.name == task_b.name == "synthetic"
    for split in ("train", "val", "test"):
        x, y = data.split(split)
        xa, ya = task_a.split(split)
        in_b = (y == pos) | (y == neg)
        # A: the other classes, in order, relabelled 0..7 by increasing original label
        np.testing.assert_array_equal(xa, x[~in_b])
        np.testing.assert_array_equal(ya, np.searchsorted(a_classes, y[~in_b]))
        assert set(np.unique(ya)) == set(range(8))
        # B: the two classes, label 1 exactly for the positive class
        xb, yb = task_b.split(split)
        n = 40 if split == "train" else in_b.sum()
        np.testing.assert_array_equal(xb, x[in_b][:n])
        np.testing.assert_array_equal(yb, (y[in_b][:n] == pos).astype(np.int32))
        assert 0 < yb.sum() < len(yb)
        # no task-B image (of any split) is in task A
        b_rows = {r.tobytes() for r in x[in_b]}
        assert not any(r.tobytes() in b_rows for r in xa)
    assert task_b.class_names == ("class 7", "class 2")  # label 0 = negative, 1 = positive
    assert exp.task_b_train_count(data, pos, neg) == int(np.isin(data.y_train, (2, 7)).sum())


def test_fashion_default_pair_is_pullover_vs_tshirt():
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot")
    y = np.arange(40, dtype=np.int32) % 10
    x = np.random.default_rng(0).random((40, 4), dtype=np.float32)
    fake = Dataset(name="fashion-mnist", x_train=x, y_train=y, x_val=x, y_val=y, x_test=x,
                   y_test=y, n_classes=10, hashes={}, source="test", class_names=names)
    assert exp.default_pair(fake) == (2, 0)
    task_a, task_b = exp.split_tasks(fake, *exp.default_pair(fake))
    assert task_a.class_names == ("Trouser", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                                  "Bag", "Ankle boot")
    assert task_b.class_names == ("T-shirt/top", "Pullover")
    assert set(task_b.y_train[task_b.y_train == 1]) == {1}
    np.testing.assert_array_equal(task_b.y_train, (y[np.isin(y, (0, 2))] == 2).astype(int))
    assert len(exp.all_pairs(10)) == 45 and exp.all_pairs(3) == [(0, 1), (0, 2), (1, 2)]


@pytest.mark.parametrize("pair, needle", [((3, 3), "differ"), ((3, 10), "does not exist"),
                                          ((-1, 2), "does not exist")])
def test_bad_pairs_are_rejected(data, pair, needle):
    with pytest.raises(ValueError, match=needle):
        exp.split_tasks(data, *pair)


# ----------------------------------------------------------------------------- freezing

def test_frozen_until_is_bitwise_identity_even_for_nan_and_negative_zero():
    params = {"w": jnp.array([-0.0, 0.0, 1.5, -2.0], jnp.float32)}
    grads = {"w": jnp.array([1.0, -1.0, jnp.nan, jnp.inf], jnp.float32)}
    # the naive way: +0.0 updates turn -0.0 into +0.0 (so bitwise checks can fail)
    naive = optax.set_to_zero()
    u, _ = naive.update(grads, naive.init(params))
    assert not same_bits(optax.apply_updates(params, u), params)

    tx = exp.frozen_until(optax.sgd(0.1, momentum=0.9), freeze_steps=2)
    state = tx.init(params)
    p = params
    for _ in range(2):
        u, state = tx.update(grads, state, p)
        p = optax.apply_updates(p, u)
        assert same_bits(p, params)
    assert same_bits(state.inner, tx.init(params).inner)  # momentum did not accumulate
    good = {"w": jnp.ones(4, jnp.float32)}
    u, state = tx.update(good, state, p)
    np.testing.assert_allclose(np.asarray(u["w"]), -0.1)  # unfrozen: plain SGD (fresh momentum)


@pytest.fixture(scope="module")
def programs(data):
    """A (random weights, with a -0.0), and B / B-on-A programs reusing 2 of its 3 layers."""
    cfg = exp.TransferConfig(pairs=((3, 5),), widths=(16, 16, 16), batch_size=16, train_size=64,
                             freeze_epochs=2, unfreeze_epochs=2, epochs_a=1, learning_rate=0.1,
                             unfreeze_lr=0.5, reuse_layers=2, seeds=(0,))
    task_a, task_b = exp.split_tasks(data, 3, 5, cfg.train_size)
    sb = exp.spec_b(cfg, task_b)
    rng = np.random.default_rng(99)  # stands in for a trained A (only the shapes matter)
    dims = [task_a.n_features, *cfg.widths, task_a.n_classes]
    a_params = {name: {"kernel": jnp.asarray(rng.normal(0, 0.3, (m, n)), jnp.float32),
                       "bias": jnp.asarray(rng.normal(0, 0.1, n), jnp.float32)}
                for name, m, n in zip([f"hidden_{i}" for i in range(3)] + ["head"], dims[:-1],
                                      dims[1:], strict=True)}
    a_params["hidden_0"]["bias"] = a_params["hidden_0"]["bias"].at[0].set(-0.0)
    freeze_steps = cfg.freeze_epochs * exp.steps_per_epoch(sb)
    prog_b = make_program(sb, 2, len(task_b.y_train))
    prog_t = make_program(sb, 2, len(task_b.y_train), merge_params=exp.reuse_params,
                          make_tx=exp.transfer_tx(cfg.reused, freeze_steps, cfg.lr_after))
    return {"cfg": cfg, "spec": sb, "dev": to_device(task_b, sb), "a_params": a_params,
            "reused": exp.hidden_layers(a_params, cfg.reused), "prog_b": prog_b,
            "prog_t": prog_t, "freeze_steps": freeze_steps}


def test_reused_layers_stay_bitwise_frozen_then_train(programs):
    p = programs
    lr = jnp.float32(p["cfg"].learning_rate)
    state0 = p["prog_t"].init(jax.random.PRNGKey(0), lr, p["dev"], p["reused"])
    chunk = jax.jit(p["prog_t"].train_chunk, static_argnums=4)
    frozen, _ = chunk(state0, 0, lr, p["dev"], p["freeze_steps"])
    reused = ("hidden_0", "hidden_1")
    assert p["freeze_steps"] == 8
    for name in reused:  # bitwise A's weights (the -0.0 bias included) after the frozen phase
        assert same_bits(frozen.params[name], p["a_params"][name]), name
    assert np.signbit(np.asarray(frozen.params["hidden_0"]["bias"][0]))
    for name in ("hidden_2", "head"):  # fresh layers train from the first step
        assert not same_bits(frozen.params[name], state0.params[name]), name
    after, _ = chunk(frozen, p["freeze_steps"], lr, p["dev"], p["freeze_steps"])
    for name in reused:
        delta = np.abs(np.asarray(after.params[name]["kernel"] - frozen.params[name]["kernel"]))
        assert delta.max() > 0, name


def test_head_is_fresh_and_identical_in_b_and_b_on_a(programs):
    p = programs
    key, lr = jax.random.PRNGKey(3), jnp.float32(0.1)
    state_b = p["prog_b"].init(key, lr, p["dev"])
    state_t = p["prog_t"].init(key, lr, p["dev"], p["reused"])
    np.testing.assert_array_equal(state_b.perms, state_t.perms)  # same data order
    b, t = state_b.params, state_t.params
    fresh = init_variables(build_model(p["spec"], 2), split_key(key)[0],
                           p["dev"]["x_train"][:1])["params"]
    assert t["head"]["kernel"].shape == (16, 1)  # a new sigmoid unit, not A's 8-way head
    assert same_bits(t["head"], b["head"]) and same_bits(t["head"], fresh["head"])
    assert same_bits(t["hidden_2"], b["hidden_2"])  # layers beyond K: fresh, same in both
    assert same_bits(t["hidden_0"], p["a_params"]["hidden_0"])
    assert not same_bits(b["hidden_0"], p["a_params"]["hidden_0"])
    other = p["prog_b"].init(jax.random.PRNGKey(4), lr, p["dev"]).params
    assert not same_bits(other["head"], b["head"])  # the head does depend on the seed


# ----------------------------------------------------------------------------- statistics

def fake_runs(diffs, acc_b=0.8, pair="3v5") -> pd.DataFrame:
    rows = []
    for arm in exp.ARMS:
        for seed, d in enumerate(diffs):
            acc = {"A": 0.9, "B": acc_b, "B-on-A": acc_b + d}[arm]
            rows.append({"experiment": "transfer", "dataset": "x", "pair": pair,
                         "pos_class": 3, "neg_class": 5, "arm": arm, "seed": seed,
                         "train_size": 200 if arm != "A" else 1000,
                         "reuse_layers": 3 if arm == "B-on-A" else 0,
                         "freeze_epochs": 4 if arm == "B-on-A" else 0,
                         "unfreeze_epochs": 16 if arm != "A" else 20, "learning_rate": 0.001,
                         "unfreeze_lr": 0.001 if arm == "B-on-A" else np.nan, "epochs": 20,
                         "test_accuracy": acc, "test_loss": 0.3, "diverged": False,
                         "compile_s": 1.0, "step_ms": 0.5, "spec_hash": "h"})
    return pd.DataFrame(rows)[exp.RUN_COLUMNS]


def test_summary_verdicts_never_call_an_interval_spanning_zero_a_win():
    rng = np.random.default_rng(0)
    helps = exp.summarize(fake_runs(0.02 + rng.normal(0, 0.004, 20))).iloc[0]
    assert helps["verdict"] == "helps" and helps["n_better"] == 20
    assert helps["diff_low"] > 0 and helps["diff"] == pytest.approx(2.0, abs=0.3)
    assert helps["verdict_line"].startswith("transfer helps by +")
    assert "better in 20/20 seeds" in helps["verdict_line"]
    # error 0.2 -> 0.18: about a 10% reduction
    assert helps["err_reduction"] == pytest.approx(0.1, abs=0.03)
    assert helps["err_reduction_low"] < helps["err_reduction"] < helps["err_reduction_high"]

    hurts = exp.summarize(fake_runs(-0.03 + rng.normal(0, 0.004, 20))).iloc[0]
    assert hurts["verdict"] == "hurts" and hurts["verdict_line"].startswith("transfer hurts by -")

    noisy = exp.summarize(fake_runs(rng.normal(0, 0.02, 20) - 0.001)).iloc[0]
    assert noisy["diff_low"] < 0 < noisy["diff_high"]
    assert noisy["verdict"] == "no clear effect"
    assert noisy["verdict_line"].startswith("no clear effect (")

    few = exp.summarize(fake_runs([0.05, 0.06, 0.04])).iloc[0]  # consistent but only 3 seeds
    assert few["verdict"] == "too few seeds for a verdict"
    assert few["verdict_line"].startswith("too few seeds for a verdict (+")


def test_distribution_across_pairs():
    rng = np.random.default_rng(1)
    runs = pd.concat([fake_runs(0.02 + rng.normal(0, 0.004, 10), pair="0v1"),
                      fake_runs(-0.02 + rng.normal(0, 0.004, 10), pair="0v2"),
                      fake_runs(rng.normal(0, 0.03, 10), pair="1v2")])
    summary = exp.summarize(runs)
    assert list(summary["pair"]) == ["0v1", "0v2", "1v2"]
    dist = exp.across_pairs(summary)
    assert (dist["helps"], dist["hurts"], dist["unclear"], dist["n_pairs"]) == (1, 1, 1, 3)
    assert dist["median"] == pytest.approx(sorted(summary["diff"])[1])
    text = exp.across_pairs_text(dist, 10)
    assert "helps in 1, hurts in 1, no clear effect in 1" in text and "10 seeds" in text


# ----------------------------------------------------------------------------- CLI end to end

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One real --quick run on synthetic data; every train_arm call is recorded (and run)."""
    import dnnbench.train.arm as arm_module

    out = tmp_path_factory.mktemp("transfer")
    calls = []
    real = arm_module.train_arm

    def recording(spec, data, seeds, **kwargs):
        result = real(spec, data, seeds, **kwargs)
        calls.append({"spec": spec, "seeds": list(seeds), "kwargs": kwargs, "result": result,
                      "n_classes": data.n_classes})
        return result

    mp = pytest.MonkeyPatch()
    mp.setattr(arm_module, "train_arm", recording)
    try:
        result = runner.invoke(app, ["transfer", "--quick", "--dataset", "synthetic",
                                     "--pair", "1,0", "--out", str(out)])
    finally:
        mp.undo()
    return out, result, calls


def test_quick_run_writes_three_files_with_exact_columns(quick_run):
    out, result, _ = quick_run
    assert result.exit_code == 0, result.output
    runs = pd.read_csv(out / "transfer-synthetic-runs.csv")
    curves = pd.read_csv(out / "transfer-synthetic-curves.csv")
    meta = json.loads((out / "transfer-synthetic-meta.json").read_text())
    assert list(runs.columns) == exp.RUN_COLUMNS
    assert list(curves.columns) == exp.CURVE_COLUMNS
    assert meta["schema_version"] == 1 and meta["quick"] is True
    assert len(runs) == 3 * 3  # 3 arms x 3 seeds (--quick)
    assert set(zip(runs["pair"], runs["pos_class"], runs["neg_class"])) == {("1v0", 1, 0)}
    assert set(runs["arm"]) == set(exp.ARMS) and set(runs["seed"]) == {0, 1, 2}
    b_rows = runs[runs["arm"] != "A"]
    assert (b_rows["train_size"] == 200).all() and (b_rows["epochs"] == 2).all()
    t = runs[runs["arm"] == "B-on-A"]
    assert (t["reuse_layers"] == 3).all() and (t["freeze_epochs"] == 1).all()
    assert (t["unfreeze_lr"] == 0.001).all() and runs.loc[runs["arm"] != "B-on-A",
                                                           "unfreeze_lr"].isna().all()
    a_rows = runs[runs["arm"] == "A"]
    assert (a_rows["train_size"] > 1000).all() and (a_rows["epochs"] == 2).all()
    assert runs["test_accuracy"].between(0, 1).all() and not runs["diverged"].any()
    assert runs["step_ms"].gt(0).all() and runs["compile_s"].gt(0).all()
    assert runs.groupby("arm")["spec_hash"].nunique().eq(1).all()
    assert runs["spec_hash"].nunique() == 3
    # one evaluation per epoch, for every arm and seed
    assert set(curves["epoch"]) == {1, 2} and len(curves) == 3 * 3 * 2
    verdict = [ln for ln in result.stdout.splitlines() if ln.startswith("Verdict (synthetic, 1v0")]
    assert len(verdict) == 1 and "better in" in verdict[0] and "/3 seeds" in verdict[0]
    assert "too few seeds for a verdict" in verdict[0]  # 3 seeds never support a verdict
    assert "Transfer on synthetic: task B" in result.stdout


def test_quick_run_pairs_seeds_and_feeds_seed_i_of_a_to_seed_i_of_b_on_a(quick_run):
    _, result, calls = quick_run
    assert result.exit_code == 0, result.output
    a, b, t = calls
    assert a["n_classes"] == 8 and b["n_classes"] == 2 and t["n_classes"] == 2
    assert a["seeds"] == [exp.A_SEED_OFFSET + s for s in (0, 1, 2)]
    assert b["seeds"] == t["seeds"] == [0, 1, 2]  # same keys: same data order and head
    assert b["spec"] == t["spec"] and b["spec"].loss == "sigmoid" and a["spec"].loss == "softmax"
    assert "init_params" not in b["kwargs"]
    reused = t["kwargs"]["init_params"]
    assert sorted(reused) == ["hidden_0", "hidden_1", "hidden_2"]  # never A's head
    a_params = a["result"].trace.params  # leading seed axis
    for name in reused:
        for i in range(3):  # seed i's trained A -> seed i's B-on-A
            assert same_bits(jax.tree_util.tree_map(lambda x, i=i: x[i], reused[name]),
                             jax.tree_util.tree_map(lambda x, i=i: x[i], a_params[name]))
    kernels = np.asarray(reused["hidden_0"]["kernel"])
    assert kernels.shape[0] == 3 and not np.array_equal(kernels[0], kernels[1])


def test_the_packaged_file_gives_the_commands_numbers_in_the_common_schema(quick_run, tmp_path):
    """`dnnbench run transfer-learning` (the protocol as data) and `dnnbench transfer` (its
    preset, documented files) train the same programs: the same accuracies, bit for bit."""
    from dnnbench.experiments import generic

    out, result, _ = quick_run
    assert result.exit_code == 0, result.output
    r = runner.invoke(app, ["run", "transfer-learning", "--quick", "--dataset", "synthetic",
                            "--set", "pair=1v0", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    common = pd.read_csv(tmp_path / "transfer-learning-synthetic-runs.csv")
    legacy = pd.read_csv(out / "transfer-synthetic-runs.csv")
    for column in ("stage", "pair", "train_size", "reuse_layers", "freeze_epochs",
                   "unfreeze_lr", "final_test_accuracy", "final_eval_accuracy", "max_steps",
                   "eval_every", "program", "spec_hash"):
        assert column in common.columns, column
    assert set(generic.METRIC_COLUMNS) <= set(common.columns)
    key = ["pair", "stage", "seed"]
    both = common.merge(legacy.rename(columns={"arm": "stage"}), on=key, suffixes=("", "_l"))
    assert len(both) == len(legacy) == 9
    np.testing.assert_array_equal(both["final_test_accuracy"], both["test_accuracy"])
    np.testing.assert_array_equal(both["final_test_loss"], both["test_loss"])
    for column in ("epochs", "spec_hash"):
        assert (both[column] == both[f"{column}_l"]).all(), column
    assert (both["train_examples"] == both["train_size_l"]).all()
    assert (both["train_size"] == 200).all() and (both["reuse_layers"] == 3).all()
    # A learns another task: it is not compared with the reference (B); B-on-A is
    assert "not compared" in r.output and "too few seeds for a verdict" in r.output
    meta = json.loads((tmp_path / "transfer-learning-synthetic-meta.json").read_text())
    assert meta["units"] == 1 and "compiled_programs" not in meta


def test_transfer_units_travel_as_small_recipes_that_rebuild_the_same_unit(quick_run,
                                                                         tmp_path):
    """What an executor ships (pickled), run in this process: the same tables as the unit
    (the quick run's settings, so its compiled programs serve)."""
    import pickle

    from dnnbench.cli.common import quick_subset
    from dnnbench.cli.executor import worker_data
    from dnnbench.experiments.executors import run_task, task_for
    from dnnbench.experiments.units import UnitStore

    synthetic = quick_subset(load_dataset("synthetic"))
    cfg = exp.TransferConfig(pairs=((1, 0),), epochs_a=2, freeze_epochs=1, unfreeze_epochs=1,
                             seeds=(0, 1, 2), timing="none")
    units = exp.build_units(cfg, synthetic, worker_data=worker_data(synthetic, None, True))
    store = UnitStore(tmp_path, exp.EXPERIMENT, synthetic.name, synthetic.fingerprint)
    blob = pickle.dumps(task_for(units[0], store))
    assert len(blob) < 8000  # names and numbers, not the data set
    material, (runs, curves) = run_task(pickle.loads(blob))
    assert material == store.key_material(units[0])
    local_runs, local_curves = units[0].compute()
    timing = ["compile_s", "step_ms"]
    pd.testing.assert_frame_equal(runs.drop(columns=timing), local_runs.drop(columns=timing))
    pd.testing.assert_frame_equal(curves, local_curves)
    quick = pd.read_csv(quick_run[0] / "transfer-synthetic-runs.csv")  # and the command's
    np.testing.assert_array_equal(runs["test_accuracy"], quick["test_accuracy"])


def test_build_units_one_per_pair_timing_first_only(data):
    cfg = exp.TransferConfig(pairs=((0, 1), (0, 2), (1, 2)), seeds=(0, 1), timing="first",
                             train_size=64)
    units = exp.build_units(cfg, data)
    assert [u.label for u in units] == ["pair 0v1", "pair 0v2", "pair 1v2"]
    keys = [json.dumps(u.key_parts, default=str) for u in units]
    assert len(set(keys)) == 3
    assert [dict(u.key_parts[1])["timing"] for u in units] == [True, False, False]
    other = exp.build_units(dataclasses.replace(cfg, train_size=100), data)
    assert json.dumps(other[0].key_parts, default=str) != keys[0]


def test_pairs_all_command_prints_the_distribution(tmp_path, monkeypatch):
    """The --pairs all path of the command (training replaced by fabricated results)."""
    from dnnbench.experiments.units import Unit

    rng = np.random.default_rng(2)

    def fake_units(cfg, data):
        assert cfg.timing == "first" and len(cfg.pairs) == 45
        units = []
        effects = [(0.02, 0.004), (0.03, 0.004), (-0.02, 0.004), (0.0, 0.03)]  # (mean, sd)
        for (pos, neg), (mean, sd) in zip(cfg.pairs[:4], effects, strict=False):
            label = exp.pair_label(pos, neg)
            runs = fake_runs(rng.normal(mean, sd, len(cfg.seeds)), pair=label)
            curves = pd.DataFrame({c: [] for c in exp.CURVE_COLUMNS})
            units.append(Unit(label, (label,), lambda r=runs, c=curves: (r, c)))
        return units

    monkeypatch.setattr(exp, "build_units", fake_units)
    result = runner.invoke(app, ["transfer", "--pairs", "all", "--dataset", "synthetic",
                                 "--seeds", "8", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Transfer on synthetic, every class pair (8 seeds per arm" in result.stdout
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("Across 4 class pairs")]
    assert len(line) == 1 and "8 seeds each" in line[0]
    assert "hurts in 1" in line[0] and "no clear effect in 1" in line[0]
    assert "helps in 2" in line[0]
    runs = pd.read_csv(tmp_path / "transfer-synthetic-runs.csv")
    assert list(runs.columns) == exp.RUN_COLUMNS and runs["pair"].nunique() == 4


@pytest.mark.parametrize("args, needle", [
    (["--pair", "3,3"], "must differ"),
    (["--pair", "3,12"], "class 12 does not exist"),
    (["--pair", "three,5"], "POS,NEG"),
    (["--pair", "3,5", "--pairs", "all"], "choose one"),
    (["--pairs", "some"], "only 'all'"),
    (["--train-size", "0"], "--train-size"),
    (["--train-size", "100000"], "larger than the task-B training images"),
    (["--reuse-layers", "4"], "--reuse-layers must be in 0..3"),
    (["--reuse-layers", "-1"], "--reuse-layers must be in 0..3"),
    (["--freeze-epochs", "0", "--unfreeze-epochs", "0"], "at least 1"),
    (["--seeds", "0"], "--seeds"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, needle):
    out = tmp_path / "out"
    result = runner.invoke(app, ["transfer", "--dataset", "synthetic", "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()  # no partial output


def test_pairs_share_three_programs_and_a_shared_program_gives_each_pair_its_own_numbers(data):
    """With several pairs, A, B and B-on-A are compiled once per number of steps per epoch
    (on padded data) and reused; a pair trained on reused programs gets exactly the numbers it
    gets as the first pair of a fresh set of programs (nothing leaks from the pair before)."""
    cfg = exp.TransferConfig(pairs=((3, 5), (0, 1), (2, 4)), widths=(8, 8), batch_size=16,
                             train_size=64, freeze_epochs=1, unfreeze_epochs=1, epochs_a=1,
                             seeds=(0, 1), learning_rate=0.05)
    shared = exp.SharedPrograms(cfg, data)
    results = [exp.train_pair(cfg, data, pos, neg, timing=False, shared=shared)
               for pos, neg in cfg.pairs]
    spe_a = {len(r.task_a.y_train) // cfg.batch_size for r in results}
    assert len(shared.programs) == len(spe_a) + 2  # A per steps-per-epoch; B and B-on-A once
    compiled = [[r.results[arm].timing.compile_s > 0 for arm in exp.ARMS] for r in results]
    assert sum(map(sum, compiled)) == len(shared.programs)
    assert compiled[0] == [True] * 3 and [c[1:] for c in compiled[1:]] == [[False] * 2] * 2
    fresh = exp.SharedPrograms(cfg, data)
    alone = exp.train_pair(cfg, data, 2, 4, timing=False, shared=fresh)
    for arm in exp.ARMS:
        a, b = results[2].results[arm].trace, alone.results[arm].trace
        np.testing.assert_array_equal(a.test_acc, b.test_acc)
        np.testing.assert_array_equal(a.train_loss, b.train_loss)
    # the pairs differ (other tasks), and every pair's accuracy is a real accuracy
    accs = [r.results["B"].trace.test_acc for r in results]
    assert not np.array_equal(accs[0], accs[1])
    assert all(np.all((a >= 0) & (a <= 1)) for a in accs)
