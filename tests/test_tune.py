"""Tuned arms of experiment files ([tune]): the sweep in the lanes of each arm's program, the
choice by the best median over seeds, the written tables, and bad tables refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dnnbench import definition
from dnnbench.cli import app
from dnnbench.run import plan

runner = CliRunner()

# one structure (l2 is a lane value): 2 arms, each also tuned over 2 learning rates
TUNED = """
name = "tiny-tune"
dataset = "digits"
seeds = 2
relative_target = 0.98
reference = { l2 = 0.0 }
[base]
widths = [16]
optimizer = "adam"
learning_rate = 0.001
batch_size = 32
max_steps = 30
eval_every = 10
eval_split = "val"
stop_at_target = false
[factors]
l2 = [0.0, 0.001]
[tune]
learning_rate = [0.003, 0.03]
"""


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    """The file run with [tune], and the same grid run as a plain factor (no tuning): the
    tuned arms must be those runs at the chosen learning rate."""
    tmp = tmp_path_factory.mktemp("tune")
    path = write(tmp, TUNED, "tiny-tune.toml")
    out = {}
    for name, args in (("tuned", []), ("grid", ["--set", "lr_source=default", "--set",
                                                "learning_rate=0.003,0.03"])):
        r = runner.invoke(app, ["run", str(path), "--out", str(tmp / name), *args])
        out[name] = r
    return tmp, out


def read(folder: Path):
    return (pd.read_csv(folder / "tiny-tune-digits-runs.csv"),
            pd.read_csv(folder / "tiny-tune-digits-curves.csv"),
            json.loads((folder / "tiny-tune-digits-meta.json").read_text()))


def test_every_arm_gets_a_tuned_arm_from_its_own_program(tuned_run):
    tmp, results = tuned_run
    assert results["tuned"].exit_code == 0, results["tuned"].output
    runs, curves, meta = read(tmp / "tuned")
    assert meta["compiled_programs"] == 1 and meta["arms"] == 4  # sweep: lanes of the program
    assert list(runs["arm"].unique()) == ["l2=0,lr_source=default", "l2=0,lr_source=tuned",
                                          "l2=0.001,lr_source=default",
                                          "l2=0.001,lr_source=tuned"]
    assert list(runs["lr_source"]) == ["default"] * 2 + ["tuned"] * 2 + ["default"] * 2 + \
        ["tuned"] * 2
    assert (runs["program_lanes"] == 2 * (2 + 2 * 2)).all()  # (default + 2 points) x 2 arms
    assert set(curves["arm"]) == set(runs["arm"])  # the sweep's other points are not written
    assert (runs.loc[runs["lr_source"] == "default", "learning_rate"] == 0.001).all()
    for arm, info in meta["tuning"].items():
        medians = info["median"]
        best = int(np.argmax(medians))
        assert info["points"] == [{"learning_rate": 0.003}, {"learning_rate": 0.03}]
        assert info["chosen"] == info["points"][best]
        rows = runs[runs["arm"] == arm]
        assert (rows["learning_rate"] == info["chosen"]["learning_rate"]).all()
        assert rows["final_eval_accuracy"].median() == pytest.approx(medians[best])
    # the relative target covers default and tuned arms
    best = runs.groupby("arm")["final_eval_accuracy"].median().max()
    assert meta["target"] == pytest.approx(0.98 * best) and runs["reached"].any()
    assert json.loads(meta["experiment_definition"])["tune"] == {
        "learning_rate": [0.003, 0.03], "by": "final_eval_accuracy"}


def test_tuned_arms_are_the_grid_runs_at_the_chosen_rate(tuned_run):
    """Against the grid trained as a factor (another program, other lanes): the medians that
    chose, and the tuned arms' numbers, are those runs' (float32 tolerance)."""
    tmp, results = tuned_run
    assert results["grid"].exit_code == 0, results["grid"].output
    runs, _, meta = read(tmp / "tuned")
    grid = read(tmp / "grid")[0]
    assert set(grid["lr_source"]) == {"default"} and len(grid) == 8
    for (l2, lr), g in grid.groupby(["l2", "learning_rate"]):
        info = meta["tuning"][f"l2={l2:g},lr_source=tuned"]
        k = [p["learning_rate"] for p in info["points"]].index(lr)
        assert info["median"][k] == pytest.approx(g["final_eval_accuracy"].median(), abs=1e-3)
        if info["chosen"]["learning_rate"] == lr:
            tuned = runs[runs["arm"] == f"l2={l2:g},lr_source=tuned"].sort_values("seed")
            np.testing.assert_allclose(tuned["final_test_accuracy"],
                                       g.sort_values("seed")["final_test_accuracy"], atol=2e-3)


def _sweep_runs(exp, values: dict[tuple[str, float], list[float]]) -> pd.DataFrame:
    """Constructed runs of the sweep arms: (arm, lr) -> final eval accuracy per seed."""
    rows = []
    for arm in definition.expand(exp):
        for s, point in definition.tune_sweep(exp, arm) or [(arm, {})]:
            for seed, v in enumerate(values[(arm.name, point.get("learning_rate"))]):
                rows.append({"arm": s.name, "seed": seed, "final_eval_accuracy": v,
                             "final_eval_loss": 1 - v, "learning_rate":
                             point.get("learning_rate", 0.001)})
    return pd.DataFrame(rows)


def test_choice_is_the_best_median_a_missing_value_the_worst_ties_the_smaller_rate():
    doc = {"name": "t", "base": {"stop_at_target": False},
           "tune": {"learning_rate": [0.1, 0.01, 0.001]}}
    exp = definition.parse(doc, "test")
    tuned, default = "lr_source=tuned", "lr_source=default"
    nan = math.nan
    runs = _sweep_runs(exp, {(default, None): [0.5, 0.5, 0.5],
                             (tuned, 0.001): [0.7, 0.8, 0.1],   # median 0.7
                             (tuned, 0.01): [0.9, nan, nan],    # diverged count 0: median 0
                             (tuned, 0.1): [0.7, 0.7, 0.95]})   # median 0.7: tie, larger lr
    curves = runs[["arm", "seed"]].assign(step=10, eval_accuracy=runs["final_eval_accuracy"])
    out, out_curves, tuning = plan.choose_tuned(exp, runs, curves)
    assert tuning[tuned]["chosen"] == {"learning_rate": 0.001}
    assert tuning[tuned]["median"] == [pytest.approx(0.7), 0.0, pytest.approx(0.7)]
    assert list(out["arm"]) == [default] * 3 + [tuned] * 3
    assert list(out.loc[out["arm"] == tuned, "final_eval_accuracy"]) == [0.7, 0.8, 0.1]
    assert list(out_curves["arm"]) == list(out["arm"])
    # by a loss: the lowest median wins (a missing loss counts as infinite)
    exp = definition.parse({**doc, "tune": {**doc["tune"], "by": "final_eval_loss"}}, "test")
    _, _, tuning = plan.choose_tuned(exp, runs, curves)
    assert tuning[tuned]["chosen"] == {"learning_rate": 0.001}  # loss medians 0.3, inf, 0.3


@pytest.mark.parametrize("text,message", [
    ('[tune]\nlearning_rate = [0.01]\nby = "final_test_accuracy"',
     "by: unknown 'final_test_accuracy'; allowed: final_eval_accuracy"),
    ("[tune]\nbatch_size = [16, 32]", "batch_size is not a lane setting"),
    ("[tune]\nwidths = [[8], [16]]", "widths is not a lane setting"),
    ("[tune]\nlearning_rate = []", "learning_rate must be a non-empty list"),
    ("[tune]\nlearning_rate = [0.1, 0.1]", "learning_rate repeats a value"),
    ("[tune]\nlearning_rate = [-0.1]", "learning_rate must be in [0, inf]"),
    ('[tune]\nby = "final_eval_accuracy"', "give the grid of at least one lane setting"),
    ("[tune]\nmomentum = [0.9]", "optimizer adam has the coefficients"),
    ("[tune]\nlearning_rate = [0.1]\n[factors]\nlearning_rate = [0.1, 0.01]",
     "learning_rate is tuned ([tune]) and a factor"),
    ('[factors]\nlr_source = ["default"]', "the factor lr_source needs a [tune] table"),
    ('[tune]\nlearning_rate = [0.1]\n[factors]\nlr_source = ["best"]',
     "lr_source: unknown value 'best'"),
    ("tune = 3", "[tune] must be a table"),
])
def test_bad_tune_tables_are_refused_with_exit_2(tmp_path, text, message):
    base = 'name = "x"\ndataset = "digits"\n[base]\nstop_at_target = false\n'
    doc = (f'{text}\n' + base) if text.startswith("tune =") else base + text
    path = write(tmp_path, doc)
    r = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0], r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("doc,message", [
    ({"base": {}, "tune": {"learning_rate": [0.1]}}, "[tune] needs stop_at_target = false"),
    ({"base": {"stop_at_target": False, "lr_source": "tuned"},
      "tune": {"learning_rate": [0.1]}}, "lr_source is a factor"),
    ({"protocol": "transfer", "tune": {"learning_rate": [0.1]}}, "needs the train protocol"),
])
def test_tuning_needs_whole_runs_and_the_train_protocol(doc, message):
    with pytest.raises(definition.ExperimentError, match=message.replace("[", r"\[")):
        definition.parse({"name": "x", **doc}, "test")
