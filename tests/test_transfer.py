"""The transfer protocol and `dnnbench transfer`, its preset: the task split, bitwise freezing,
the fresh paired head, model A shared by the groups that need it, the gain verdicts, the CLI
end to end (the common schema, the same numbers as `dnnbench run transfer-learning`) and its
bad-input handling."""

from __future__ import annotations

import json

import _figures
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest
from _figures import data_lines, visible_axes
from typer.testing import CliRunner

from dnnbench.cli import app
from dnnbench.data import load_dataset, tasks
from dnnbench.data.base import Dataset
from dnnbench.models import build_model, init_variables
from dnnbench.run import transfer as exp
from dnnbench.train import reuse
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
    task_a, task_b = tasks.split_tasks(data, pos, neg, train_size=40)
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
    assert tasks.task_b_train_count(data, pos, neg) == int(np.isin(data.y_train, (2, 7)).sum())


def test_fashion_default_pair_is_pullover_vs_tshirt():
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot")
    y = np.arange(40, dtype=np.int32) % 10
    x = np.random.default_rng(0).random((40, 4), dtype=np.float32)
    fake = Dataset(name="fashion-mnist", x_train=x, y_train=y, x_val=x, y_val=y, x_test=x,
                   y_test=y, n_classes=10, hashes={}, source="test", class_names=names)
    assert tasks.default_pair(fake) == (2, 0)
    task_a, task_b = tasks.split_tasks(fake, *tasks.default_pair(fake))
    assert task_a.class_names == ("Trouser", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                                  "Bag", "Ankle boot")
    assert task_b.class_names == ("T-shirt/top", "Pullover")
    assert set(task_b.y_train[task_b.y_train == 1]) == {1}
    np.testing.assert_array_equal(task_b.y_train, (y[np.isin(y, (0, 2))] == 2).astype(int))
    assert len(tasks.all_pairs(10)) == 45 and tasks.all_pairs(3) == [(0, 1), (0, 2), (1, 2)]


@pytest.mark.parametrize("pair, needle", [((3, 3), "differ"), ((3, 10), "does not exist"),
                                          ((-1, 2), "does not exist")])
def test_bad_pairs_are_rejected(data, pair, needle):
    with pytest.raises(ValueError, match=needle):
        tasks.split_tasks(data, *pair)


# ----------------------------------------------------------------------------- freezing

def test_frozen_until_is_bitwise_identity_even_for_nan_and_negative_zero():
    params = {"w": jnp.array([-0.0, 0.0, 1.5, -2.0], jnp.float32)}
    grads = {"w": jnp.array([1.0, -1.0, jnp.nan, jnp.inf], jnp.float32)}
    # the naive way: +0.0 updates turn -0.0 into +0.0 (so bitwise checks can fail)
    naive = optax.set_to_zero()
    u, _ = naive.update(grads, naive.init(params))
    assert not same_bits(optax.apply_updates(params, u), params)

    tx = reuse.frozen_until(optax.sgd(0.1, momentum=0.9), freeze_steps=2)
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
    task_a, task_b = tasks.split_tasks(data, 3, 5, cfg.train_size)
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
    prog_t = make_program(sb, 2, len(task_b.y_train), merge_params=reuse.reuse_params,
                          make_tx=reuse.transfer_tx(cfg.reused, freeze_steps, cfg.lr_after))
    return {"cfg": cfg, "spec": sb, "dev": to_device(task_b, sb), "a_params": a_params,
            "reused": reuse.hidden_layers(a_params, cfg.reused), "prog_b": prog_b,
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


# ----------------------------------------------------------------------------- the gains

def paired(diffs, acc_b=0.8) -> pd.DataFrame:
    """A (seed x [B, B-on-A]) frame of test accuracies with the given per-seed gains."""
    return pd.DataFrame({"B": acc_b, "B-on-A": acc_b + np.asarray(diffs)})


def test_gain_verdicts_never_call_an_interval_spanning_zero_a_win():
    """The transfer figures' verdict per pair: "helps" / "hurts" only when the paired interval
    excludes zero and enough seeds back it."""
    from dnnbench.report.transfer import gains

    rng = np.random.default_rng(0)
    g = gains([("helps", paired(0.02 + rng.normal(0, 0.004, 20))),
               ("hurts", paired(-0.03 + rng.normal(0, 0.004, 20))),
               ("noisy", paired(rng.normal(0, 0.02, 20) - 0.001)),
               ("few", paired([0.05, 0.06, 0.04]))]).set_index("label")
    assert g.loc["helps", "verdict"] == "helps" and g.loc["helps", "low"] > 0
    assert g.loc["helps", "diff"] == pytest.approx(2.0, abs=0.3)  # points
    assert g.loc["hurts", "verdict"] == "hurts" and g.loc["hurts", "high"] < 0
    assert g.loc["noisy", "low"] < 0 < g.loc["noisy", "high"]
    assert g.loc["noisy", "verdict"] == "no clear effect"
    assert g.loc["few", "verdict"] == "too few seeds for a verdict"  # consistent, 3 seeds


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


def test_quick_run_writes_the_common_schema(quick_run):
    from dnnbench import definition
    from dnnbench.run import plan

    out, result, _ = quick_run
    assert result.exit_code == 0, result.output
    runs = pd.read_csv(out / "transfer-synthetic-runs.csv")
    curves = pd.read_csv(out / "transfer-synthetic-curves.csv")
    meta = json.loads((out / "transfer-synthetic-meta.json").read_text())
    for column in (*exp.STAGE_COLUMNS, *plan.METRIC_COLUMNS, "experiment", "dataset",
                   "arm", "learning_rate", "batch_size", "max_steps", "eval_every"):
        assert column in runs.columns, column
    assert list(curves.columns) == plan.CURVE_COLUMNS
    assert meta["schema_version"] == 1 and meta["quick"] is True
    # the file layer's definition: report, claims and summary rebuild the experiment from it
    recorded = definition.parse(json.loads(meta["experiment_definition"]), "meta")
    assert recorded.name == "transfer" == meta["experiment"] and recorded.protocol == "transfer"
    assert recorded.base["pair"] == "1v0" and recorded.base["epochs_a"] == 2
    assert len(runs) == 4 * 3  # 4 stages x 3 seeds (--quick)
    assert (runs["experiment"] == "transfer").all()
    assert set(zip(runs["pair"], runs["pos_class"], runs["neg_class"])) == {("1v0", 1, 0)}
    assert list(dict.fromkeys(runs["arm"])) == ["stage=A", "stage=B", "stage=B-on-A",
                                                "stage=B-tuned"]
    assert set(runs["stage"]) == {*exp.ARMS, "B-tuned"} and set(runs["seed"]) == {0, 1, 2}
    # B-tuned: B at the grid's rate with the best median final validation accuracy
    tuned = runs[runs["stage"] == "B-tuned"]
    assert tuned["learning_rate"].nunique() == 1
    assert tuned["learning_rate"].iloc[0] in exp.B_TUNED_GRID
    b_rows = runs[runs["stage"] != "A"]
    assert (b_rows["train_examples"] == 200).all() and (b_rows["epochs"] == 2).all()
    # the group's settings in every stage's rows (levels comparable across stages)
    assert (runs["train_size"] == 200).all() and (runs["reuse_layers"] == 3).all()
    assert (runs["freeze_epochs"] == 1).all() and (runs["unfreeze_lr"] == 0.001).all()
    a_rows = runs[runs["stage"] == "A"]
    assert (a_rows["train_examples"] > 1000).all() and (a_rows["epochs"] == 2).all()
    assert runs["final_test_accuracy"].between(0, 1).all() and not runs["diverged"].any()
    assert runs["step_ms"].gt(0).all() and runs["compile_s"].gt(0).all()
    assert runs.groupby("stage")["spec_hash"].nunique().eq(1).all()
    assert runs["spec_hash"].nunique() == 4
    # one evaluation per epoch on the validation split, for every stage and seed
    epochs = curves["step"] // curves["arm"].map(runs.groupby("arm")["eval_every"].first())
    assert set(epochs) == {1, 2} and len(curves) == 4 * 3 * 2
    # the file layer's summary: B-on-A against B, A not compared; 3 seeds never give a verdict
    assert "not compared" in result.stdout and "reference" in result.stdout
    assert "too few seeds for a verdict" in result.stdout
    assert "Claims of the experiment file" in result.stdout


def test_quick_run_pairs_seeds_and_feeds_seed_i_of_a_to_seed_i_of_b_on_a(quick_run):
    _, result, calls = quick_run
    assert result.exit_code == 0, result.output
    a, b, tuned, t = calls  # B-tuned: B's spec over the grid's rates, lanes of one program
    assert a["n_classes"] == 8 and b["n_classes"] == 2 and t["n_classes"] == 2
    assert tuned["spec"] == b["spec"] and tuned["seeds"] == [0, 1, 2] * len(exp.B_TUNED_GRID)
    assert tuned["kwargs"]["hps"]["learning_rate"] == [
        lr for lr in exp.B_TUNED_GRID for _ in range(3)]
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


def test_the_command_is_a_preset_of_the_packaged_file(quick_run, tmp_path):
    """`dnnbench run transfer-learning` and `dnnbench transfer` (its preset, named "transfer")
    write the same table: the same numbers, bit for bit."""
    out, result, _ = quick_run
    assert result.exit_code == 0, result.output
    r = runner.invoke(app, ["run", "transfer-learning", "--quick", "--dataset", "synthetic",
                            "--set", "pair=1v0", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    common = pd.read_csv(tmp_path / "transfer-learning-synthetic-runs.csv")
    preset = pd.read_csv(out / "transfer-synthetic-runs.csv")
    assert list(common.columns) == list(preset.columns)
    timing = ["experiment", "compile_s", "step_ms", "eval_ms"]
    pd.testing.assert_frame_equal(common.drop(columns=timing), preset.drop(columns=timing))
    meta = json.loads((tmp_path / "transfer-learning-synthetic-meta.json").read_text())
    assert meta["units"] == 1 and "compiled_programs" not in meta


def test_transfer_units_travel_as_small_recipes_that_rebuild_the_same_unit(quick_run,
                                                                         tmp_path):
    """What an executor ships (pickled), run in this process: the same tables as the unit
    (the quick run's settings, so its compiled programs serve)."""
    from _recipes import assert_recipe_rebuilds_the_unit

    from dnnbench.cli.common import quick_subset
    from dnnbench.cli.executor import worker_data
    from dnnbench.run.units import UnitStore

    synthetic = quick_subset(load_dataset("synthetic"))
    preset = exp.preset("synthetic", [(1, 0)], 3,
                        {"epochs_a": 2, "freeze_epochs": 1, "unfreeze_epochs": 1})
    units = exp.build_file_units(preset, synthetic, range(3), timing=False,
                                 worker_data=worker_data(synthetic, None, True))
    store = UnitStore(tmp_path, exp.EXPERIMENT, synthetic.name, synthetic.fingerprint)
    runs, _ = assert_recipe_rebuilds_the_unit(units[0], store,
                                              timing=["compile_s", "step_ms", "eval_ms"])
    quick = pd.read_csv(quick_run[0] / "transfer-synthetic-runs.csv")  # and the command's
    np.testing.assert_array_equal(runs["final_test_accuracy"], quick["final_test_accuracy"])


def test_units_one_per_pair_timing_first_only(data):
    preset = exp.preset("synthetic", [(0, 1), (0, 2), (1, 2)], 2, {"train_size": 64})
    assert list(preset.factors) == ["pair", "stage"] and "pair" not in preset.base
    units = exp.build_file_units(preset, data, range(2), timing="first")
    assert [u.label for u in units] == ["pair 0v1", "pair 0v2", "pair 1v2"]
    keys = [json.dumps(u.key_parts, default=str) for u in units]
    assert len(set(keys)) == 3
    assert [dict(u.key_parts[1])["timing"] for u in units] == [True, False, False]
    other = exp.build_file_units(exp.preset("synthetic", [(0, 1), (0, 2), (1, 2)], 2,
                                            {"train_size": 100}), data, range(2))
    assert json.dumps(other[0].key_parts, default=str) != keys[0]


A_ONCE = """
name = "a-once"
protocol = "transfer"
dataset = "synthetic"
[base]
widths = [8, 8]
learning_rate = 0.05
batch_size = 16
train_size = 64
pair = "3v5"
epochs_a = 1
freeze_epochs = 1
unfreeze_epochs = 1
[factors]
stage = ["A", "B", "B-on-A"]
reuse_layers = [1, 2]
"""


def test_groups_that_differ_in_b_settings_share_one_model_a(data, tmp_path, monkeypatch):
    """Two levels of a B setting (reuse_layers): A is trained once (and B, the same for
    both), its rows written once; every group gets the numbers it gets alone."""
    import dnnbench.train.arm as arm_module
    from dnnbench import definition

    path = tmp_path / "a-once.toml"
    path.write_text(A_ONCE)
    both = definition.load(str(path))
    calls = []
    real = arm_module.train_arm

    def counting(spec, data, seeds, **kwargs):
        calls.append(spec.loss if "init_params" not in kwargs else "B-on-A")
        return real(spec, data, seeds, **kwargs)

    monkeypatch.setattr(arm_module, "train_arm", counting)
    units = exp.build_file_units(both, data, range(2), timing=False)
    assert len(units) == 1
    runs, curves = units[0].compute()
    assert sorted(calls) == ["B-on-A", "B-on-A", "sigmoid", "softmax"]  # A once, B once
    assert list(dict.fromkeys(runs["arm"])) == [
        "stage=A", "stage=B,reuse_layers=1", "stage=B-on-A,reuse_layers=1",
        "stage=B,reuse_layers=2", "stage=B-on-A,reuse_layers=2"]
    assert list(dict.fromkeys(curves["arm"])) == list(dict.fromkeys(runs["arm"]))
    a_rows = runs[runs["stage"] == "A"]
    assert len(a_rows) == 2 and a_rows["reuse_layers"].isna().all()  # A reuses nothing
    assert (runs.loc[runs["stage"] != "A", "reuse_layers"] == [1, 1, 1, 1, 2, 2, 2, 2]).all()
    metrics = ["final_test_accuracy", "final_test_loss", "final_eval_accuracy",
               "final_train_loss", "spec_hash"]
    for k in (1, 2):  # the same numbers as the group trained alone (its own A and B)
        alone = definition.override(both, {"reuse_layers": k})
        r, _ = exp.build_file_units(alone, data, range(2), timing=False)[0].compute()
        mine = runs[runs["reuse_layers"].isna() | (runs["reuse_layers"] == k)]
        pd.testing.assert_frame_equal(mine[metrics].reset_index(drop=True),
                                      r[metrics].reset_index(drop=True))
    assert len(calls) == 4 + 2 * 3
    # the transfer figures compare each B-on-A arm with the B of its own level
    from dnnbench.report.transfer import paired_arms

    arms = paired_arms(runs, list(both.factors))
    assert [label for label, _ in arms] == ["reuse_layers=1", "reuse_layers=2"]
    b = runs[runs["arm"] == "stage=B,reuse_layers=2"]["final_test_accuracy"].to_numpy()
    np.testing.assert_array_equal(arms[1][1]["B"].to_numpy(), b)


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


# ----------------------------------------------------------------------------- figures

@pytest.fixture(scope="module", name="fixture_input")
def transfer_fixture():
    """The --quick --pairs all fixture (3 class pairs, 3 seeds) as a figure's input."""
    return _figures.fixture_input("transfer-digits")


def test_the_file_declares_the_transfer_figures_and_one_pair_has_no_gains(fixture_input):
    import dataclasses

    from dnnbench.report import figure_kinds

    assert fixture_input.exp.figures == ("metric", "paired-accuracy", "gains")
    drawn = figure_kinds.draw(fixture_input)
    assert list(drawn) == ["final-test-accuracy", "paired-accuracy", "gains"]
    assert all(caption for _, caption in drawn.values())
    runs = fixture_input.runs
    one = dataclasses.replace(fixture_input, runs=runs[runs["pair"] == "0v2"])
    assert figure_kinds.draw_kind("gains", one) == {}
    assert list(figure_kinds.draw_kind("paired-accuracy", one)) == ["paired-accuracy"]


def test_paired_accuracy_joins_b_and_b_on_a_of_each_seed(fixture_input):
    from dnnbench.report.transfer import paired_accuracy_kind

    fig = paired_accuracy_kind(fixture_input)
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == ["pair 0v1 (3 seeds)", "pair 0v2 (3 seeds)",
                                               "pair 0v3 (3 seeds)"]
    assert "3 seeds per arm" in fig._suptitle.get_text().replace("\n", " ")
    for ax in axes:  # one line per seed joining B and B-on-A, plus the mean
        assert len(data_lines(ax)) == 4 and "test accuracy" in ax.get_ylabel()
    runs = fixture_input.runs
    t = runs[(runs["pair"] == "0v1") & (runs["seed"] == 0)].set_index("stage")
    expected = [t.loc["B", "final_test_accuracy"] * 100,
                t.loc["B-on-A", "final_test_accuracy"] * 100]
    assert data_lines(axes[0])[0].get_ydata() == pytest.approx(expected)


def many_pairs(runs: pd.DataFrame, k: int) -> pd.DataFrame:
    """``k`` copies of the fixture's pairs under new labels (for the across-pairs figure)."""
    parts = []
    for i in range(k):
        part = runs.copy()
        part["pair"] = part["pair"] + f"-{i}"
        part["arm"] = part["arm"] + f"-{i}"
        part["final_test_accuracy"] = np.clip(part["final_test_accuracy"] + 0.002 * i
                                              * (part["stage"] == "B-on-A"), 0, 1)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_gains_per_pair_sorted_and_their_distribution(fixture_input):
    from dnnbench.report.transfer import gains, gains_figure, paired_arms

    factors = list(fixture_input.exp.factors)
    runs = fixture_input.runs
    fig = gains_figure(runs, factors, "digits")
    (ax,) = visible_axes(fig)
    assert len(ax.containers) == 3  # mean gain with CI per pair
    g = gains(paired_arms(runs, factors)).sort_values("diff", kind="stable")
    assert [t.get_text() for t in ax.get_yticklabels()] == list(g["label"])  # by gain
    assert "B-on-A minus B" in ax.get_xlabel()
    ax, hist = visible_axes(gains_figure(many_pairs(runs, 3), factors, "digits"))  # 9 pairs
    assert len(ax.containers) == 9
    assert sum(p.get_height() for p in hist.patches) == 9  # every pair in the histogram
    assert hist.get_ylabel() == "class pairs"


def test_b_tuned_takes_the_rate_with_the_best_median_validation_accuracy():
    """tune_b: lanes grid point-major; the median over seeds of the final validation accuracy
    decides (a diverged lane counts as 0, so a rate that diverges in most seeds loses)."""
    from dnnbench.spec import RunSpec
    from dnnbench.train.arm import ArmResult, ArmTiming
    from dnnbench.train.engine import Trace

    grid, seeds = exp.B_TUNED_GRID, [0, 1, 2]
    # final accuracy per grid point (3 seeds each); 0.1 is best by mean but diverges twice
    acc = {0.001: [0.6, 0.62, 0.61], 0.003: [0.7, 0.7, 0.71], 0.01: [0.8, 0.82, 0.81],
           0.03: [0.85, 0.84, 0.86], 0.1: [0.99, 0.2, 0.2], 0.3: [0.5, 0.5, 0.5]}
    diverged = {(0.1, 1), (0.1, 2)}
    n = len(grid) * len(seeds)
    last = np.array([acc[lr][i] for lr in grid for i in range(3)])
    trace = Trace(steps=np.tile([6, 12], (n, 1)), train_loss=np.zeros((n, 2)),
                  eval_loss=np.zeros((n, 2)), eval_acc=np.stack([last / 2, last], axis=1),
                  n_done=np.full(n, 2), diverged=np.array([(lr, i) in diverged for lr in grid
                                                           for i in range(3)]),
                  test_loss=np.zeros(n), test_acc=last)
    calls = []

    def train(arm, spec, task, lane_seeds, **kw):
        calls.append((arm, lane_seeds, kw))
        return ArmResult(trace, ArmTiming(1.0, 1.0, 1.0, 1.0))

    spec, res = exp.tune_b(train, RunSpec(widths=(4,)), None, seeds)
    assert spec.learning_rate == 0.03 and calls[0][0] == "B-tuned"
    np.testing.assert_allclose(res.trace.test_acc, acc[0.03])
    assert res.trace.eval_acc.shape == (3, 2)
