"""The layer-reuse heuristics (transfer-reuse.toml) on the transfer protocol: how many of A's
layers B-on-A reuses, whether it keeps them frozen throughout or fine-tunes them, and task B's
training-set size as factors of one file sharing one model A; ``b_rate = "tuned"`` (every B
arm at B from scratch's validation-tuned rate per train size) and ``"tuned-per-arm"`` (each
B-on-A variant at its own validation-tuned rate); a trend claim over the paired
difference with a reference (the gain of reuse shrinking with the data); and the runs table
read back with its empty (A's) levels intact."""

from __future__ import annotations

import math

import jax
import numpy as np
import pandas as pd
import pytest

from dnnbench import definition
from dnnbench.analysis.claims import check_claims
from dnnbench.analysis.summary import level_key
from dnnbench.data import load_dataset
from dnnbench.results import io
from dnnbench.run import transfer as exp

REUSE = """
name = "reuse"
protocol = "transfer"
dataset = "synthetic"
[base]
widths = [8, 8, 8]
learning_rate = 0.05
batch_size = 16
pair = "3v5"
epochs_a = 1
{b_rate}
[factors]
train_size = [16, 48]
stage = ["A", "B", "B-on-A"{tuned}]
reuse_layers = [1, 3]
[factors.reused]
frozen = {{ freeze_epochs = 3, unfreeze_epochs = 0 }}
fine-tuned = {{ freeze_epochs = 1, unfreeze_epochs = 2 }}
"""


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", n_train=600, n_val=150, n_test=150, n_features=8)


def reuse_file(tmp_path, b_rate: str = "", tuned: bool = False) -> definition.Experiment:
    path = tmp_path / "reuse.toml"
    path.write_text(REUSE.format(b_rate=f'b_rate = "{b_rate}"' if b_rate else "",
                                 tuned=', "B-tuned"' if tuned else ""))
    return definition.load(str(path))


def test_the_factors_plan_one_group_per_b_setting_sharing_one_model_a(data, tmp_path):
    groups = exp.plan(reuse_file(tmp_path, "tuned"), data, range(2))
    cfgs = [(g.cfg.train_size, g.cfg.reused, g.cfg.freeze_epochs, g.cfg.unfreeze_epochs,
             g.cfg.b_rate) for g in groups]
    assert cfgs == [(n, k, *epochs, "tuned") for n in (16, 48) for k in (1, 3)
                    for epochs in ((3, 0), (1, 2))]
    assert all(g.cfg.epochs_b == 3 for g in groups)  # frozen and fine-tuned: B's budget
    assert [tuple(dict(a.levels)["stage"] for a in g.arms) for g in groups] == [
        ("A", "B", "B-on-A")] * 8
    units = exp.sources(groups)  # one model A for all eight B settings
    assert len(units) == 1 and units[0].label == "pair 3v5, 8 B settings"
    # A; B-tuned's grid at each train size (which is B); a B-on-A per group
    assert exp.program_count(groups) == 1 + 2 + 8
    plain = exp.plan(reuse_file(tmp_path, tuned=True), data, range(2))
    assert exp.program_count(plain) == 1 + 2 * 2 + 8  # B and B-tuned at each size
    with pytest.raises(definition.ExperimentError, match="b_rate: unknown value 'best'"):
        definition.override(reuse_file(tmp_path), {"b_rate": "best"})
    with pytest.raises(definition.ExperimentError, match="no rate of the grid"):
        exp.plan(definition.override(reuse_file(tmp_path, "tuned"), {
            "b_rate_min": 0.2, "b_rate_max": 0.25}), data, range(2))
    with pytest.raises(definition.ExperimentError, match="reuse_layers 3 exceeds the 2"):
        exp.plan(definition.override(reuse_file(tmp_path), {"widths": [8, 8]}), data, range(2))


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """The file with b_rate "tuned" and the B-tuned stage, trained once (2 seeds), counting
    the programs trained."""
    import dnnbench.train.arm as arm_module

    calls = []
    real = arm_module.train_arm

    def counting(spec, task, seeds, **kwargs):
        calls.append(("B-on-A" if "init_params" in kwargs else spec.loss, len(task.y_train),
                      len(seeds)))
        return real(spec, task, seeds, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(arm_module, "train_arm", counting)
    try:
        e = reuse_file(tmp_path_factory.mktemp("reuse"), "tuned", tuned=True)
        units = exp.build_file_units(e, data, range(2), timing=False)
        runs, curves = units[0].compute()
    finally:
        mp.undo()
    return e, runs, curves, calls


def test_tuned_b_rate_trains_every_b_arm_at_b_tuneds_choice(trained):
    _, runs, _, calls = trained
    grid = len(exp.B_TUNED_GRID)
    # A once (2 seeds); B-tuned's grid once per train size (it is B: no separate B program);
    # B-on-A once per group
    assert sorted(calls) == sorted([("softmax", calls[0][1], 2), ("sigmoid", 16, 2 * grid),
                                    ("sigmoid", 48, 2 * grid)] + [
        ("B-on-A", n, 2) for n in (16, 48) for _ in range(4)])
    a = runs[runs["stage"] == "A"]
    assert len(a) == 2 and (a["learning_rate"] == 0.05).all()  # A keeps the file's rate
    assert a[["train_size", "reuse_layers", "freeze_epochs", "unfreeze_lr"]].isna().all().all()
    for n in (16, 48):
        at = runs[runs["train_size"] == n]
        tuned = at[at["stage"] == "B-tuned"]
        rate = tuned["learning_rate"].iloc[0]
        assert rate in exp.B_TUNED_GRID and (tuned["learning_rate"] == rate).all()
        b_arms = at[at["stage"].isin(["B", "B-on-A"])]
        assert (b_arms["learning_rate"] == rate).all() and (b_arms["unfreeze_lr"] == rate).all()
        metrics = ["final_test_accuracy", "final_eval_loss", "spec_hash"]
        for arm, b in at[at["stage"] == "B"].groupby("arm"):  # B is B-tuned's lanes
            t = tuned[tuned["arm"] == arm.replace("stage=B,", "stage=B-tuned,")]
            np.testing.assert_array_equal(b[metrics].to_numpy(), t[metrics].to_numpy())


def test_tuned_per_arm_each_b_on_a_variant_picks_its_own_rate_on_validation(data, tmp_path):
    """b_rate "tuned-per-arm": every B-on-A variant trains over B-tuned's grid (here up to
    b_rate_max 1) as lanes of its program (seed i's A tiled over the rates), and keeps the rate of the best median final
    validation accuracy (a diverged lane: 0; ties: the smaller rate); its rows carry that
    rate, also as the reused layers' rate after unfreezing. B is still B-tuned's choice."""
    import dnnbench.train.arm as arm_module

    lanes = []
    real = arm_module.train_arm

    def recording(spec, task, seeds, **kwargs):
        result = real(spec, task, seeds, **kwargs)
        if "init_params" in kwargs:
            lead = {np.shape(a)[0] for a in jax.tree_util.tree_leaves(kwargs["init_params"])}
            assert lead == {len(seeds)}  # A's layers: one per lane
            lanes.append((len(task.y_train), kwargs["hps"]["learning_rate"],
                          exp._final_eval_accuracy(result.trace)))
        return result

    mp = pytest.MonkeyPatch()
    mp.setattr(arm_module, "train_arm", recording)
    try:
        e = definition.override(reuse_file(tmp_path, "tuned-per-arm"), {"b_rate_max": 1.0})
        groups = exp.plan(e, data, range(3))
        assert exp.program_count(groups) == 1 + 2 + 8  # the grid: lanes, not programs
        runs, _ = exp.build_file_units(e, data, range(3), timing=False)[0].compute()
    finally:
        mp.undo()
    grid = exp.b_grid(high=1.0)  # the default grid (0.001 to 0.3) and 1.0
    assert grid == (*exp.B_TUNED_GRID, 1.0) and exp.b_grid(0.001, 0.3) == exp.B_TUNED_GRID
    assert exp.b_grid(0.0001, 0.01) == (0.0001, 0.0003, 0.001, 0.003, 0.01)
    assert len(lanes) == 8 and all(len(rates) == 3 * len(grid) for _, rates, _ in lanes)
    b_on_a = runs[runs["stage"] == "B-on-A"]
    chosen = []
    for (n, rates, acc), (arm, rows) in zip(lanes, b_on_a.groupby("arm", sort=False),
                                            strict=True):
        assert n == rows["train_size"].iloc[0], arm
        medians = np.median(np.asarray(acc).reshape(len(grid), 3), axis=1)
        assert list(rates) == [r for r in grid for _ in range(3)]
        best = grid[int(np.argmax(medians))]
        assert (rows["learning_rate"] == best).all() and (rows["unfreeze_lr"] == best).all()
        ours = rows["final_eval_accuracy"].where(~rows["diverged"].astype(bool), 0).fillna(0)
        assert np.median(ours) == pytest.approx(medians.max())
        chosen.append(best)
    for n in (16, 48):  # B: B-tuned's choice at its train size, as with b_rate "tuned"
        assert runs.loc[(runs["stage"] == "B") & (runs["train_size"] == n),
                        "learning_rate"].nunique() == 1
    # the variants' rates are their own: a B-on-A hash per variant and rate
    assert b_on_a.groupby("arm")["spec_hash"].nunique().eq(1).all()
    assert b_on_a["spec_hash"].nunique() == 8


def test_frozen_trains_only_the_fresh_layers_and_fine_tuned_departs_after_its_freeze(trained):
    """Both variants reuse the same A from the same seed: the fine-tuned one is the frozen one,
    bit for bit, for its freeze epochs; then its reused layers train and the curves part. With
    all hidden layers reused and frozen throughout, only the head trains."""
    _, runs, curves, _ = trained
    b_on_a = runs[runs["stage"] == "B-on-A"]
    assert set(zip(b_on_a["reused"], b_on_a["freeze_epochs"], b_on_a["unfreeze_epochs"],
                   b_on_a["epochs"], strict=True)) == {("frozen", 3, 0, 3),
                                                       ("fine-tuned", 1, 2, 3)}
    for n in (16, 48):
        steps_per_epoch = n // 16
        for k in (1, 3):
            def curve(reused, n=n, k=k):
                arm = f"train_size={n},stage=B-on-A,reuse_layers={k},reused={reused}"
                c = curves[curves["arm"] == arm].sort_values(["seed", "step"])
                return c.pivot(index="seed", columns="step", values="train_loss")

            frozen, tuned = curve("frozen"), curve("fine-tuned")
            assert list(frozen.columns) == [steps_per_epoch * (i + 1) for i in range(3)]
            first = frozen.columns[0]  # the fine-tuned variant's one frozen epoch
            np.testing.assert_array_equal(frozen[first], tuned[first])
            assert not np.array_equal(frozen.iloc[:, 1:].to_numpy(),
                                      tuned.iloc[:, 1:].to_numpy()), (n, k)
    # B is trained once per train size: its rows in the four groups are the same runs
    b = runs[runs["stage"] == "B"]
    assert (b.groupby(["train_size", "seed"])["arm"].nunique() == 4).all()
    assert (b.groupby(["train_size", "seed"])[["final_test_accuracy", "final_train_loss"]]
            .nunique() == 1).all().all()


def test_the_runs_read_back_with_whole_levels_and_the_claims_match_them(trained, data,
                                                                         tmp_path):
    """A's empty levels make train_size a float column in the CSV: read back, it is whole
    numbers again (a level 16, not 16.0), so a claim's `where` matches its arms."""
    e, runs, curves, _ = trained
    io.write_results(tmp_path, e.name, data, runs, curves, {})
    back, _ = io.read_results(tmp_path / f"{e.name}-synthetic-runs.csv")
    assert str(back["train_size"].dtype) == "Int64" and str(back["reuse_layers"].dtype) == "Int64"
    assert pd.isna(back.loc[back["stage"] == "A", "train_size"]).all()
    keys = level_key(back, list(e.factors))  # the levels as they were written
    assert list(keys) == list(level_key(runs, list(e.factors)))
    assert "16|B-on-A|3|frozen" in set(keys) and keys.iloc[0] == "<NA>|A|<NA>|nan"
    claim = {"id": "c", "text": "t", "compare": {"stage": "B-on-A", "reused": "frozen"},
             "against": {"reused": "fine-tuned"}, "where": {"train_size": 16},
             "metric": "final_test_accuracy", "expect": "higher", "quantifier": "pooled"}
    with_claim = definition.parse(definition.to_doc(e) | {"claims": [claim]}, "<test>")
    out = check_claims(with_claim, back).set_index("id")
    assert out.loc["c", "arms"] == 2 and out.loc["c", "n"] == 2  # reuse_layers 1 and 3


# ----------------------------------------------------------- a trend of a paired difference

def _gains(gain: dict[int, float], b: dict[int, float], n_seeds: int = 8) -> pd.DataFrame:
    """B and B-on-A rows over train sizes: B's accuracy ``b[n]``, B-on-A's ``b[n] + gain[n]``
    (each with its own small noise per seed)."""
    rng = np.random.default_rng(0)
    rows = []
    for n, g in gain.items():
        for s in range(n_seeds):
            base = b[n] + 0.01 * rng.standard_normal()
            for stage, acc in (("B", base),
                               ("B-on-A", base + g + 0.005 * rng.standard_normal())):
                rows.append({"arm": f"train_size={n},stage={stage}", "train_size": n,
                             "stage": stage, "seed": s, "diverged": False,
                             "final_test_accuracy": acc, "final_eval_accuracy": acc})
    return pd.DataFrame(rows)


SHRINKS = {"id": "g", "text": "the gain shrinks", "compare": {"stage": "B-on-A"},
           "against": {"stage": "B"}, "order": {"train_size": [50, 200, 1000]},
           "metric": "final_test_accuracy", "expect": "decreasing"}
GAIN_EXP = {"name": "g", "protocol": "transfer", "dataset": "synthetic",
            "reference": {"stage": "B"},
            "factors": {"train_size": [50, 200, 1000], "stage": ["A", "B", "B-on-A"]}}


def _trend(runs: pd.DataFrame, claim: dict) -> pd.Series:
    e = definition.parse({**GAIN_EXP, "claims": [claim]}, "<test>")
    return check_claims(e, runs).set_index("id").loc[claim["id"]]


def test_a_trend_against_a_reference_tests_the_paired_difference():
    # B-on-A itself gets better with more data, while its gain over B shrinks
    b = {50: 0.70, 200: 0.85, 1000: 0.95}
    shrinking = _gains({50: 0.10, 200: 0.04, 1000: 0.0}, b)
    out = _trend(shrinking, SHRINKS)
    assert out["verdict"] == "supported" and "minus stage=B" in out["effects"]
    raw = _trend(shrinking, {k: v for k, v in SHRINKS.items() if k != "against"})
    assert raw["verdict"] == "contradicted"  # B-on-A's own accuracy rises
    growing = _gains({50: 0.0, 200: 0.04, 1000: 0.10}, b)
    assert _trend(growing, SHRINKS)["verdict"] == "contradicted"
    flat = _gains(dict.fromkeys((50, 200, 1000), 0.05), b)
    assert _trend(flat, SHRINKS)["verdict"] == "inconclusive"
    # a level whose reference arm is missing is left out: two levels are no trend
    missing = shrinking[~((shrinking["stage"] == "B") & (shrinking["train_size"] == 1000))]
    assert _trend(missing, SHRINKS)["verdict"] == "not tested"
    assert not math.isnan(out["n"])
