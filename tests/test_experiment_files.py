"""Experiments as data: the file format, the catalogue contract, lanes vs separate programs,
plug-ins, and `dnnbench run` / `dnnbench list` end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _lanes import LANE_ATOL, LANE_RTOL
from typer.testing import CliRunner

from dnnbench import definition
from dnnbench.analysis.summary import summarize
from dnnbench.cli import app
from dnnbench.data import load_dataset
from dnnbench.run import plan

runner = CliRunner()

GRID = """
name = "my-grid"
dataset = "digits"
[base]
widths = [64, 64]
optimizer = "adam"
max_steps = 200
eval_every = 10
target = 0.9
[factors]
learning_rate = [0.001, 0.003, 0.01]
weight_decay = [0.0, 0.0001]
dropout = [0.0, 0.2]
"""


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def no_traceback(result) -> None:
    assert "Traceback" not in result.output and result.exception is None or \
        isinstance(result.exception, SystemExit)


# ---------------------------------------------------------------- the example of the issue

def test_example_grid_runs_as_one_program_with_every_factor_a_column(tmp_path):
    path = write(tmp_path, GRID, "my-grid.toml")
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", str(path), "--seeds", "3", "--out", str(out)])
    assert r.exit_code == 0, r.output
    runs = pd.read_csv(out / "my-grid-digits-runs.csv")
    meta = json.loads((out / "my-grid-digits-meta.json").read_text())
    assert meta["compiled_programs"] == 1 and meta["arms"] == 12
    assert len(runs) == 36 and runs["arm"].nunique() == 12
    for column in ("learning_rate", "weight_decay", "dropout", "b1", "b2", "eps", "widths",
                   "batch_size", "steps_to_target", "final_eval_accuracy",
                   "final_test_accuracy", "spec_hash"):
        assert column in runs.columns, column
    assert sorted(runs["learning_rate"].unique()) == [0.001, 0.003, 0.01]
    assert sorted(runs["dropout"].unique()) == [0.0, 0.2]
    assert set(runs.groupby("arm")["seed"].apply(tuple)) == {(0, 1, 2)}
    assert (runs["program_lanes"] == 36).all()
    curves = pd.read_csv(out / "my-grid-digits-curves.csv")
    assert list(curves.columns) == plan.CURVE_COLUMNS
    # a larger learning rate reaches 90% sooner (KM medians of the summary)
    exp = definition.load(str(path))
    summary = summarize(exp, runs.drop(columns="dataset")).set_index("arm")
    slow = summary.loc["learning_rate=0.001,weight_decay=0,dropout=0", "median_steps"]
    fast = summary.loc["learning_rate=0.01,weight_decay=0,dropout=0", "median_steps"]
    assert fast < slow


# --------------------------------------------------------- lanes == one program per arm

def _frames(exp, data, seeds, **kwargs):
    parts = [u.compute() for u in plan.build_units(exp, data, seeds, timing=False,
                                                      **kwargs)]
    return (pd.concat([p[0] for p in parts], ignore_index=True),
            pd.concat([p[1] for p in parts], ignore_index=True))


@pytest.mark.slow  # (30 s cold) lanes vs programs also in test_schedules, test_diagnostics
def test_vectorized_lanes_equal_separate_programs():
    """Every kind of lane value at once (lr, an optimizer coefficient, weight decay, dropout,
    l2, clipping, BN momentum, epsilon -- in training and at evaluation): a reference arm and one arm per setting changed, all lanes of
    one program, give the numbers of one program per arm up to float32 reassociation (see
    tests/_lanes.py) -- so a lane at 0 (no dropout, decay, penalty or clipping) in a program
    that applies them equals a program without them; every changed arm is told apart from
    the reference by the same tolerance (negative control)."""
    changes = {"ref": {}, "lr": {"learning_rate": 0.1}, "momentum": {"momentum": 0.8},
               "wd": {"weight_decay": 0.001}, "dropout": {"dropout": 0.3},
               "l2": {"l2": 1e-3}, "clip": {"clip_norm": 0.5}, "bn_momentum": {"bn_momentum": 0.5},
               "bn_epsilon": {"bn_epsilon": 0.5}}
    exp = definition.parse({
        "name": "lanes", "dataset": "synthetic",
        "base": {"widths": [16, 16], "optimizer": "momentum", "norm": "batch",
                 "learning_rate": 0.05, "batch_size": 50, "max_steps": 60, "eval_every": 20,
                 "target": 0.0, "stop_at_target": False},
        "factors": {"variant": changes}}, "<test>")
    data = load_dataset("synthetic", n_train=400, n_val=100, n_test=100, n_features=8,
                        n_classes=3)
    seeds = (0, 1)
    lanes, lanes_curves = _frames(exp, data, seeds)
    assert lanes["program"].nunique() == 1 and len(lanes) == 2 * len(changes)
    alone, alone_curves = _frames(exp, data, seeds, one_program_per_arm=True)
    assert alone["program"].nunique() == len(changes)
    key = ["arm", "seed"]
    a, b = lanes.sort_values(key).reset_index(), alone.sort_values(key).reset_index()
    for col in ("final_train_loss", "final_eval_loss", "final_test_loss"):
        np.testing.assert_allclose(a[col], b[col], rtol=LANE_RTOL, atol=LANE_ATOL, err_msg=col)
    np.testing.assert_allclose(a["final_test_accuracy"], b["final_test_accuracy"],
                               atol=2 / 100 + 1e-6)
    ca = lanes_curves.sort_values([*key, "step"])["train_loss"].to_numpy()
    cb = alone_curves.sort_values([*key, "step"])["train_loss"].to_numpy()
    np.testing.assert_allclose(ca, cb, rtol=LANE_RTOL, atol=LANE_ATOL)
    # negative control: each changed setting moves the numbers beyond that tolerance
    loss = a.pivot_table(index="seed", columns="variant", values="final_eval_loss")
    for variant in changes:
        if variant != "ref":
            assert not np.allclose(loss[variant], loss["ref"], rtol=LANE_RTOL,
                                   atol=LANE_ATOL), variant


# ------------------------------------------------------------------- the catalogue contract

QUICK_SETS = {  # the catalogue contract's overrides, by protocol (tiny budgets and nets)
    None: ["--set", "max_steps=60", "--set", "eval_every=20", "--set", "target=0.5"],
    "transfer": ["--set", "widths=[8,8,8]"],  # (transfer-reuse reuses up to 3 layers)
}


# The quick run of every packaged file costs ~4 minutes of compiles on a cold cache (2 cores):
# the default tier runs one file of each protocol and kind of claim; the slow tier runs them
# all. Every file is planned in the default tier (test_every_packaged_file_plans_its_quick_run).
QUICK_RUN_DEFAULT = ("bn-depth", "transfer-learning", "search", "regularization", "schedules")


@pytest.mark.parametrize("name", [
    name if name in QUICK_RUN_DEFAULT else pytest.param(name, marks=pytest.mark.slow)
    for name in definition.catalogue()])
def test_every_packaged_experiment_loads_and_its_quick_variant_runs(name, tmp_path):
    exp = definition.load(name)
    assert exp.title and exp.question and exp.expected and exp.cost
    quick = definition.quick_variant(exp)
    assert quick.n_arms <= exp.n_arms
    # (tests/test_schedules.py runs schedules with these settings too: shared programs)
    r = runner.invoke(app, ["run", name, "--quick", "--dataset", "digits", "--out",
                            str(tmp_path), *QUICK_SETS.get(exp.protocol, QUICK_SETS[None])])
    assert r.exit_code == 0, r.output
    runs = pd.read_csv(tmp_path / f"{name}-digits-runs.csv")
    arms = quick.n_arms
    if quick.search is not None:  # a search's fine stages add points
        arms = arms // len(quick.search.points) * quick.search.planned_points
    if exp.protocol == "transfer":  # A's rows: once per model A, shared by its groups
        from dnnbench.run import transfer

        groups = transfer.plan(quick, load_dataset("digits"), range(1))
        arms -= len(groups) - len(transfer.sources(groups))
    assert len(runs) == arms * exp.quick["seeds"]
    # a diverged run (loss non-finite, or 10x its initial loss) has no final accuracy
    trained = runs[~runs["diverged"].astype(bool)]
    assert len(trained) and trained["final_test_accuracy"].between(0, 1).all()
    for claim in exp.claims:  # (evaluator claims are checked by `dnnbench claims`)
        assert (claim.text in " ".join(r.output.split())) != bool(claim.checks)


@pytest.mark.parametrize("name", list(definition.catalogue()))
def test_every_packaged_file_plans_its_quick_run(name, tmp_path):
    """Every packaged file loads, states what it is for, and its quick variant plans (arms,
    programs, units, memory) with the contract's overrides, nothing trained or written."""
    exp = definition.load(name)
    assert exp.title and exp.question and exp.expected and exp.cost
    quick = definition.quick_variant(exp)
    assert quick.n_arms <= exp.n_arms
    r = runner.invoke(app, ["run", name, "--quick", "--dataset", "digits", "--dry-run", "--out",
                            str(tmp_path / "out"), *QUICK_SETS.get(exp.protocol,
                                                                   QUICK_SETS[None])])
    assert r.exit_code == 0, r.output
    assert f"{quick.n_arms} arms" in r.output and not (tmp_path / "out").exists()


def test_list_prints_the_catalogue_and_registries_and_one_file():
    r = runner.invoke(app, ["list"])
    assert r.exit_code == 0, r.output
    for name in definition.catalogue():
        assert name in r.output
    for word in ("adam", "b1=0.9", "momentum=0.9", "he-normal", "cosine", "fashion-mnist",
                 "transfer (stage, pair, epochs_a"):
        assert word in r.output
    r = runner.invoke(app, ["list", "bn-depth"])
    assert r.exit_code == 0 and 'name = "bn-depth"' in r.output
    r = runner.invoke(app, ["list", "--json"])
    assert r.exit_code == 0, r.output
    listing = json.loads(r.stdout)
    assert [e["name"] for e in listing["experiments"]] == list(definition.catalogue())
    assert listing["registries"]["optimizers"]["adam"]["b1"] == 0.9
    assert "relu-dead-fraction-grows-with-lr" in next(
        e for e in listing["experiments"] if e["name"] == "dying-relu")["claims"]


# ------------------------------------------------------------------------------- plug-ins

PLUGIN = """
name = "plugin"
dataset = "synthetic"
[base]
widths = [16]
optimizer = "_plugins:heavy_ball"
activation = "_plugins:soft_relu"
init = "_plugins:wide_uniform"
batch_size = 50
max_steps = 40
eval_every = 20
target = 0.5
[factors]
momentum = [0.0, 0.5]
"""


def test_plugin_optimizer_runs_and_is_recorded_by_its_import_path(tmp_path):
    r = runner.invoke(app, ["run", str(write(tmp_path, PLUGIN)), "--seeds", "2", "--out",
                            str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    runs = pd.read_csv(tmp_path / "out" / "plugin-synthetic-runs.csv")
    assert set(runs["optimizer"]) == {"_plugins:heavy_ball"}
    assert set(runs["activation"]) == {"_plugins:soft_relu"}
    assert sorted(runs["momentum"].unique()) == [0.0, 0.5]
    meta = json.loads((tmp_path / "out" / "plugin-synthetic-meta.json").read_text())
    assert meta["compiled_programs"] == 1
    by_momentum = runs.groupby("momentum")["final_train_loss"].mean()
    assert by_momentum[0.0] != by_momentum[0.5]


@pytest.mark.parametrize("setting,value,message", [
    ("optimizer", "_plugins:not_an_optimizer", "not an optax.GradientTransformation"),
    ("optimizer", "no_such_module_xyz:make", "cannot be imported"),
    ("activation", "_plugins:missing", "'_plugins:missing': _plugins has no attribute"),
])
def test_bad_plugins_are_refused_with_one_line(tmp_path, setting, value, message):
    r = runner.invoke(app, ["run", str(write(tmp_path, PLUGIN)), "--set", f"{setting}={value}",
                            "--out", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.csv"))


# ------------------------------------------------------------------------------ bad files

@pytest.mark.parametrize("text,message", [
    ('name = "x"\nnonsense = 1', "unknown key 'nonsense'"),
    ('name = "x"\n[base]\nlearning_rat = 0.1', "unknown setting 'learning_rat'"),
    ('name = "x"\n[base]\nactivation = "relux"', "activation: unknown value 'relux'"),
    ('name = "x"\n[base]\noptimizer = "sgd"\nb1 = 0.9', "optimizer sgd has the coefficients"),
    ('name = "x"\n[base]\ndropout = 1.5', "dropout must be in [0, 1)"),
    ('name = "x"\n[base]\nbatch_size = "big"', "batch_size must be an integer"),
    ('name = "x"\n[factors]\nlearning_rate = []', "non-empty list"),
    ('name = "x"\n[factors]\nlearning_rate = [0.1, 0.1]', "repeats a level"),
    ('name = "x"\nreference = { optimizer = "adam" }', "'optimizer' is not a factor"),
    ('name = "Bad Name"', "name must be lower-case"),
    ('name = "x"\n[base\n', "not valid TOML"),
    ('name = "x"\n[base]\ndepth = 9\nwidths = [10, 10]', "depth 9 exceeds the 2 widths"),
    (('name = "x"\n[[claims]]\ntext = "t"\nresults = "depth-sweep"\n[[claims.check]]\n'
     'evaluator = "guess"'), "claims[0]: check[0]: unknown evaluator 'guess'"),
    (('name = "x"\n[[claims]]\ntext = "t"\nmetric = "steps_to_target"\n[[claims.check]]\n'
     'evaluator = "trend_with_depth"'), "unknown key 'metric' in a claim with checks"),
    ('name = "x"\nrelative_target = 1.5', "relative_target must be a number in (0, 1]"),
    ('name = "x"\nrelative_target = 0.9', "relative_target needs stop_at_target = false"),
    ('name = "x"\nprotocol = "distill"', "protocol: unknown value 'distill'; allowed: train"),
    ('name = "x"\n[base]\nepochs_a = 3', "epochs_a is a setting of another protocol"),
    ('name = "x"\nprotocol = "transfer"', "needs the factor stage = ['A', 'B', 'B-on-A'], then any of ['B-tuned']"),
    (('name = "x"\nprotocol = "transfer"\n[base]\nmax_steps = 9\n[factors]\n'
     'stage = ["A", "B", "B-on-A"]'), "max_steps is set by the transfer protocol"),
    (('name = "x"\nprotocol = "transfer"\n[base]\npair = "3-5"\n[factors]\n'
     'stage = ["A", "B", "B-on-A"]'), "pair must be two class labels POSvNEG"),
])
def test_bad_files_are_refused_with_exit_2_naming_key_and_file(tmp_path, text, message):
    path = write(tmp_path, text)
    r = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    line = " ".join(r.output.split())
    assert message in line and str(path) in line, line
    assert "Traceback" not in r.output


@pytest.mark.parametrize("args,message", [
    (["--set", "learning_rate"], "expected key=value"),
    (["--set", "momentum=0.9"], "optimizer adam has the coefficients"),
    (["--set", "bn=maybe"], "unknown setting 'bn'"),
    (["--seeds", "5000"], "above the limit"),
])
def test_bad_overrides_are_refused(tmp_path, args, message):
    r = runner.invoke(app, ["run", str(write(tmp_path, GRID)), *args, "--out",
                            str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()) and "Traceback" not in r.output


def test_unknown_experiment_names_the_catalogue(tmp_path):
    r = runner.invoke(app, ["run", "no-such-experiment"])
    assert r.exit_code == 2 and "bn-depth" in r.output


# ------------------------------------------------------------------------- the file layer

def test_relative_target_is_a_fraction_of_the_best_median_found_on_the_curves():
    """Constructed runs: arm a's median final accuracy 0.9 (the best), b's 0.5 (a diverged
    seed counts as 0); target 0.9 x 0.9 = 0.81, reached where a curve first gets there."""
    from types import SimpleNamespace

    exp = definition.parse({"name": "rel", "relative_target": 0.9,
                       "base": {"stop_at_target": False},
                       "factors": {"learning_rate": [0.1, 0.01]}}, "test")
    finals = {"a": [0.8, 0.9, 1.0], "b": [0.5, 0.6, float("nan")]}
    runs = pd.DataFrame([{"experiment": "rel", "arm": arm, "seed": i, "diverged": arm == "b"
                          and i == 2, "final_eval_accuracy": acc, "step_ms": 2.0,
                          "target": 0.9, "reached": False, "steps_to_target": None}
                         for arm, accs in finals.items() for i, acc in enumerate(accs)])
    curve = {("a", 0): [0.5, 0.82, 0.8], ("a", 1): [0.81, 0.9, 0.9], ("a", 2): [0.2, 0.3, 1.0],
             ("b", 0): [0.3, 0.4, 0.5], ("b", 1): [0.4, 0.6, 0.6], ("b", 2): [0.9, 0.1, 0.0]}
    curves = pd.concat([pd.DataFrame({"arm": a, "seed": s, "step": [10, 20, 30],
                                      "eval_accuracy": acc}) for (a, s), acc in curve.items()])
    out, _, meta = plan.finalize(exp, SimpleNamespace(name="digits"), runs, curves)
    assert meta["target"] == pytest.approx(0.81) and meta["target_kind"] == "relative"
    assert out["steps_to_target"].tolist()[:5] == [20, 10, 30, pd.NA, pd.NA]
    assert out["steps_to_target"].isna().iloc[5]  # diverged: never reached (its 0.9 aside)
    assert out["reached"].tolist() == [True, True, True, False, False, False]
    assert out["time_to_target_s"].iloc[0] == pytest.approx(0.04)  # 20 steps x 2 ms
    assert definition.parse(definition.to_doc(exp), "again").relative_target == 0.9


def test_set_replaces_levels_and_makes_factors_and_named_levels_apply():
    exp = definition.load("bn-depth")
    exp2 = definition.override(exp, dict([definition.parse_assignment("depth=1,3"),
                                     definition.parse_assignment("learning_rate=0.001,0.01"),
                                     definition.parse_assignment("bn=on")]))
    assert exp2.factors["depth"] == (1, 3) and exp2.factors["learning_rate"] == (0.001, 0.01)
    assert exp2.factors["bn"] == ("on",) and exp2.n_arms == 4
    arms = definition.expand(exp2)
    spec = definition.make_spec(arms[0].settings, 1000)
    assert spec.norm == "batch" and spec.bn_logits and spec.widths == (500,)
    assert definition.parse_assignment("widths=[64, 32]") == ("widths", [64, 32])


def test_same_structure_is_one_program_and_other_structures_are_not():
    exp = definition.parse({"name": "g", "base": {"max_steps": 20, "eval_every": 10},
                       "factors": {"learning_rate": [0.1, 0.01], "activation": ["relu", "tanh"],
                                   "dropout": [0.0, 0.5]}}, "<test>")
    programs = plan.plan(exp, 1000)
    assert len(programs) == 2
    assert all(len(p.arms) == 4 for p in programs)
    assert set(programs[0].lanes) == {"learning_rate", "dropout"}
    assert programs[0].spec.dropout == 0.5  # dropout applied, its rate a lane value
    epochs = definition.parse({"name": "e", "base": {"epochs": 3, "batch_size": 100,
                                                "eval_every": "epoch"}}, "<test>")
    spec = plan.plan(epochs, 1000)[0].spec
    assert spec.max_steps == 30 and spec.eval_every == 10


# ------------------------------------------------------- the CI gate from an experiment file

def test_check_gates_a_users_experiment_file_with_a_plugin(tmp_path):
    """A regression profile names an experiment file (a user's, with a plug-in optimizer) and
    overrides; `check --update-baseline` stores a baseline, a second `check` passes against
    it, and an edited experiment file makes the baseline incompatible (exit 2)."""
    exp = write(tmp_path, PLUGIN.replace("target = 0.5", "target = 0.6"), "mine.toml")
    profiles = write(tmp_path, f"""
[profiles.mine]
experiment = "{exp}"
dataset = "synthetic"
seeds = 4
baseline_seeds = 4
seed_offset = 1000
set = {{ max_steps = 60 }}
""", "profiles.toml")
    base = tmp_path / "mine.csv"
    args = ["check", "--profile", "mine", "--profiles", str(profiles), "--baseline", str(base)]
    r = runner.invoke(app, [*args, "--update-baseline"])
    assert r.exit_code == 0, r.output
    stored = pd.read_csv(base)
    assert set(stored["arm"]) == {"momentum=0", "momentum=0.5"}
    assert set(stored["optimizer"]) == {"_plugins:heavy_ball"}
    assert not stored["stop_at_target"].any()
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    exp.write_text(exp.read_text().replace("widths = [16]", "widths = [12]"))
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output


def test_figure_metric_vs_first_factor_lines_per_second_panels_per_third(tmp_path,
                                                                        monkeypatch):
    """The default figure of any file: one panel per level of the third factor, one line per
    level of the second, the first factor on a log axis when it spans a decade."""
    import dnnbench.report.figures as F
    from dnnbench.report import figure_kinds
    from dnnbench.report.figures import FigureInput

    exp = definition.parse({"name": "fig", "show": ["final_eval_accuracy"], "factors": {
        "learning_rate": [0.001, 0.01], "weight_decay": [0.0, 0.1], "dropout": [0.0, 0.5]}},
        "<test>")
    rows = [{"arm": a.name, **dict(a.levels), "seed": seed, "reached": True,
             "steps_to_target": 10, "steps_done": 20, "diverged": False,
             "final_eval_accuracy": 0.5 + a.settings["learning_rate"] * 10, "step_ms": 1.0,
             "compile_s": 1.0} for a in definition.expand(exp) for seed in range(3)]
    runs = pd.DataFrame(rows).assign(max_steps=20)
    paths = figure_kinds.save(FigureInput(exp, runs), tmp_path / "fig-x-runs.csv")
    assert [p.name for p in paths] == ["fig-x-final-eval-accuracy.png",
                                       "fig-x-final-eval-accuracy.svg"]
    captured = {}
    monkeypatch.setattr(F, "save_figure", lambda fig, stem: [captured.setdefault("fig", fig)])
    figure_kinds.save(FigureInput(exp, runs), tmp_path / "fig-x-runs.csv")
    axes = captured["fig"].axes
    assert len(axes) == 2 and all(ax.get_xscale() == "log" for ax in axes)
    assert all(len(ax.lines) >= 2 for ax in axes)
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == [
        "weight_decay=0.0", "weight_decay=0.1"]


def test_report_has_a_section_for_any_experiment_files_results(tmp_path):
    """`dnnbench report` on the results of `dnnbench run`: one section built from the
    definition recorded in the metadata (factors in the file's order), its summary, claims
    and figure."""
    path = write(tmp_path, GRID.replace('name = "my-grid"', 'name = "my-grid"\n'
                                         'reference = { weight_decay = 0.0, dropout = 0.0 }'),
                 "my-grid.toml")
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", str(path), "--seeds", "2", "--out", str(out), "--set",
                            "max_steps=40", "--set", "learning_rate=0.01"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["report", str(out)])
    assert r.exit_code == 0, r.output
    md = (out / "report" / "report.md").read_text()
    assert "my-grid on digits (2 seeds per arm, paired; 95% intervals)" in md
    header = next(line for line in md.splitlines() if line.startswith("| learning_rate"))
    assert header.index("weight_decay") < header.index("dropout") < header.index("reached")
    assert "steps vs reference" in header and md.count("| reference |") >= 1
    assert (out / "report" / "figures" / "my-grid-digits-steps-to-target.png").exists()


@pytest.mark.parametrize("key, value, guess", [("lr", 0.01, "learning_rate"),
                                               ("max_step", 100, "max_steps"),
                                               ("activaton", "relu", "activation"),
                                               ("bn_position", "after", "norm_position")])
def test_an_unknown_setting_gets_a_did_you_mean(key, value, guess):
    with pytest.raises(definition.ExperimentError, match=f"did you mean {guess}\\?"):
        definition.parse({"name": "x", "base": {key: value}}, "<test>")
    with pytest.raises(definition.ExperimentError) as e:
        definition.parse({"name": "x", "base": {"zzz": 3}}, "<test>")
    assert "did you mean" not in str(e.value)


def test_dry_run_says_what_a_run_would_do_and_writes_nothing(tmp_path):
    """`dnnbench run FILE --dry-run`: arms, lanes, programs, units, the largest program's
    memory; nothing trained, no output folder."""
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    res = runner.invoke(app, ["run", str(path), "--seeds", "3", "--dry-run",
                              "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())
    exp = definition.load(str(path))
    assert f"{exp.n_arms} arms x 3 seeds = {exp.n_arms * 3} lanes in 1 compiled programs" in text
    assert "MiB" in text and "nothing was trained or written" in text
    assert not (tmp_path / "out").exists()
    res = runner.invoke(app, ["run", "transfer-learning", "--quick", "--dry-run", "--dataset",
                              "digits", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0 and "1 resumable units" in res.stdout, res.output
    assert not (tmp_path / "out").exists()


def test_results_record_a_packaged_file_by_name_and_others_relative(tmp_path, monkeypatch):
    """No machine's absolute path in committed metadata: a packaged file is recorded by its
    name, a user's file under the working folder by its relative path."""
    assert definition.recorded_source(definition.load("clipping")) == "clipping"
    mine = tmp_path / "exps" / "mine.toml"
    mine.parent.mkdir()
    mine.write_text(definition.find("clipping").read_text().replace(
        'name = "clipping"', 'name = "mine"'))
    monkeypatch.chdir(tmp_path)
    assert definition.recorded_source(definition.load(str(mine))) == "exps/mine.toml"


def test_recorded_definitions_are_checked_with_the_packaged_claims_of_now():
    """A committed run's recorded definition gets the packaged file's current claims and
    texts (the report and `dnnbench claims` check the same claims); claims about factors the
    recorded run lacks are left out."""
    now = definition.load("dying-relu")
    old = dataclasses.replace(now, claims=now.claims[:1], found="", expected="old",
                              cost="an estimate made before the run")
    again = definition.as_packaged_now(old)
    assert again.claims == now.claims and again.found == now.found
    assert again.cost == now.cost  # measured by the committed run, written after it
    fewer = dataclasses.replace(old, factors={"learning_rate": now.factors["learning_rate"]})
    assert all("activation" not in {*c.compare, *c.where, *c.against}
               for c in definition.as_packaged_now(fewer).claims)
    # a search's claims name columns of its own table (design, against, parameter), not
    # factors: every one is kept
    search = definition.load("random-vs-grid")
    assert search.claims and definition.as_packaged_now(search).claims == search.claims


def test_a_presets_results_get_the_texts_of_the_file_it_runs():
    packaged = definition.load("bn-depth")
    preset = dataclasses.replace(packaged, name="depth-sweep", found="")
    assert definition.as_packaged_now(preset).found == ""  # no packaged file of that name
    assert definition.as_packaged_now(preset, "bn-depth").found == packaged.found
